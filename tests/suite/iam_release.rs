//! `runbooks/iam-release.yaml` after `runbooks/iam-access-key-compromise.yaml`, from the
//! command line: the quarantine, the session revocation and the tags go; the key comes back only
//! when asked; the deleted console password is not re-created (and the release says so). And
//! after `runbooks/iam-role-credential-exfiltration.yaml`, with `ec2-release` for the instance's
//! profile: the role and the instance as they were.

use serde_json::{Value, json};

use crate::support::{cli_on_moto, journal, moto, sandbox, state};

/// What the key containment touches on user `leaky`.
async fn describe() -> Value {
    let iam = aws_sdk_iam::Client::new(&moto::direct_config().await);
    let attached: Vec<String> = iam
        .list_attached_user_policies()
        .user_name("leaky")
        .send()
        .await
        .unwrap()
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_owned))
        .collect();
    let mut inline: Vec<String> = iam
        .list_user_policies()
        .user_name("leaky")
        .send()
        .await
        .unwrap()
        .policy_names()
        .to_vec();
    inline.sort();
    let mut tags: Vec<(String, String)> = iam
        .list_user_tags()
        .user_name("leaky")
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    tags.sort();
    let keys = sandbox::key_statuses(&iam, "leaky").await;
    json!({ "attached": attached, "inline": inline, "tags": tags, "keys": keys })
}

/// `runbooks/iam-release.yaml` on the journal `journal_param` names, with `extra` arguments.
fn iam_release(dir: &std::path::Path, journal_param: &str, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec![
        "run",
        "runbooks/iam-release.yaml",
        "-p",
        journal_param,
        "--yes",
    ];
    args.extend_from_slice(extra);
    cli_on_moto(dir, &args)
}

#[tokio::test]
async fn an_iam_release_undoes_what_the_key_runbook_added_and_the_key_only_when_asked() {
    let _moto = moto::exclusive().await;
    sandbox::seed("web-1");
    let key = state::seed_principals().await;
    let before = describe().await;
    let dir = tempfile::tempdir().unwrap();
    let (code, contained, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            "runbooks/iam-access-key-compromise.yaml",
            "-p",
            &format!("access_key_id={key}"),
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{contained:#}");
    let now = describe().await;
    assert_ne!(now, before);
    let journal_param = format!("journal={}", contained["journal"].as_str().unwrap());

    // Without reactivate_key the key stays inactive; everything else goes back.
    let (code, released, stderr) = iam_release(dir.path(), &journal_param, &[]);
    assert_eq!(code, 0, "{stderr}\n{released:#}");
    let after = describe().await;
    assert_eq!(after["attached"], before["attached"]);
    assert_eq!(after["inline"], before["inline"]);
    assert_eq!(after["tags"], before["tags"]);
    assert!(after["keys"].to_string().contains("Inactive"), "{after}");
    let restored = released["steps"][1]["outputs"]["restored"].to_string();
    assert!(
        restored.contains("console password") && restored.contains("not re-created"),
        "{restored}"
    );

    // With it, the key is back too: the user is as before, but for its console password.
    let (code, again, stderr) =
        iam_release(dir.path(), &journal_param, &["-p", "reactivate_key=true"]);
    assert_eq!(code, 0, "{stderr}\n{again:#}");
    assert_eq!(describe().await, before);
    let sent: Vec<String> =
        journal::values(std::path::Path::new(again["journal"].as_str().unwrap()))
            .iter()
            .filter(|r| r["type"] == "api_call")
            .filter_map(|r| r["operation"].as_str().map(str::to_owned))
            .filter(|op| journal::is_mutating(op))
            .collect();
    assert_eq!(sent, ["UpdateAccessKey"], "only the key was left to do");
}

/// What the role containment touches: role `web-1-app`'s policies and tags, and the instance
/// profile associated with `instance`.
async fn describe_role(instance: &str) -> Value {
    let config = moto::direct_config().await;
    let iam = aws_sdk_iam::Client::new(&config);
    let mut inline: Vec<String> = iam
        .list_role_policies()
        .role_name("web-1-app")
        .send()
        .await
        .unwrap()
        .policy_names()
        .to_vec();
    inline.sort();
    let attached: Vec<String> = iam
        .list_attached_role_policies()
        .role_name("web-1-app")
        .send()
        .await
        .unwrap()
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_owned))
        .collect();
    let mut tags: Vec<(String, String)> = iam
        .list_role_tags()
        .role_name("web-1-app")
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    tags.sort();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let profiles: Vec<String> = ec2
        .describe_iam_instance_profile_associations()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-id")
                .values(instance)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .iam_instance_profile_associations()
        .iter()
        .filter(|a| {
            a.state() == Some(&aws_sdk_ec2::types::IamInstanceProfileAssociationState::Associated)
        })
        .filter_map(|a| {
            a.iam_instance_profile()
                .and_then(|p| p.arn())
                .map(str::to_owned)
        })
        .collect();
    json!({ "inline": inline, "attached": attached, "tags": tags, "profiles": profiles })
}

/// `runbooks/iam-role-credential-exfiltration.yaml` on the seeded instance's role, then its
/// release: `iam-release` puts the role back (the session revocation and the tags go) and
/// `ec2-release` the instance's own profile — role and instance as they were before.
#[tokio::test]
async fn the_role_containment_is_undone_by_the_iam_and_ec2_releases() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    state::seed_principals().await;
    let instance = ids["instance_id"].as_str().unwrap().to_owned();
    let before = describe_role(&instance).await;
    let dir = tempfile::tempdir().unwrap();
    let (code, contained, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            "runbooks/iam-role-credential-exfiltration.yaml",
            "-p",
            "role_name=web-1-app",
            "-p",
            &format!("instance_id={instance}"),
            "-p",
            &format!(
                "quarantine_profile_arn={}",
                ids["quarantine_profile_arn"].as_str().unwrap()
            ),
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{contained:#}");
    let now = describe_role(&instance).await;
    assert_ne!(now["inline"], before["inline"], "no session revocation");
    assert_eq!(
        now["profiles"],
        json!([ids["quarantine_profile_arn"]]),
        "the role still reaches the instance"
    );
    let journal_param = format!("journal={}", contained["journal"].as_str().unwrap());

    let (code, released, stderr) = iam_release(dir.path(), &journal_param, &[]);
    assert_eq!(code, 0, "{stderr}\n{released:#}");
    let (code, released, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            "runbooks/ec2-release.yaml",
            "-p",
            &journal_param,
            "-p",
            &format!("instance_ids={instance}"),
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{released:#}");
    assert_eq!(describe_role(&instance).await, before);
}
