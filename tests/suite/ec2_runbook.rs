//! `runbooks/ec2-instance-compromise.yaml` end to end against moto: every effect, a re-run that
//! changes nothing, and a crash at every journal boundary followed by `resume`.

use std::path::{Path, PathBuf};

use crate::support::run::id;
use crate::support::{crash, firebreak, moto, output, sandbox};
use aws_sdk_ec2::types::{Filter, InstanceAttributeName};
use serde_json::Value;

const RUNBOOK: &str = "runbooks/ec2-instance-compromise.yaml";

/// `firebreak run` of the runbook on the seeded instance, approvals given.
fn contain_args(ids: &Value) -> Vec<String> {
    vec![
        "run".into(),
        RUNBOOK.into(),
        "--yes".into(),
        "--output".into(),
        "json".into(),
        "-p".into(),
        format!("instance_id={}", id(ids, "instance_id")),
        "-p".into(),
        "case_id=case-42".into(),
        "-p".into(),
        format!(
            "quarantine_profile_arn={}",
            id(ids, "quarantine_profile_arn")
        ),
    ]
}

fn contain(dir: &Path, ids: &Value) -> (Option<i32>, Value, String) {
    let out = output(crash::command(dir).args(contain_args(ids)));
    (
        out.code,
        serde_json::from_str(&out.stdout).unwrap_or(Value::Null),
        out.stderr,
    )
}

fn mutating_calls(journal: &Path) -> Vec<String> {
    crate::support::journal::values(journal)
        .iter()
        .filter(|r| r["type"] == "api_call")
        .filter_map(|r| r["operation"].as_str().map(str::to_owned))
        .filter(|op| {
            !["Describe", "Get", "List", "Lookup"]
                .iter()
                .any(|p| op.starts_with(p))
        })
        .collect()
}

