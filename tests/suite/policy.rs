//! `firebreak policy`: exactly the permissions `plan` lists, scoped, for every shipped runbook.

use std::collections::BTreeSet;

use crate::support::{firebreak, repo};
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
    let loaded = firebreak::check::load(path).unwrap();
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

fn granted(policy: &Value, path: &std::path::Path) -> BTreeSet<String> {
    let mut granted = BTreeSet::new();
    for statement in policy["Statement"].as_array().unwrap() {
        // The one Deny (IAM writes on firebreak's own and administrators' roles) grants nothing.
        if statement["Effect"] == "Deny" {
            assert_eq!(
                statement["Sid"],
                "FirebreakNeverWritesItselfOrAdministrators"
            );
            continue;
        }
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
    granted
}

/// A live run's plan matches `policy --no-drills`; a drill's plan (`plan --dry-run`) matches the
/// default policy, which covers drills too.
#[test]
fn policy_grants_exactly_what_plan_lists() {
    for path in shipped() {
        for (plan_flag, policy_flag) in [(None, Some("--no-drills")), (Some("--dry-run"), None)] {
            let mut args = plan_args(&path);
            args.extend(plan_flag.map(str::to_owned));
            let plan = json(&args.iter().map(String::as_str).collect::<Vec<_>>());
            let planned: BTreeSet<String> =
                serde_json::from_value(plan["permissions"].clone()).unwrap();
            let mut policy_args = vec!["policy", path.to_str().unwrap(), "--output", "json"];
            policy_args.extend(policy_flag);
            let policy = json(&policy_args);
            assert_eq!(
                granted(&policy, &path),
                planned,
                "{} ({plan_flag:?} / {policy_flag:?}): policy and plan disagree",
                path.display()
            );
        }
    }
}

/// The engine's own calls are in the policy: identity, the interlocks' tag reads, the
/// preflight, and an assumed role when one is given.
#[test]
fn the_engines_own_calls_are_granted() {
    let policy = json(&[
        "policy",
        "runbooks/iam-access-key-compromise.yaml",
        "--assume-role",
        "arn:aws:iam::{{event.account}}:role/firebreak-responder",
        "--output",
        "json",
    ]);
    let calls = granted(&policy, std::path::Path::new("iam-access-key-compromise"));
    for call in [
        "sts:GetCallerIdentity",
        "ec2:DescribeTags",
        "iam:ListUserTags",
        "iam:SimulatePrincipalPolicy",
        "iam:GetRole",
        "sts:AssumeRole",
    ] {
        assert!(calls.contains(call), "{call} missing: {calls:?}");
    }
    let assume = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["Action"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "sts:AssumeRole")
        })
        .unwrap();
    assert_eq!(
        assume["Resource"],
        serde_json::json!(["arn:aws:iam::*:role/firebreak-responder"]),
        "the role glob is the template with `*` for each expression"
    );
    let isolate = json(&[
        "policy",
        "runbooks/ec2-instance-compromise.yaml",
        "--output",
        "json",
    ]);
    assert!(
        granted(&isolate, std::path::Path::new("ec2-instance-compromise"))
            .contains("ec2:RevokeSecurityGroupEgress")
    );
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

/// H10: attaching a managed policy is privilege escalation unless the policy is a deny-all;
/// every shipped runbook's policy allows `Attach{User,Role}Policy` only for AWS's quarantine
/// policies.
#[test]
fn attaching_policies_is_limited_to_the_quarantine_policies() {
    let policy = shipped_policy();
    let mut seen = 0;
    for statement in policy["Statement"].as_array().unwrap() {
        let actions = statement["Action"].as_array().unwrap();
        if statement["Effect"] == "Allow"
            && actions
                .iter()
                .any(|a| a == "iam:AttachUserPolicy" || a == "iam:AttachRolePolicy")
        {
            seen += 1;
            let allowed = &statement["Condition"]["ArnLike"]["iam:PolicyARN"];
            assert!(
                allowed.as_array().is_some_and(|a| a
                    .iter()
                    .all(|p| p.as_str().unwrap().contains(":iam::aws:policy/"))),
                "an Attach*Policy statement without the quarantine condition: {statement:#}"
            );
        }
    }
    assert!(seen > 0, "the shipped runbooks attach quarantine policies");
}

/// H10: every IAM write the runbooks need is denied on firebreak's own roles and on the
/// account's administrators'; `iam:PassRole` reaches only quarantine roles and the clean room's.
#[test]
fn iam_writes_never_reach_firebreak_or_administrators_and_pass_role_is_scoped() {
    let policy = shipped_policy();
    let statements = policy["Statement"].as_array().unwrap();
    let deny = statements
        .iter()
        .find(|s| s["Effect"] == "Deny")
        .expect("a Deny statement");
    let denied: Vec<&str> = deny["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for write in [
        "iam:PutRolePolicy",
        "iam:AttachRolePolicy",
        "iam:PutUserPolicy",
    ] {
        assert!(denied.contains(&write), "{write} not denied: {denied:?}");
    }
    assert!(
        deny["Resource"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "arn:aws:iam::*:role/firebreak-*")
    );
    for statement in statements.iter().filter(|s| s["Effect"] == "Allow") {
        if statement["Action"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "iam:PassRole")
        {
            for resource in statement["Resource"].as_array().unwrap() {
                let resource = resource.as_str().unwrap();
                // Beyond firebreak's own roles only the release's: an instance's own role
                // passed back to EC2, and nowhere else.
                assert!(
                    resource.starts_with("arn:aws:iam::*:role/firebreak-")
                        || statement["Condition"]["StringEquals"]["iam:PassedToService"]
                            .as_array()
                            .is_some_and(|s| s.iter().all(|s| s
                                .as_str()
                                .unwrap()
                                .starts_with("ec2.")
                                || s == "vpc-flow-logs.amazonaws.com")),
                    "PassRole on {resource}: {statement}"
                );
            }
        }
    }
}

