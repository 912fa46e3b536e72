//! `ec2.protect_instance` against moto: termination protection, shutdown behaviour and
//! DeleteOnTermination are set, only where they differ, and a second run changes nothing.

use crate::support::run::{drill_on, id, live_on};
use crate::support::{moto, sandbox};
use aws_sdk_ec2::types::InstanceAttributeName;
use serde_json::json;

/// (termination protection, shutdown behaviour, [(volume, delete on termination)], groups)
async fn state(
    ec2: &aws_sdk_ec2::Client,
    instance: &str,
) -> (bool, String, Vec<(String, bool)>, Vec<String>) {
    let protection = ec2
        .describe_instance_attribute()
        .instance_id(instance)
        .attribute(InstanceAttributeName::DisableApiTermination)
        .send()
        .await
        .unwrap()
        .disable_api_termination()
        .and_then(|v| v.value())
        .unwrap();
    let shutdown = ec2
        .describe_instance_attribute()
        .instance_id(instance)
        .attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior)
        .send()
        .await
        .unwrap()
        .instance_initiated_shutdown_behavior()
        .and_then(|v| v.value())
        .unwrap()
        .to_owned();
    let described = ec2
        .describe_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap();
    let described = &described.reservations()[0].instances()[0];
    let volumes = described
        .block_device_mappings()
        .iter()
        .map(|m| {
            let ebs = m.ebs().unwrap();
            (
                ebs.volume_id().unwrap().to_owned(),
                ebs.delete_on_termination().unwrap(),
            )
        })
        .collect();
    let groups = described
        .security_groups()
        .iter()
        .map(|g| g.group_id().unwrap().to_owned())
        .collect();
    (protection, shutdown, volumes, groups)
}

#[tokio::test]
async fn protects_only_what_differs_and_a_rerun_changes_nothing() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let ec2 = sandbox::ec2().await;
    // moto starts instances with shutdown behaviour `stop`; make all three settings differ.
    ec2.modify_instance_attribute()
        .instance_id(&instance)
        .attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior)
        .value("terminate")
        .send()
        .await
        .unwrap();
    let (_, _, volumes_before, groups_before) = state(&ec2, &instance).await;
    // The seeded root volume goes with the instance, the attached data volume does not.
    let root = volumes_before
        .iter()
        .find(|(_, delete)| *delete)
        .expect("a volume deleted on termination")
        .0
        .clone();
    assert!(volumes_before.iter().any(|(_, delete)| !delete));

    let dir = tempfile::tempdir().unwrap();
    let first = live_on(dir.path(), "protect.yaml", &instance).await;
    first.assert_succeeded();
    let out = first.outputs("protect");
    assert_eq!(out["changed"], true, "{out}");
    assert_eq!(
        out["termination_protection"],
        json!({"before": false, "after": true})
    );
    assert_eq!(
        out["shutdown_behavior"],
        json!({"before": "terminate", "after": "stop"})
    );
    assert_eq!(out["volumes_changed"], json!([root]));
    for volume in out["volumes"].as_array().unwrap() {
        assert_eq!(volume["delete_on_termination_after"], false, "{volume}");
    }
    // One call per setting; the volume call carries only the volume that differed.
    let modifications: Vec<_> = first
        .mutating_calls()
        .into_iter()
        .map(|r| r["targets"].clone())
        .collect();
    assert_eq!(
        modifications,
        [
            json!([instance]),
            json!([instance]),
            json!([instance, root])
        ],
        "{:#?}",
        first.calls()
    );

    let (protection, shutdown, volumes, groups) = state(&ec2, &instance).await;
    assert!(protection);
    assert_eq!(shutdown, "stop");
    assert!(volumes.iter().all(|(_, delete)| !delete), "{volumes:?}");
    assert_eq!(
        groups, groups_before,
        "protecting must not touch the groups"
    );
    let refused = ec2
        .terminate_instances()
        .instance_ids(&instance)
        .send()
        .await
        .expect_err("termination protection refuses TerminateInstances");
    assert_eq!(
        aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&refused),
        Some("OperationNotPermitted")
    );

    let second = live_on(dir.path(), "protect.yaml", &instance).await;
    second.assert_succeeded().assert_no_mutating_calls();
    let out = second.outputs("protect");
    assert_eq!(out["changed"], false, "{out}");
    assert_eq!(
        out["termination_protection"],
        json!({"before": true, "after": true})
    );
    assert_eq!(
        out["shutdown_behavior"],
        json!({"before": "stop", "after": "stop"})
    );
    assert_eq!(out["volumes_changed"], json!([]));
}

#[tokio::test]
async fn a_drill_sends_dry_runs_and_changes_nothing() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let ec2 = sandbox::ec2().await;
    let before = state(&ec2, &instance).await;

    let dir = tempfile::tempdir().unwrap();
    let drill = drill_on(dir.path(), "protect.yaml", &instance).await;
    drill.assert_succeeded();
    assert_eq!(drill.outcome["mode"], "dry-run");
    let out = drill.outputs("protect");
    assert_eq!(out["dry_run"], true, "{out}");
    assert_eq!(out["changed"], false);
    assert_eq!(out["would_change"], true);
    assert_eq!(
        out["termination_protection"],
        json!({"before": false, "after": true})
    );
    // Shutdown behaviour is already `stop`: only two modifications would be made.
    let mutating = drill.mutating_calls();
    assert_eq!(mutating.len(), 2, "{mutating:#?}");
    for call in mutating {
        assert_eq!(call["operation"], "ModifyInstanceAttribute");
        assert_eq!(call["outcome"], "would-succeed", "{call}");
        assert_eq!(call["dry_run"], true);
        assert_eq!(call["code"], "DryRunOperation");
    }
    assert_eq!(state(&ec2, &instance).await, before, "a drill changed moto");
}
