//! The outbreak: many instances over several VPCs isolated at once, against moto through the
//! counting proxy. Concurrent items must not race to find or create the per-VPC groups (once
//! per VPC per run), and two runs at once must end with one pair of groups per VPC too.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::support::journal::{self, Journal};
use crate::support::{cli_on_moto, firebreak, moto, proxy, sandbox};

/// Each VPC's firebreak groups of `role`.
async fn groups_by_vpc(role: &str) -> BTreeMap<String, Vec<String>> {
    let described = sandbox::ec2()
        .await
        .describe_security_groups()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:firebreak:role")
                .values(role)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut by_vpc: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for group in described.security_groups() {
        by_vpc
            .entry(group.vpc_id().unwrap_or_default().to_owned())
            .or_default()
            .push(group.group_id().unwrap_or_default().to_owned());
    }
    by_vpc
}

/// Every interface in `group` (the `group-id` filter reads an interface's own groups exactly).
async fn members(group: &str) -> BTreeSet<String> {
    sandbox::ec2()
        .await
        .describe_network_interfaces()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("group-id")
                .values(group)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .network_interfaces()
        .iter()
        .filter_map(|e| e.network_interface_id().map(str::to_owned))
        .collect()
}

/// One pair of groups per VPC; every interface of the fleet in its VPC's isolation group and
/// none in an untrack group.
pub(crate) async fn assert_one_pair_per_vpc_and_all_isolated(fleet: &Value) {
    let isolation = groups_by_vpc("isolation").await;
    let untrack = groups_by_vpc("untrack").await;
    let vpcs: BTreeSet<&str> = fleet["vpcs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["vpc_id"].as_str().unwrap())
        .collect();
    for vpc in &vpcs {
        assert_eq!(
            isolation.get(*vpc).map(Vec::len),
            Some(1),
            "{vpc}: {isolation:?}"
        );
        assert_eq!(
            untrack.get(*vpc).map(Vec::len),
            Some(1),
            "{vpc}: {untrack:?}"
        );
    }
    for vpc in &vpcs {
        let isolated = members(&isolation[*vpc][0]).await;
        assert!(
            members(&untrack[*vpc][0]).await.is_empty(),
            "{vpc}: left untracked"
        );
        let expected: BTreeSet<String> = fleet["instances"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["vpc_id"] == *vpc)
            .flat_map(|i| i["network_interface_ids"].as_array().unwrap().clone())
            .map(|e| e.as_str().unwrap().to_owned())
            .collect();
        let missing: Vec<&String> = expected.difference(&isolated).collect();
        assert!(missing.is_empty(), "{vpc}: not isolated: {missing:?}");
    }
}

/// Exactly one snapshot of every volume of the fleet (for `case`, or for any case); returns how
/// many volumes.
pub(crate) async fn assert_one_snapshot_per_volume(fleet: &Value, case: Option<&str>) -> usize {
    let snapshots = sandbox::ec2()
        .await
        .describe_snapshots()
        .owner_ids("self")
        .set_filters(case.map(|case| {
            vec![
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:firebreak:case")
                    .values(case)
                    .build(),
            ]
        }))
        .send()
        .await
        .unwrap();
    let mut per_volume: BTreeMap<String, usize> = BTreeMap::new();
    for snapshot in snapshots.snapshots() {
        *per_volume
            .entry(snapshot.volume_id().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let volumes: BTreeSet<String> = fleet["instances"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["volume_ids"].as_array().unwrap().clone())
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    for volume in &volumes {
        assert_eq!(per_volume.get(volume), Some(&1), "{volume}: {per_volume:?}");
    }
    volumes.len()
}

pub(crate) fn ids(fleet: &Value) -> Vec<String> {
    fleet["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instance_id"].as_str().unwrap().to_owned())
        .collect()
}

/// 200 instances over 3 VPCs, 50 at a time, in one run: exactly one `CreateSecurityGroup` per
/// group at the wire (two per VPC), reads batched across items, every interface isolated, exit 0.
#[tokio::test]
async fn two_hundred_instances_over_three_vpcs_share_one_pair_of_groups_per_vpc() {
    let _moto = moto::exclusive().await;
    let fleet = sandbox::seed_fleet(200, 3);
    proxy::reset();
    let dir = tempfile::tempdir().unwrap();
    let instances = ids(&fleet).join(",");
    let (code, outcome, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            "tests/fixtures/ec2/isolate-fleet.yaml",
            "-p",
            &format!("instance_ids={instances}"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(outcome["status"], "succeeded");
    let creates = proxy::calls()
        .iter()
        .filter(|c| c.operation == "CreateSecurityGroup")
        .count();
    assert_eq!(creates, 6, "one CreateSecurityGroup per group, two per VPC");
    // Concurrent items' reads are coalesced: one DescribeInstances per item would be 200.
    let describes = proxy::calls()
        .iter()
        .filter(|c| c.operation == "DescribeInstances")
        .count();
    assert!(
        describes <= 200 / 5,
        "{describes} DescribeInstances for 200 instances: reads are not batched"
    );
    let authorizations: Vec<_> = proxy::calls()
        .into_iter()
        .filter(|c| c.operation.starts_with("AuthorizeSecurityGroup"))
        .collect();
    assert!(
        authorizations.iter().all(|c| c.status == Some(200)),
        "no colliding rule changes: {authorizations:?}"
    );
    assert_one_pair_per_vpc_and_all_isolated(&fleet).await;
}

/// Two runs at once on halves of one VPC's outbreak (two responders, or a finding dispatched
/// while a person runs the fleet runbook): the loser of the race for each group's name adopts
/// the winner's group; one pair of groups in the VPC, everything isolated, both exit 0.
#[tokio::test]
async fn two_runs_at_once_in_one_vpc_end_with_one_pair_of_groups() {
    let _moto = moto::exclusive().await;
    let fleet = sandbox::seed_fleet(60, 1);
    let all = ids(&fleet);
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = all
        .chunks(30)
        .map(|half| {
            firebreak()
                .envs(moto::env())
                .env("FIREBREAK_JOURNAL_DIR", dir.path())
                .args([
                    "run",
                    "tests/fixtures/ec2/isolate-fleet.yaml",
                    "--output",
                    "json",
                ])
                .args(["-p", &format!("instance_ids={}", half.join(","))])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_one_pair_per_vpc_and_all_isolated(&fleet).await;
}

/// `--max-targets` above the runbook's `max_targets`: a person at `run` may raise it up to
/// `max_targets_hard` (journaled with who did it), never beyond; without the flag, and at
/// `dispatch`, the default holds.
#[tokio::test]
async fn a_person_may_raise_the_target_limit_up_to_the_hard_cap_and_an_event_never() {
    use crate::support::aws::MockAws;
    use crate::support::run::Run;
    const THREE: &str = "i-0000000000000000a,i-0000000000000000b,i-0000000000000000c";
    let attempt = |asked: Option<u32>, raise: bool| async move {
        let dir = tempfile::tempdir().unwrap();
        let aws = MockAws::new().build();
        let ran = Run::fixture("engine/targets.yaml")
            .param("instance_ids", THREE)
            .clients(aws.clients.clone())
            .settings(move |s| firebreak::engine::Settings {
                max_targets: asked,
                raise_max_targets: raise,
                ..s
            })
            .start(dir.path())
            .await;
        let interlock = ran
            .journal
            .values()
            .into_iter()
            .find(|r| r["type"] == "interlock" && r["check"] == "max_targets")
            .expect("the max_targets interlock is journaled");
        (ran.outcome["status"].clone(), interlock)
    };
    let (status, interlock) = attempt(None, true).await;
    assert_ne!(status, "succeeded");
    assert_eq!(interlock["passed"], false);
    assert!(
        interlock["reason"]
            .as_str()
            .unwrap()
            .contains("raise it up to 4 with run --max-targets"),
        "{interlock}"
    );

    let (status, interlock) = attempt(Some(3), true).await;
    assert_eq!(status, "succeeded", "{interlock}");
    assert_eq!(interlock["limit"], 3);
    assert!(
        interlock["reason"]
            .as_str()
            .unwrap()
            .contains("raised from 2 to 3")
    );
    assert!(
        interlock["by"].is_string() && interlock["host"].is_string(),
        "{interlock}"
    );

    let (status, interlock) = attempt(Some(5), true).await;
    assert_ne!(status, "succeeded");
    assert!(
        interlock["reason"]
            .as_str()
            .unwrap()
            .contains("above the runbook's limits.max_targets_hard (4)"),
        "{interlock}"
    );

    // dispatch: the same flag cannot raise it.
    let (status, interlock) = attempt(Some(3), false).await;
    assert_ne!(status, "succeeded");
    assert_eq!(interlock["limit"], 2, "{interlock}");
}

/// The outbreak as a responder meets it: `ec2-fleet-containment` on 48 instances in one VPC,
/// live, `--yes`. Exit 0, every interface isolated in the VPC's one isolation group, exactly
/// one snapshot of each volume for the case, every instance stopped.
#[tokio::test]
async fn the_fleet_runbook_contains_forty_eight_instances_in_one_vpc() {
    let _moto = moto::exclusive().await;
    // One role for the whole fleet, as an Auto Scaling group's launch template gives it.
    let fleet = sandbox::seed_fleet_with(48, 1, &["--shared-profile", "fleet-app"]);
    let dir = tempfile::tempdir().unwrap();
    let instances = ids(&fleet);
    // Real interface moves do not all take the same time: a fifth of them answer 1.5 s late.
    // (Without that, 48 isolations at once on an idle emulator can all end together, and
    // whether one instance's next step starts before the last isolation ends is a coin toss.)
    proxy::reset();
    proxy::faults(
        48,
        json!([{"service": "ec2", "operation": "ModifyNetworkInterfaceAttribute",
                "fault": "delay", "rate": 0.2, "delay_ms": 1500}]),
    );
    let (code, outcome, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            "runbooks/ec2-fleet-containment.yaml",
            "-p",
            &format!("instance_ids={}", instances.join(",")),
            "-p",
            "case_id=outbreak-48",
            "--yes",
        ],
    );
    proxy::faults(48, json!([]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(outcome["status"], "succeeded");
    assert_one_pair_per_vpc_and_all_isolated(&fleet).await;

    // Per-instance pipelines: the group's outcome lists every instance in order, and an
    // instance went on to its next step while another was still being isolated (step by step,
    // every isolation would come before the first metadata change).
    let contain = &outcome["steps"][0];
    assert_eq!(contain["id"], "contain");
    let listed: Vec<&str> = contain["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"].as_str().unwrap())
        .collect();
    assert_eq!(listed, instances);
    let journal = Journal::read(&journal::only_journal(dir.path()));
    let values = journal.values();
    let position = |kind: &str, step: &str, last: bool| {
        let mut found = values
            .iter()
            .enumerate()
            .filter(|(_, r)| r["type"] == kind && r["step"] == step)
            .map(|(i, _)| i);
        if last {
            found.next_back()
        } else {
            found.next()
        }
        .unwrap()
    };
    assert!(
        position("item_succeeded", "contain.metadata", false)
            < position("item_succeeded", "contain.isolate", true),
        "no instance went on before every instance was isolated"
    );
    // Time to isolation, per instance, from the run's start.
    let isolated: Vec<u64> = journal
        .of_kind("item_succeeded")
        .into_iter()
        .filter(|r| r["step"] == "contain.isolate")
        .map(|r| r["isolated"]["after_run_start_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(isolated.len(), 48);
    assert!(isolated.iter().all(|ms| *ms > 0), "{isolated:?}");
    // The case report shows them: first, median and last, and a row per instance.
    let report = firebreak()
        .arg("report")
        .arg(journal::only_journal(dir.path()))
        .output()
        .unwrap();
    let report = String::from_utf8(report.stdout).unwrap();
    let section = report
        .split("\n## Time to isolation\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no time-to-isolation section:\n{report}"));
    let section = section.split("\n## ").next().unwrap();
    assert!(section.contains("median"), "{section}");
    for instance in &instances {
        assert!(
            section
                .lines()
                .any(|l| l.starts_with(&format!("| {instance} |"))
                    || l.starts_with(&format!("| `{instance}` |"))),
            "{instance} has no row:\n{section}"
        );
    }

    assert_eq!(
        assert_one_snapshot_per_volume(&fleet, Some("outbreak-48")).await,
        96
    );
    // The credentials already issued to the 48 are denied on their shared role by one
    // statement listing exactly them (48 items racing on one document lost none).
    let mut denied = sandbox::denied_instances("fleet-app").await;
    denied.sort();
    let mut expected: Vec<String> = instances
        .iter()
        .map(|i| format!("arn:aws:ec2:us-east-1:123456789012:instance/{i}"))
        .collect();
    expected.sort();
    assert_eq!(denied, expected);
    let ec2 = sandbox::ec2().await;
    let states = ec2
        .describe_instances()
        .set_instance_ids(Some(instances.clone()))
        .send()
        .await
        .unwrap();
    for instance in states.reservations().iter().flat_map(|r| r.instances()) {
        assert_eq!(
            instance.state().and_then(|s| s.name()).map(|n| n.as_str()),
            Some("stopped"),
            "{:?}",
            instance.instance_id()
        );
    }
}