/// `firebreak policy runbooks/*.yaml --output json`.
fn shipped_policy() -> Value {
    let runbooks: Vec<String> = std::fs::read_dir("runbooks")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    let mut args = vec!["policy"];
    args.extend(runbooks.iter().map(String::as_str));
    args.extend(["--output", "json"]);
    json(&args)
}

/// H10: the release runbook has a policy of its own, to give a separate release role: it can
/// move interfaces back and read, and nothing of containment's IAM or group writes.
#[test]
fn the_release_runbook_has_its_own_narrow_policy() {
    let path = std::path::Path::new("runbooks/ec2-release.yaml");
    let policy = json(&["policy", "runbooks/ec2-release.yaml", "--output", "json"]);
    let granted = granted(&policy, path);
    assert!(
        granted.contains("ec2:ModifyNetworkInterfaceAttribute"),
        "{granted:?}"
    );
    for never in [
        "ec2:CreateSecurityGroup",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:CreateSnapshots",
        "ec2:TerminateInstances",
        "ec2:StopInstances",
        "ssm:SendCommand",
    ] {
        assert!(!granted.contains(never), "release needs no {never}");
    }
    let iam_writes: Vec<&String> = granted
        .iter()
        .filter(|p| p.starts_with("iam:"))
        .filter(|p| {
            !["iam:Get", "iam:List", "iam:Simulate"]
                .iter()
                .any(|r| p.starts_with(r))
        })
        .collect();
    // Its only IAM writes edit or remove the instance-credential deny on the instance's role,
    // and pass the instance's own role back to EC2 (only to EC2): nothing attaches, creates or
    // re-enables.
    assert_eq!(
        iam_writes,
        ["iam:DeleteRolePolicy", "iam:PassRole", "iam:PutRolePolicy"],
        "release writes only the credential deny and passes roles only to EC2"
    );
    assert!(
        policy.to_string().contains("iam:PassedToService"),
        "PassRole only to EC2: {policy}"
    );
}

/// `policy --worker`: the runbooks' permissions plus the worker's own, each on its resource:
/// the queue (receive, delete, keep invisible), the table, the journal key's parameter.
#[test]
fn a_worker_policy_adds_the_workers_own_calls_on_its_resources() {
    let queue = "arn:aws:sqs:us-east-1:123456789012:firebreak-findings";
    let runbook = repo("runbooks/ec2-instance-compromise.yaml");
    let policy = json(&[
        "policy",
        runbook.to_str().unwrap(),
        "--worker",
        "--queue-arn",
        queue,
        "--table",
        "firebreak-state",
        "--journal-key-parameter",
        "/firebreak/journal-key",
        "--output",
        "json",
    ]);
    let on = |resource: &str| -> BTreeSet<String> {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| {
                s["Effect"] == "Allow"
                    && s["Resource"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|r| r == resource)
            })
            .flat_map(|s| {
                s["Action"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
            })
            .collect()
    };
    assert_eq!(
        on(queue),
        [
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:ReceiveMessage",
            "sqs:SendMessage"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(
        on("arn:aws:dynamodb:*:*:table/firebreak-state"),
        [
            "dynamodb:DeleteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(
        on("arn:aws:ssm:*:*:parameter/firebreak/journal-key"),
        ["ssm:GetParameter".to_owned()].into()
    );
    // The runbook's own permissions are all still there; without --worker, none of these.
    let plain = json(&["policy", runbook.to_str().unwrap(), "--output", "json"]);
    let text = plain.to_string();
    assert!(
        !text.contains("sqs:") && !text.contains("dynamodb:"),
        "{text}"
    );
    let worker_text = policy.to_string();
    assert!(worker_text.contains("ec2:ModifyNetworkInterfaceAttribute"));
    // --worker needs the queue.
    let out = firebreak()
        .args(["policy", runbook.to_str().unwrap(), "--worker"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--queue-arn"));
    // A key kept in Secrets Manager, read through Parameter Store's reference path: both
    // permissions, each on its own resource.
    let referenced = json(&[
        "policy",
        runbook.to_str().unwrap(),
        "--worker",
        "--queue-arn",
        queue,
        "--journal-key-parameter",
        "/aws/reference/secretsmanager/firebreak/journal-key",
        "--output",
        "json",
    ]);
    let text = referenced.to_string();
    assert!(
        text.contains(
            "arn:aws:ssm:*:*:parameter/aws/reference/secretsmanager/firebreak/journal-key"
        ),
        "{text}"
    );
    let grants_secret = referenced["Statement"].as_array().unwrap().iter().any(|s| {
        s["Action"]
            .to_string()
            .contains("secretsmanager:GetSecretValue")
            && s["Resource"]
                .to_string()
                .contains("arn:aws:secretsmanager:*:*:secret:firebreak/journal-key-*")
    });
    assert!(grants_secret, "{text}");
    assert!(
        !policy.to_string().contains("secretsmanager:"),
        "a parameter key needs no secret"
    );
}
