//! `ec2.detach_from_autoscaling` against moto: protected from scale-in first, then detached or
//! put in standby; a second run changes nothing; a drill sends nothing.

use crate::support::run::{drill_on, ec2_fixture as run, id, live_on};
use crate::support::{moto, sandbox};
use serde_json::json;

async fn autoscaling() -> aws_sdk_autoscaling::Client {
    aws_sdk_autoscaling::Client::new(&moto::direct_config().await)
}

/// The instance's (lifecycle state, protected from scale-in), if it is in a group.
async fn membership(
    client: &aws_sdk_autoscaling::Client,
    instance: &str,
) -> Option<(String, bool)> {
    let out = client
        .describe_auto_scaling_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap();
    out.auto_scaling_instances().first().map(|i| {
        (
            i.lifecycle_state().unwrap().to_owned(),
            i.protected_from_scale_in().unwrap(),
        )
    })
}

async fn desired_capacity(client: &aws_sdk_autoscaling::Client, group: &str) -> i32 {
    client
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .unwrap()
        .auto_scaling_groups()[0]
        .desired_capacity()
        .unwrap()
}

#[tokio::test]
async fn detaches_after_protecting_and_a_rerun_changes_nothing() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let group = id(&ids, "autoscaling_group");
    let client = autoscaling().await;
    assert_eq!(
        membership(&client, &instance).await,
        Some(("InService".into(), false))
    );

    let dir = tempfile::tempdir().unwrap();
    let first = live_on(dir.path(), "autoscaling.yaml", &instance).await;
    first.assert_succeeded();
    let out = first.outputs("detach");
    assert_eq!(out["in_group"], true, "{out}");
    assert_eq!(out["autoscaling_group"], group.as_str());
    assert_eq!(out["lifecycle_state_before"], "InService");
    assert_eq!(out["protected_from_scale_in_before"], false);
    assert_eq!(out["mode"], "detach");
    assert_eq!(
        out["done"],
        json!(["set_instance_protection", "detach_instances"])
    );
    assert_eq!(out["activity_ids"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(out["changed"], true);
    // Protection first, so the group cannot scale it in between the two calls.
    let mutating: Vec<_> = first
        .mutating_calls()
        .iter()
        .map(|r| r["operation"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(mutating, ["SetInstanceProtection", "DetachInstances"]);

    assert_eq!(membership(&client, &instance).await, None);
    assert_eq!(
        desired_capacity(&client, &group).await,
        1,
        "not decremented"
    );

    let second = live_on(dir.path(), "autoscaling.yaml", &instance).await;
    second.assert_succeeded().assert_no_mutating_calls();
    let out = second.outputs("detach");
    assert_eq!(out["in_group"], false, "{out}");
    assert_eq!(out["changed"], false);
}

#[tokio::test]
async fn standby_with_decrement_and_a_rerun_changes_nothing() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let group = id(&ids, "autoscaling_group");
    let client = autoscaling().await;
    // moto lets the group go to 0 only if its minimum allows it.
    client
        .update_auto_scaling_group()
        .auto_scaling_group_name(&group)
        .min_size(0)
        .send()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let params = [
        ("instance_id", instance.as_str()),
        ("mode", "standby"),
        ("decrement", "true"),
    ];
    let first = run(dir.path(), "autoscaling.yaml", &params, false).await;
    first.assert_succeeded();
    let out = first.outputs("detach");
    assert_eq!(out["mode"], "standby", "{out}");
    assert_eq!(out["decrement_desired_capacity"], true);
    assert_eq!(
        out["done"],
        json!(["set_instance_protection", "enter_standby"])
    );
    assert_eq!(
        membership(&client, &instance).await,
        Some(("Standby".into(), true))
    );
    assert_eq!(desired_capacity(&client, &group).await, 0);

    let second = run(dir.path(), "autoscaling.yaml", &params, false).await;
    second.assert_succeeded().assert_no_mutating_calls();
    let out = second.outputs("detach");
    assert_eq!(out["in_group"], true, "{out}");
    assert_eq!(out["lifecycle_state_before"], "Standby");
    assert_eq!(out["reason"], "already in standby");
    assert_eq!(out["done"], json!([]));
    assert_eq!(out["changed"], false);
}

#[tokio::test]
async fn an_already_protected_instance_is_only_detached() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let group = id(&ids, "autoscaling_group");
    let client = autoscaling().await;
    client
        .set_instance_protection()
        .auto_scaling_group_name(&group)
        .instance_ids(&instance)
        .protected_from_scale_in(true)
        .send()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ran = live_on(dir.path(), "autoscaling.yaml", &instance).await;
    ran.assert_succeeded();
    let out = ran.outputs("detach");
    assert_eq!(out["protected_from_scale_in_before"], true, "{out}");
    assert_eq!(out["done"], json!(["detach_instances"]));
    assert_eq!(ran.mutating_calls().len(), 1);
    assert_eq!(membership(&client, &instance).await, None);
}

#[tokio::test]
async fn a_drill_sends_nothing_to_autoscaling() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let client = autoscaling().await;

    let dir = tempfile::tempdir().unwrap();
    let drill = drill_on(dir.path(), "autoscaling.yaml", &instance).await;
    drill.assert_succeeded();
    let out = drill.outputs("detach");
    assert_eq!(out["dry_run"], true, "{out}");
    assert_eq!(out["would_change"], true);
    assert_eq!(out["changed"], false);
    assert_eq!(
        out["done"],
        json!(["set_instance_protection", "detach_instances"])
    );
    let mutating = drill.mutating_calls();
    assert_eq!(mutating.len(), 2, "{mutating:#?}");
    for call in mutating {
        assert_eq!(call["outcome"], "not-sent (dry run)", "{call}");
        assert_eq!(call["input"]["InstanceIds"], json!([instance]));
    }
    assert_eq!(
        membership(&client, &instance).await,
        Some(("InService".into(), false)),
        "a drill changed moto"
    );
}
