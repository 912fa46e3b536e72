//! `ec2.stop_instance` against moto: stops (never terminates), waits when asked, and a second
//! run changes nothing. (moto stops at once; the polling wait is tested with mocks in
//! ec2_mocked.rs.)

use crate::support::run::{drill_on, ec2_fixture as run, id, live_on};
use crate::support::{moto, sandbox};

async fn state(ec2: &aws_sdk_ec2::Client, instance: &str) -> String {
    let out = ec2
        .describe_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap();
    out.reservations()[0].instances()[0]
        .state()
        .and_then(|s| s.name())
        .unwrap()
        .as_str()
        .to_owned()
}

#[tokio::test]
async fn stops_and_waits_and_a_rerun_changes_nothing() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let ec2 = sandbox::ec2().await;
    assert_eq!(state(&ec2, &instance).await, "running");

    let dir = tempfile::tempdir().unwrap();
    let first = live_on(dir.path(), "stop.yaml", &instance).await;
    first.assert_succeeded();
    let out = first.outputs("stop");
    assert_eq!(out["changed"], true, "{out}");
    assert_eq!(out["state_before"], "running");
    assert_eq!(out["state_after"], "stopped");
    assert_eq!(out["waited"], true);
    let mutating: Vec<_> = first
        .mutating_calls()
        .iter()
        .map(|r| r["operation"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(mutating, ["StopInstances"]);
    assert_eq!(state(&ec2, &instance).await, "stopped");

    let second = live_on(dir.path(), "stop.yaml", &instance).await;
    second.assert_succeeded().assert_no_mutating_calls();
    let out = second.outputs("stop");
    assert_eq!(out["changed"], false, "{out}");
    assert_eq!(out["state_before"], "stopped");
    assert_eq!(out["state_after"], "stopped");
}

#[tokio::test]
async fn without_wait_it_reports_the_state_stop_instances_answered() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");

    let dir = tempfile::tempdir().unwrap();
    let ran = run(
        dir.path(),
        "stop.yaml",
        &[("instance_id", &instance), ("wait", "false")],
        false,
    )
    .await;
    ran.assert_succeeded();
    let out = ran.outputs("stop");
    assert_eq!(out["state_after"], "stopping", "{out}");
    assert_eq!(out["waited"], false);
    // Only the describe before: no polling.
    assert_eq!(
        ran.calls(),
        ["ec2:DescribeInstances", "ec2:StopInstances"],
        "{:#?}",
        ran.journal
    );
}

#[tokio::test]
async fn a_drill_sends_a_dry_run_and_changes_nothing() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let ec2 = sandbox::ec2().await;

    let dir = tempfile::tempdir().unwrap();
    let drill = drill_on(dir.path(), "stop.yaml", &instance).await;
    drill.assert_succeeded();
    let out = drill.outputs("stop");
    assert_eq!(out["dry_run"], true, "{out}");
    assert_eq!(out["would_change"], true);
    assert_eq!(out["state_after"], "running");
    assert_eq!(out["waited"], false);
    let mutating = drill.mutating_calls();
    assert_eq!(mutating.len(), 1, "{mutating:#?}");
    assert_eq!(mutating[0]["operation"], "StopInstances");
    assert_eq!(mutating[0]["outcome"], "would-succeed");
    assert_eq!(state(&ec2, &instance).await, "running");
}
