//! `firebreak policy`: exactly the permissions `plan` lists, scoped, for every shipped runbook.

mod common;

use std::collections::BTreeSet;

use common::{firebreak, repo};
use serde_json::Value;

fn shipped() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repo("runbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn json(args: &[&str]) -> Value {
    let out = firebreak().args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A plan needs parameters; give every required one a value that passes its pattern.
fn plan_args(path: &std::path::Path) -> Vec<String> {
    let loaded = firebreak::runbook::load(path).unwrap();
    let mut args = vec!["plan".to_string(), path.display().to_string()];
    for (name, param) in &loaded.runbook.parameters {
        if param.default.is_some() {
            continue;
        }
        let value: String = match (name.as_str(), param.kind) {
            (_, firebreak::runbook::ParamType::List) if name.contains("snapshot") => {
                "snap-0123456789abcdef0".into()
            }
            (_, firebreak::runbook::ParamType::List) => "i-0123456789abcdef0".into(),
            ("access_key_id", _) => "AKIAABCDEFGHIJKLMNOP".into(),
            ("availability_zone", _) => "us-east-1a".into(),
            ("s3_prefix_list_id", _) => "pl-0123456789abcdef0".into(),
            ("investigator_principal_arn", _) => "arn:aws:iam::123456789012:role/ir".into(),
            (n, _) if n.contains("instance") => "i-0123456789abcdef0".into(),
            _ => "case-1".into(),
        };
        args.push("-p".into());
        args.push(format!("{name}={value}"));
    }
    args.push("--output".into());
    args.push("json".into());
    args
}

#[test]
fn policy_grants_exactly_what_plan_lists() {
    for path in shipped() {
        let args = plan_args(&path);
        let plan = json(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let planned: BTreeSet<String> =
            serde_json::from_value(plan["permissions"].clone()).unwrap();
        let policy = json(&["policy", path.to_str().unwrap(), "--output", "json"]);
        let mut granted = BTreeSet::new();
        for statement in policy["Statement"].as_array().unwrap() {
            assert_eq!(statement["Effect"], "Allow");
            for action in statement["Action"].as_array().unwrap() {
                let action = action.as_str().unwrap();
                assert!(
                    !action.contains('*'),
                    "{}: wildcard action {action}",
                    path.display()
                );
                granted.insert(action.to_owned());
            }
        }
        assert_eq!(
            granted,
            planned,
            "{}: policy and plan disagree",
            path.display()
        );
    }
}

#[test]
fn sensitive_operations_are_scoped() {
    let policy = json(&[
        "policy",
        "runbooks/ec2-instance-compromise.yaml",
        "--output",
        "json",
    ]);
    let statement_for = |action: &str| -> Value {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Action"].as_array().unwrap().iter().any(|a| a == action))
            .unwrap_or_else(|| panic!("no statement for {action}"))
            .clone()
    };
    let snapshot = statement_for("ec2:CreateSnapshot");
    assert_eq!(
        snapshot["Condition"]["Null"]["aws:RequestTag/firebreak:case"],
        "false"
    );
    let revoke = statement_for("ec2:RevokeSecurityGroupEgress");
    assert_eq!(
        revoke["Condition"]["StringEquals"]["aws:ResourceTag/firebreak:managed"],
        "true"
    );
    let pass = statement_for("iam:PassRole");
    assert!(
        pass["Condition"]["StringEquals"]["iam:PassedToService"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "ec2.amazonaws.com")
    );
    let modify = statement_for("ec2:ModifyInstanceAttribute");
    assert_ne!(modify["Resource"], serde_json::json!(["*"]));
}