/// Everything the runbook promises, checked in moto.
async fn assert_contained(ids: &Value, outcome_journal: &Path) {
    let config = moto::direct_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let instance = ids["instance_id"].as_str().unwrap();

    // Every interface in the no-rule group, and in no other firebreak or original group.
    let isolation = sandbox::firebreak_groups(&ec2, "isolation").await;
    assert_eq!(isolation.len(), 1, "one isolation group per VPC");
    let isolation = isolation[0].clone();
    for group in [
        isolation.as_str(),
        ids["security_groups"]["web"].as_str().unwrap(),
        ids["security_groups"]["admin"].as_str().unwrap(),
    ] {
        let count = sandbox::interfaces_in(&ec2, instance, group).await.len();
        assert_eq!(
            count,
            if group == isolation { 2 } else { 0 },
            "interfaces in {group}"
        );
    }
    // Termination protection on; volumes kept on termination.
    let protection = ec2
        .describe_instance_attribute()
        .instance_id(instance)
        .attribute(InstanceAttributeName::DisableApiTermination)
        .send()
        .await
        .unwrap();
    assert_eq!(
        protection.disable_api_termination().and_then(|v| v.value()),
        Some(true)
    );
    let described = ec2
        .describe_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap();
    let described = &described.reservations()[0].instances()[0];
    for mapping in described.block_device_mappings() {
        assert_eq!(
            mapping.ebs().and_then(|e| e.delete_on_termination()),
            Some(false),
            "{mapping:?}"
        );
    }
    // Metadata endpoint off.
    assert_eq!(
        described
            .metadata_options()
            .and_then(|m| m.http_endpoint())
            .map(|e| e.as_str()),
        Some("disabled")
    );
    // Out of its Auto Scaling group.
    let membership = autoscaling
        .describe_auto_scaling_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap();
    assert!(
        membership.auto_scaling_instances().is_empty(),
        "still in a group: {membership:?}"
    );
    // Elastic IP disassociated.
    let addresses = ec2
        .describe_addresses()
        .allocation_ids(ids["eip_allocation_id"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(addresses.addresses()[0].association_id().is_none());
    // Profile replaced by the quarantine one.
    let current = sandbox::associated_profile(&ec2, instance).await;
    assert_eq!(current.as_deref(), ids["quarantine_profile_arn"].as_str());
    // The credentials it was already issued are denied on its original role, for it alone.
    let role = ids["instance_profile_arn"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    assert_eq!(
        sandbox::denied_instances(role).await,
        [format!(
            "arn:aws:ec2:us-east-1:123456789012:instance/{instance}"
        )]
    );
    // Exactly one snapshot per volume, tagged with the case.
    let snapshots = ec2
        .describe_snapshots()
        .filters(
            Filter::builder()
                .name("tag:firebreak:case")
                .values("case-42")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut volumes: Vec<&str> = snapshots
        .snapshots()
        .iter()
        .filter_map(|s| s.volume_id())
        .collect();
    volumes.sort();
    let mut expected: Vec<&str> = ids["volume_ids"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    expected.sort();
    assert_eq!(volumes, expected, "one snapshot per volume");
    // Stopped.
    assert_eq!(
        described.state().and_then(|s| s.name()).map(|n| n.as_str()),
        Some("stopped")
    );
    // The journal verifies, evidence included.
    let verified = firebreak()
        .args(["journal", "verify"])
        .arg(outcome_journal)
        .output()
        .unwrap();
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}

#[tokio::test]
async fn contains_the_seeded_instance_and_a_rerun_changes_nothing() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let dir = tempfile::tempdir().unwrap();
    let (code, outcome, stderr) = contain(dir.path(), &ids);
    assert_eq!(code, Some(0), "{stderr}");
    let journal = PathBuf::from(outcome["journal"].as_str().unwrap());
    assert_contained(&ids, &journal).await;

    // The console output is evidence with a matching hash.
    let records = crate::support::journal::values(&journal);
    let evidence: Vec<&Value> = records.iter().filter(|r| r["type"] == "evidence").collect();
    assert!(!evidence.is_empty());
    let artifact = &evidence[0]["artifact"];
    let bytes = std::fs::read(artifact["path"].as_str().unwrap()).unwrap();
    use sha2::Digest;
    assert_eq!(
        artifact["sha256"],
        hex::encode(sha2::Sha256::digest(&bytes))
    );

    let (code, again, stderr) = contain(dir.path(), &ids);
    assert_eq!(code, Some(0), "{stderr}");
    let second = PathBuf::from(again["journal"].as_str().unwrap());
    assert_eq!(
        mutating_calls(&second),
        Vec::<String>::new(),
        "a re-run must change nothing"
    );
    assert_contained(&ids, &second).await;
}

#[tokio::test]
async fn crash_at_every_boundary_then_resume_completes_exactly_once() {
    crash::assert_fault_injection();
    let steps = [
        "describe",
        "protect",
        "detach_asg",
        "console",
        "isolate",
        "metadata",
        "profile",
        "addresses",
        "snapshot",
        "tag",
        "approve_stop",
        "stop",
    ];
    let mut points = vec!["after-run-started".to_string()];
    for step in steps {
        for point in [
            "after-step-started",
            "before-step-finished",
            "after-step-finished",
        ] {
            points.push(format!("{point}:{step}"));
        }
    }
    for point in &points {
        let _moto = moto::exclusive().await;
        let ids = sandbox::seed("web-1");
        let dir = tempfile::tempdir().unwrap();
        let args = contain_args(&ids);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let journal = crash::crash_at(point, dir.path(), &args);
        let resumed = crash::resume(dir.path(), &journal, &[]);
        assert_eq!(resumed.code, Some(0), "{point}: {}", resumed.stderr);
        let records = crate::support::journal::values(&journal);
        for step in steps {
            let done = records
                .iter()
                .filter(|r| r["type"] == "step_succeeded" && r["step"] == step)
                .count();
            assert_eq!(done, 1, "{point}: step {step} succeeded {done} times");
        }
        assert_contained(&ids, &journal).await;
    }
}

/// H3: both EC2 runbooks on their defaults (no quarantine profile: the profile is removed, as
/// dispatch runs them), on instances that have a profile, then again for the same case (as a
/// redelivered finding is): the second run of each exits 0 and makes no change at all. (Without
/// a case id each run is its own case, `run.id`, and takes its own snapshots.)
#[tokio::test]
async fn both_ec2_runbooks_on_their_defaults_rerun_with_zero_changes() {
    let _moto = moto::exclusive().await;
    let single = sandbox::seed("solo-1");
    let fleet: Vec<String> = (0..3)
        .map(|i| id(&sandbox::seed(&format!("fleet-{i}")), "instance_id"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let runs: [(&str, String); 2] = [
        (
            "runbooks/ec2-instance-compromise.yaml",
            format!("instance_id={}", id(&single, "instance_id")),
        ),
        (
            "runbooks/ec2-fleet-containment.yaml",
            format!("instance_ids={}", fleet.join(",")),
        ),
    ];
    for (runbook, param) in &runs {
        let args = [
            "run",
            runbook,
            "--yes",
            "--output",
            "json",
            "-p",
            param,
            "-p",
            "case_id=case-7",
        ];
        for attempt in ["first", "second"] {
            let out = output(crash::command(dir.path()).args(args));
            assert_eq!(
                out.code,
                Some(0),
                "{runbook} ({attempt} run): {}",
                out.stderr
            );
            let outcome: Value = serde_json::from_str(&out.stdout).unwrap();
            let journal = PathBuf::from(outcome["journal"].as_str().unwrap());
            if attempt == "second" {
                assert_eq!(
                    mutating_calls(&journal),
                    Vec::<String>::new(),
                    "{runbook}: a re-run must change nothing"
                );
            } else {
                assert!(
                    mutating_calls(&journal).contains(&"DisassociateIamInstanceProfile".to_owned()),
                    "{runbook}: the default removes the profile"
                );
            }
        }
    }
}
