//! `ec2.isolate_instance` and `ec2.release_isolation` against moto.
//!
//! moto reports an attached interface's groups as the union of its own and the instance's
//! (MOTO-NOTES), so isolation is checked the way moto gets right: the `group-id` filter of
//! DescribeNetworkInterfaces.

use std::path::Path;

use crate::support::{firebreak, moto, sandbox};
use serde_json::Value;

fn run(dir: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = firebreak()
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", dir)
        .args(args)
        .args(["--output", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let outcome = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), outcome, stderr)
}

fn mutating_calls(journal: &Path) -> Vec<String> {
    crate::support::journal::values(journal)
        .iter()
        .filter(|r| r["type"] == "api_call")
        .filter_map(|r| r["operation"].as_str().map(str::to_owned))
        .filter(|op| {
            !(op.starts_with("Describe") || op.starts_with("Get") || op.starts_with("List"))
        })
        .collect()
}

#[tokio::test]
async fn every_interface_ends_in_the_no_rule_group_and_release_restores_them() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = ids["instance_id"].as_str().unwrap();
    let web = ids["security_groups"]["web"].as_str().unwrap();
    let admin = ids["security_groups"]["admin"].as_str().unwrap();
    let mut enis: Vec<String> =
        serde_json::from_value(ids["network_interface_ids"].clone()).unwrap();
    enis.sort();
    let ec2 = sandbox::ec2().await;
    let dir = tempfile::tempdir().unwrap();
    let param = format!("instance_id={instance}");

    let (code, outcome, stderr) = run(
        dir.path(),
        &["run", "tests/fixtures/ec2/isolate.yaml", "-p", &param],
    );
    assert_eq!(code, 0, "{stderr}");
    let outputs = &outcome["steps"][0]["outputs"];
    let isolation = outputs["isolation_group"].as_str().unwrap();
    let untrack = outputs["untrack_group"].as_str().unwrap();
    assert_eq!(
        sandbox::interfaces_in(&ec2, instance, isolation).await,
        enis
    );
    assert!(sandbox::interfaces_in(&ec2, instance, web).await.is_empty());
    assert!(
        sandbox::interfaces_in(&ec2, instance, admin)
            .await
            .is_empty()
    );
    assert!(
        sandbox::interfaces_in(&ec2, instance, untrack)
            .await
            .is_empty()
    );
    // The originals are in the outputs, per interface.
    let originals: Vec<(String, Vec<String>)> = outputs["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["network_interface_id"].as_str().unwrap().to_owned(),
                serde_json::from_value(i["original_groups"].clone()).unwrap(),
            )
        })
        .collect();
    assert_eq!(originals.len(), 2);
    assert!(originals[0].1.contains(&web.to_owned()), "{originals:?}");
    assert!(originals[1].1.contains(&admin.to_owned()), "{originals:?}");
    // The no-rule group has no rules; the untrack group allows everything.
    let groups = ec2
        .describe_security_groups()
        .group_ids(isolation)
        .group_ids(untrack)
        .send()
        .await
        .unwrap();
    for group in groups.security_groups() {
        if group.group_id() == Some(isolation) {
            assert!(group.ip_permissions().is_empty() && group.ip_permissions_egress().is_empty());
        } else {
            assert!(
                group
                    .ip_permissions()
                    .iter()
                    .any(|p| p.ip_protocol() == Some("-1"))
            );
        }
    }

    // Running it again changes nothing.
    let (code, again, stderr) = run(
        dir.path(),
        &["run", "tests/fixtures/ec2/isolate.yaml", "-p", &param],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(again["steps"][0]["outputs"]["changed"], false);
    let strip = |v: &Value| -> Vec<(Value, Value)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["network_interface_id"].clone(),
                    i["original_groups"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        strip(&again["steps"][0]["outputs"]["interfaces"]),
        strip(&outputs["interfaces"])
    );
    let second_journal = Path::new(again["journal"].as_str().unwrap());
    assert_eq!(mutating_calls(second_journal), Vec::<String>::new());

    // ec2-release restores the originals from the first run's journal.
    let journal = outcome["journal"].as_str().unwrap();
    let (code, released, stderr) = run(
        dir.path(),
        &[
            "run",
            "runbooks/ec2-release.yaml",
            "-p",
            &format!("journal={journal}"),
            "-p",
            &param,
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(released["steps"][1]["outputs"]["source"], "journal");
    assert!(
        sandbox::interfaces_in(&ec2, instance, isolation)
            .await
            .is_empty()
    );
    for (eni, groups) in &originals {
        for group in groups {
            assert!(
                sandbox::interfaces_in(&ec2, instance, group)
                    .await
                    .contains(eni),
                "{eni} is not back in {group}"
            );
        }
    }
}

#[tokio::test]
async fn release_refuses_a_tampered_journal() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = ids["instance_id"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let param = format!("instance_id={instance}");
    let (code, outcome, stderr) = run(
        dir.path(),
        &["run", "tests/fixtures/ec2/isolate.yaml", "-p", &param],
    );
    assert_eq!(code, 0, "{stderr}");
    let journal = outcome["journal"].as_str().unwrap();
    let text = std::fs::read_to_string(journal).unwrap();
    let forged = dir.path().join("forged.jsonl");
    std::fs::write(&forged, text.replacen("sg-", "sg-f", 1)).unwrap();
    let (code, released, stderr) = run(
        dir.path(),
        &[
            "run",
            "runbooks/ec2-release.yaml",
            "-p",
            &format!("journal={}", forged.display()),
            "-p",
            &param,
            "--yes",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(released["status"], "failed");
    assert!(stderr.contains("fails verification"), "{stderr}");
}
