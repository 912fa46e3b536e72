//! Event-driven containment against moto: fixture findings in the documented shapes start
//! exactly the right runbook with the right parameters, once per finding, never against the
//! wrong account, too many or protected resources.

use std::path::Path;

use crate::support::{firebreak, moto, sandbox};
use serde_json::Value;

pub(crate) struct Ids {
    pub instance: String,
    pub role: String,
    pub key: String,
    pub user: String,
}

pub(crate) async fn seed(extra: &[&str]) -> Ids {
    let ids = sandbox::seed_with("web-1", extra);
    let iam = aws_sdk_iam::Client::new(&moto::direct_config().await);
    iam.create_user().user_name("leaky").send().await.unwrap();
    let key = iam
        .create_access_key()
        .user_name("leaky")
        .send()
        .await
        .unwrap();
    Ids {
        instance: ids["instance_id"].as_str().unwrap().to_owned(),
        role: "web-1-app".into(),
        key: key.access_key().unwrap().access_key_id().to_owned(),
        user: "leaky".into(),
    }
}

pub(crate) fn event(name: &str, ids: &Ids) -> String {
    std::fs::read_to_string(format!("tests/fixtures/events/{name}.json"))
        .unwrap()
        .replace("INSTANCE_ID", &ids.instance)
        .replace("ACCESS_KEY_ID", &ids.key)
        .replace("USER_NAME", &ids.user)
        .replace("ROLE_NAME", &ids.role)
}

pub(crate) fn dispatch(dir: &Path, event_text: &str, extra: &[&str]) -> (i32, Value, String) {
    let file = dir.join(format!("event-{}.json", fastrand_name()));
    std::fs::write(&file, event_text).unwrap();
    let out = firebreak()
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", dir)
        .args([
            "dispatch",
            "--runbooks",
            "runbooks",
            "--output",
            "json",
            "--event",
        ])
        .arg(&file)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fastrand_name() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

pub(crate) fn journal_records(path: &str) -> Vec<Value> {
    crate::support::journal::values(Path::new(path))
}

fn mutating(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r["type"] == "api_call")
        .filter(|r| {
            r["outcome"]
                .as_str()
                .is_some_and(|o| o != "not-sent (dry run)")
        })
        .filter_map(|r| r["operation"].as_str().map(str::to_owned))
        .filter(|op| {
            !["Describe", "Get", "List", "Lookup", "Simulate"]
                .iter()
                .any(|p| op.starts_with(p))
        })
        .collect()
}

