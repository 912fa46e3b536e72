//! The forensic clean room against moto: the real template creates once (even across a crash),
//! and `forensic-clean-room` runs end to end on the snapshots of an `ec2-instance-compromise` run.

use std::path::PathBuf;

use crate::support::{crash, firebreak, moto, sandbox};
use serde_json::Value;

#[tokio::test]
async fn the_clean_room_template_creates_once_even_across_a_crash() {
    let _moto = moto::exclusive().await;
    let prefix_list = sandbox::s3_prefix_list().await;
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("s3_prefix_list_id={prefix_list}");
    let journal = crash::crash_at(
        "before-step-finished:clean_room",
        dir.path(),
        &[
            "run",
            "tests/fixtures/clean-room/stack-only.yaml",
            "-p",
            "case_id=case-7",
            "-p",
            "availability_zone=us-east-1a",
            "-p",
            &prefix,
        ],
    );
    let resumed = crash::resume(dir.path(), &journal, &["--output", "json"]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    let outcome: Value = serde_json::from_str(&resumed.stdout).unwrap();
    let outputs = &outcome["steps"][0]["outputs"];
    assert_eq!(outputs["status"], "CREATE_COMPLETE");
    assert_eq!(
        outputs["created"], false,
        "the resumed step found the stack it made"
    );
    for key in [
        "VpcId",
        "SubnetId",
        "AvailabilityZone",
        "WorkstationInstanceId",
        "EvidenceBucketName",
        "EvidenceKeyArn",
        "InvestigatorRoleArn",
        "WorkstationSecurityGroupId",
        "FlowLogGroupName",
    ] {
        assert!(
            outputs["outputs"][key]
                .as_str()
                .is_some_and(|v| !v.is_empty()),
            "output {key} missing: {outputs}"
        );
    }
    let cloudformation = aws_sdk_cloudformation::Client::new(&moto::direct_config().await);
    let stacks = cloudformation.describe_stacks().send().await.unwrap();
    assert_eq!(stacks.stacks().len(), 1, "one stack, not two");
    let records = crate::support::journal::values(&journal);
    assert_eq!(
        records
            .iter()
            .filter(|r| r["operation"] == "CreateStack")
            .count(),
        1
    );
    assert!(
        records.iter().any(|r| r["type"] == "stack_event"),
        "stack events are journaled"
    );
}

#[tokio::test]
async fn forensic_clean_room_runs_on_the_snapshots_of_a_containment_run() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let dir = tempfile::tempdir().unwrap();
    let contain = firebreak()
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", dir.path())
        .args([
            "run",
            "runbooks/ec2-instance-compromise.yaml",
            "--yes",
            "--output",
            "json",
        ])
        .args([
            "-p",
            &format!("instance_id={}", ids["instance_id"].as_str().unwrap()),
        ])
        .args(["-p", "case_id=case-9"])
        .output()
        .unwrap();
    assert_eq!(
        contain.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&contain.stderr)
    );
    let contained: Value = serde_json::from_slice(&contain.stdout).unwrap();
    let snapshot_step = crate::support::json::step(&contained, "snapshot");
    let snapshots: Vec<String> =
        serde_json::from_value(snapshot_step["outputs"]["snapshot_ids"].clone()).unwrap();
    assert_eq!(snapshots.len(), 2);

    let prefix_list = sandbox::s3_prefix_list().await;
    let room = firebreak()
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", dir.path())
        .args([
            "run",
            "runbooks/forensic-clean-room.yaml",
            "--output",
            "json",
        ])
        .args(["-p", "case_id=case-9", "-p", "availability_zone=us-east-1a"])
        .args(["-p", &format!("snapshot_ids={}", snapshots.join(","))])
        .args(["-p", &format!("s3_prefix_list_id={prefix_list}")])
        .args([
            "-p",
            "investigator_principal_arn=arn:aws:iam::123456789012:role/ir-team",
        ])
        .output()
        .unwrap();
    assert_eq!(
        room.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&room.stderr)
    );
    let outcome: Value = serde_json::from_slice(&room.stdout).unwrap();
    let step = |id: &str| crate::support::json::step(&outcome, id).clone();
    let workstation = step("clean_room")["outputs"]["outputs"]["WorkstationInstanceId"]
        .as_str()
        .unwrap()
        .to_owned();
    let copies: Vec<String> =
        serde_json::from_value(step("copy")["outputs"]["snapshot_ids"].clone()).unwrap();
    assert_eq!(copies.len(), 2);
    assert!(
        copies.iter().all(|c| !snapshots.contains(c)),
        "copies are new snapshots"
    );
    let attached = step("attach")["outputs"]["volumes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(attached.len(), 2);
    let ec2 = sandbox::ec2().await;
    for volume in &attached {
        let id = volume["volume_id"].as_str().unwrap();
        let described = ec2.describe_volumes().volume_ids(id).send().await.unwrap();
        let described = &described.volumes()[0];
        assert_eq!(
            described.attachments()[0].instance_id(),
            Some(workstation.as_str())
        );
        assert!(
            described
                .tags()
                .iter()
                .any(|t| t.key() == Some("firebreak:case") && t.value() == Some("case-9"))
        );
    }
    assert_eq!(step("hash")["outputs"]["status"], "Success");
    let journal = PathBuf::from(outcome["journal"].as_str().unwrap());
    let verified = firebreak()
        .args(["journal", "verify"])
        .arg(&journal)
        .output()
        .unwrap();
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}
