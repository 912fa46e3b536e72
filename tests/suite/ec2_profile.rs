//! `ec2.replace_instance_profile` against moto: the original profile is tagged on the instance
//! before it is replaced or disassociated, so reruns (and later runs) still report it.

use crate::support::run::{ec2_fixture as run, id, live_on};
use crate::support::{moto, sandbox};
use serde_json::json;

const TAG: &str = "firebreak:original-instance-profile";

/// The associated profile's ARN and the instance's original-profile tag.
async fn profile_state(
    ec2: &aws_sdk_ec2::Client,
    instance: &str,
) -> (Option<String>, Option<String>) {
    let associated = sandbox::associated_profile(ec2, instance).await;
    let described = ec2
        .describe_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap();
    let tag = described.reservations()[0].instances()[0]
        .tags()
        .iter()
        .find(|t| t.key() == Some(TAG))
        .and_then(|t| t.value())
        .map(str::to_owned);
    (associated, tag)
}

#[tokio::test]
async fn replaces_then_disassociates_and_always_reports_the_original() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let original = id(&ids, "instance_profile_arn");
    let quarantine = id(&ids, "quarantine_profile_arn");
    let ec2 = sandbox::ec2().await;
    let dir = tempfile::tempdir().unwrap();
    let replace = [
        ("instance_id", instance.as_str()),
        ("replacement", quarantine.as_str()),
    ];

    let first = run(dir.path(), "profile-replace.yaml", &replace, false).await;
    first.assert_succeeded();
    let out = first.outputs("profile");
    assert_eq!(out["done"], "replaced", "{out}");
    assert_eq!(out["changed"], true);
    assert_eq!(out["tagged"], true);
    assert_eq!(out["original"]["arn"], original.as_str());
    assert!(out["original"]["association_id"].is_string(), "{out}");
    assert_eq!(out["current"]["arn"], quarantine.as_str());
    // The tag is written before the change.
    let mutating: Vec<_> = first
        .mutating_calls()
        .iter()
        .map(|r| r["operation"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        mutating,
        ["CreateTags", "ReplaceIamInstanceProfileAssociation"]
    );
    assert_eq!(
        profile_state(&ec2, &instance).await,
        (Some(quarantine.clone()), Some(original.clone()))
    );

    // Rerun (as after a crash): nothing changes, the original comes from the tag.
    let second = run(dir.path(), "profile-replace.yaml", &replace, false).await;
    second.assert_succeeded().assert_no_mutating_calls();
    let out = second.outputs("profile");
    assert_eq!(out["done"], "already-replaced", "{out}");
    assert_eq!(out["changed"], false);
    assert_eq!(
        out["original"],
        json!({"arn": original, "association_id": null, "from_tag": true})
    );

    // A later run without a replacement removes the quarantine profile; the original stays
    // the one recorded, and what it removed is reported as `previous`.
    let third = live_on(dir.path(), "profile-disassociate.yaml", &instance).await;
    third.assert_succeeded();
    let out = third.outputs("profile");
    assert_eq!(out["done"], "disassociated", "{out}");
    assert_eq!(out["tagged"], false);
    assert_eq!(out["original"]["arn"], original.as_str());
    assert_eq!(out["previous"]["arn"], quarantine.as_str());
    assert_eq!(
        profile_state(&ec2, &instance).await,
        (None, Some(original.clone()))
    );

    let fourth = live_on(dir.path(), "profile-disassociate.yaml", &instance).await;
    fourth.assert_succeeded().assert_no_mutating_calls();
    let out = fourth.outputs("profile");
    assert_eq!(out["done"], "already-disassociated", "{out}");
    assert_eq!(out["original"]["arn"], original.as_str());
}

#[tokio::test]
async fn disassociates_without_a_replacement() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let original = id(&ids, "instance_profile_arn");
    let ec2 = sandbox::ec2().await;
    let dir = tempfile::tempdir().unwrap();

    let ran = live_on(dir.path(), "profile-disassociate.yaml", &instance).await;
    ran.assert_succeeded();
    let out = ran.outputs("profile");
    assert_eq!(out["done"], "disassociated", "{out}");
    assert_eq!(out["original"]["arn"], original.as_str());
    assert_eq!(out["original"]["from_tag"], false);
    assert_eq!(out["current"], json!(null));
    assert_eq!(profile_state(&ec2, &instance).await, (None, Some(original)));
}

#[tokio::test]
async fn a_drill_tags_nothing_and_replaces_nothing() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let original = id(&ids, "instance_profile_arn");
    let quarantine = id(&ids, "quarantine_profile_arn");
    let ec2 = sandbox::ec2().await;
    let dir = tempfile::tempdir().unwrap();

    let drill = run(
        dir.path(),
        "profile-replace.yaml",
        &[
            ("instance_id", instance.as_str()),
            ("replacement", quarantine.as_str()),
        ],
        true,
    )
    .await;
    drill.assert_succeeded();
    let out = drill.outputs("profile");
    assert_eq!(out["dry_run"], true, "{out}");
    assert_eq!(out["would_change"], true);
    assert_eq!(out["done"], "replaced");
    let mutating = drill.mutating_calls();
    assert_eq!(mutating.len(), 2, "{mutating:#?}");
    // CreateTags has DryRun; ReplaceIamInstanceProfileAssociation has not, so it is not sent.
    assert_eq!(mutating[0]["operation"], "CreateTags");
    assert_eq!(mutating[0]["outcome"], "would-succeed");
    assert_eq!(
        mutating[1]["operation"],
        "ReplaceIamInstanceProfileAssociation"
    );
    assert_eq!(mutating[1]["outcome"], "not-sent (dry run)");
    assert_eq!(
        mutating[1]["input"]["IamInstanceProfile"]["Arn"],
        quarantine.as_str()
    );
    assert_eq!(profile_state(&ec2, &instance).await, (Some(original), None));
}