#[tokio::test]
async fn each_finding_type_starts_the_right_runbook_with_the_right_parameters() {
    let _moto = moto::exclusive().await;
    let ids = seed(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    // (fixture, runbooks it must start, parameters they must get)
    type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: &[Case] = &[
        (
            "guardduty-ec2",
            &["ec2-instance-compromise"],
            &[
                ("instance_id", &ids.instance),
                ("case_id", "gd-16afba5c5c43e07c9e3e5e2e544e95df"),
            ],
        ),
        (
            "securityhub-ec2",
            &["ec2-instance-compromise"],
            &[("instance_id", &ids.instance)],
        ),
        (
            "guardduty-iam-access-key",
            &["iam-access-key-compromise"],
            &[("access_key_id", &ids.key), ("user_name", &ids.user)],
        ),
        (
            "securityhub-guardduty-access-key",
            &["iam-access-key-compromise"],
            &[("access_key_id", &ids.key), ("user_name", &ids.user)],
        ),
        // Posture and imported findings never start containment (H9).
        ("securityhub-control-iam3", &[], &[]),
        ("securityhub-control-ec2", &[], &[]),
        ("securityhub-custom-product", &[], &[]),
        (
            "guardduty-credential-exfiltration",
            &["iam-role-credential-exfiltration"],
            &[("role_name", &ids.role), ("instance_id", &ids.instance)],
        ),
        ("guardduty-low-severity-recon", &[], &[]),
    ];
    for (name, runbooks, params) in cases {
        let text = event(name, &ids);
        if name.starts_with("securityhub") {
            // Security Hub holds the finding it emits; dispatch reads it back before acting.
            sandbox::import_findings(&text, &[]);
        }
        // A journal directory per finding: findings about one instance would otherwise join one
        // case (tests/suite/cases.rs); here each must start its own run.
        let dir = dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let (code, reports, stderr) = dispatch(&dir, &text, &["--dry-run"]);
        // A drill may end `failed` against moto, which ignores DryRun on
        // ModifyInstanceMetadataOptions (the engine reports that); matching is what is tested.
        assert!(
            code == 0 || code == 1,
            "{name}: exit {code}: {stderr}\n{reports:#}"
        );
        let matched = reports[0]["matched"].as_array().unwrap();
        let names: Vec<&str> = matched
            .iter()
            .map(|m| m["runbook"].as_str().unwrap())
            .collect();
        assert_eq!(&names, runbooks, "{name}");
        for m in matched {
            assert_eq!(m["outcome"], "ran", "{name}: {m:#}");
            let journal = m["run"]["journal"].as_str().unwrap();
            let started = &journal_records(journal)[0];
            assert_eq!(started["mode"], "dry-run");
            for (key, value) in *params {
                assert_eq!(
                    started["parameters"][key], *value,
                    "{name}: parameter {key}"
                );
            }
        }
    }
}

/// Three deliveries of one finding, and its copy through Security Hub: one run. The run waits
/// at the stop approval (exit 4), and waiting counts as in progress.
#[tokio::test]
async fn the_same_finding_dispatched_three_times_runs_once() {
    let _moto = moto::exclusive().await;
    let ids = seed(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let text = event("guardduty-ec2", &ids);
    let mut outcomes = Vec::new();
    for expected in [4, 0, 0] {
        let (code, reports, stderr) = dispatch(dir.path(), &text, &[]);
        assert_eq!(code, expected, "{stderr}");
        outcomes.push(reports[0]["matched"][0].clone());
    }
    // The same GuardDuty finding as Security Hub forwards it.
    let through_security_hub =
        event("securityhub-ec2", &ids).replace("a1b2c3d4", "16afba5c5c43e07c9e3e5e2e544e95df");
    let (code, reports, stderr) = dispatch(dir.path(), &through_security_hub, &[]);
    assert_eq!(code, 0, "{stderr}");
    outcomes.push(reports[0]["matched"][0].clone());
    assert_eq!(outcomes[0]["outcome"], "ran");
    assert_eq!(outcomes[0]["run"]["status"], "awaiting_approval");
    // The instance's time to isolation, from the run's start and from the finding's
    // `updatedAt` (the fixture's is days before the run).
    let isolated = journal_records(outcomes[0]["run"]["journal"].as_str().unwrap())
        .into_iter()
        .find(|r| r["type"] == "step_succeeded" && r["step"] == "isolate")
        .expect("the isolation succeeded")["isolated"]
        .clone();
    let after_start = isolated["after_run_start_ms"].as_u64().unwrap();
    let after_finding = isolated["after_finding_ms"].as_u64().unwrap();
    assert!(
        after_start > 0 && after_finding > after_start + 86_400_000,
        "{isolated}"
    );
    let run_id = outcomes[0]["run"]["run_id"].as_str().unwrap();
    for repeat in &outcomes[1..] {
        assert_eq!(repeat["outcome"], "duplicate", "{repeat:#}");
        assert_eq!(repeat["run_id"], run_id);
        assert_eq!(repeat["status"], "awaiting_approval");
    }
    let journals = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "jsonl")
        })
        .count();
    assert_eq!(journals, 1, "one run, one journal");
    // One snapshot per volume: the containment happened once.
    let ec2 = sandbox::ec2().await;
    let snapshots = ec2
        .describe_snapshots()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:firebreak:source-instance")
                .values(&ids.instance)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(snapshots.snapshots().len(), 2);
}

#[tokio::test]
async fn protected_and_too_many_targets_are_refused_before_any_change() {
    let _moto = moto::exclusive().await;
    let ids = seed(&["--protected"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (code, reports, stderr) = dispatch(dir.path(), &event("guardduty-ec2", &ids), &[]);
    assert_eq!(code, 3, "{stderr}");
    let run = &reports[0]["matched"][0]["run"];
    assert_eq!(run["status"], "refused");
    let records = journal_records(run["journal"].as_str().unwrap());
    assert_eq!(
        mutating(&records),
        Vec::<String>::new(),
        "no change before the refusal"
    );
    let interlock = records
        .iter()
        .find(|r| r["type"] == "interlock" && r["check"] == "protected_tags")
        .unwrap();
    assert_eq!(interlock["passed"], false);
    assert!(
        interlock["reason"]
            .as_str()
            .unwrap()
            .contains(&ids.instance)
    );

    // --max-targets caps every runbook: three instances, a cap of two.
    let out = firebreak()
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", dir.path())
        .args([
            "run",
            "runbooks/ec2-fleet-containment.yaml",
            "--yes",
            "--max-targets",
            "2",
            "--output",
            "json",
        ])
        .args([
            "-p",
            "instance_ids=i-0000000000000000a,i-0000000000000000b,i-0000000000000000c",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    let records = journal_records(outcome["journal"].as_str().unwrap());
    assert_eq!(mutating(&records), Vec::<String>::new());
    assert!(
        !records.iter().any(|r| r["type"] == "step_started"),
        "no step ran"
    );
    let interlock = records
        .iter()
        .find(|r| r["type"] == "interlock" && r["check"] == "max_targets")
        .unwrap();
    assert_eq!(interlock["limit"], 2);
    assert_eq!(interlock["targets"], 3);
}

#[tokio::test]
async fn wrong_account_and_bad_parameters_are_refused_and_others_go_on() {
    let _moto = moto::exclusive().await;
    let ids = seed(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let foreign = event("guardduty-ec2", &ids).replace("123456789012", "999999999999");
    let (code, reports, stderr) = dispatch(dir.path(), &foreign, &[]);
    assert_eq!(code, 3, "{stderr}");
    let run = &reports[0]["matched"][0]["run"];
    assert_eq!(run["status"], "refused");
    assert!(
        stderr.contains("999999999999") && stderr.contains("--assume-role"),
        "{stderr}"
    );
    assert_eq!(
        mutating(&journal_records(run["journal"].as_str().unwrap())),
        Vec::<String>::new()
    );

    // Two events: one with an instance id that does not validate, one good.
    let bad = event("guardduty-ec2", &ids)
        .replace(&ids.instance, "not-an-instance")
        .replace("16afba5c", "26afba5c");
    let good: Value = serde_json::from_str(&event("guardduty-iam-access-key", &ids)).unwrap();
    let both = format!("[{bad}, {good}]");
    let (code, reports, stderr) = dispatch(dir.path(), &both, &["--dry-run"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(reports[0]["matched"][0]["outcome"], "invalid");
    assert!(
        reports[0]["matched"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("does not match pattern")
    );
    assert_eq!(reports[1]["matched"][0]["outcome"], "ran");
}

#[test]
fn eventbridge_patterns_round_trip_through_the_matcher() {
    let out = firebreak()
        .args(["triggers", "--eventbridge"])
        .args(
            std::fs::read_dir("runbooks")
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml")),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let rules: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    // Seven finding triggers and four Security Hub custom actions.
    assert_eq!(rules.len(), 11);
    let expected: &[(&str, &str)] = &[
        ("guardduty-ec2", "guardduty-ec2"),
        ("securityhub-ec2", "securityhub-ec2"),
        ("guardduty-iam-access-key", "guardduty-iam-access-key"),
        (
            "securityhub-guardduty-access-key",
            "securityhub-iam-access-key",
        ),
        ("securityhub-control-iam3", ""),
        ("securityhub-control-ec2", ""),
        ("securityhub-custom-product", ""),
        (
            "guardduty-credential-exfiltration",
            "guardduty-credential-exfiltration",
        ),
        ("guardduty-low-severity-recon", ""),
        ("guardduty-s3", "guardduty-s3"),
        // A posture finding (a block turned off) is not a compromise: nothing starts.
        ("guardduty-s3-posture", ""),
        ("guardduty-lambda", "guardduty-lambda"),
    ];
    for (fixture, trigger) in expected {
        let ids = Ids {
            instance: "i-0123456789abcdef0".into(),
            role: "web-1-app".into(),
            key: "AKIAIOSFODNN7EXAMPLE".into(),
            user: "leaky".into(),
        };
        let event: Value = serde_json::from_str(&event(fixture, &ids)).unwrap();
        let matched: Vec<&str> = rules
            .iter()
            .filter(|r| firebreak::trigger::matches(&r["event_pattern"], &event))
            .map(|r| r["trigger"].as_str().unwrap())
            .collect();
        let wanted: Vec<&str> = if trigger.is_empty() {
            vec![]
        } else {
            vec![*trigger]
        };
        assert_eq!(matched, wanted, "{fixture}");
        // The printed pattern is plain EventBridge JSON: every value a list or an object.
        for rule in &rules {
            assert!(rule["event_pattern"]["source"].is_array(), "{rule}");
        }
    }
}

#[tokio::test]
async fn a_member_account_finding_runs_there_through_the_assumed_role() {
    let _moto = moto::exclusive().await;
    let ids = seed(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let foreign = event("guardduty-ec2", &ids).replace("123456789012", "999999999999");
    let (code, reports, stderr) = dispatch(
        dir.path(),
        &foreign,
        &[
            "--assume-role",
            "arn:aws:iam::{{event.account}}:role/firebreak-responder",
        ],
    );
    assert!(code == 0 || code == 1, "{stderr}");
    let run = &reports[0]["matched"][0]["run"];
    let records = journal_records(run["journal"].as_str().unwrap());
    assert_eq!(records[0]["assumed_role"]["account"], "999999999999");
    assert_eq!(
        records[0]["assumed_role"]["role_arn"],
        "arn:aws:iam::999999999999:role/firebreak-responder"
    );
    // The steps ran with the member account's credentials: moto keeps accounts apart, so the
    // seeded instance (in 123456789012) is not found there.
    let describe = records
        .iter()
        .find(|r| r["type"] == "api_call" && r["step"] == "describe")
        .expect("the describe step called EC2");
    assert_eq!(describe["outcome"], "error", "{describe}");
    assert_eq!(run["status"], "failed");
}
