//! `firebreak deploy-template` as an operator uses it: the stack for every shipped runbook is
//! cfn-lint clean; it has exactly one EventBridge rule per trigger, each with that trigger's
//! pattern, and EventBridge (moto's) delivers a matching finding through it and not a
//! low-severity one; the queue admits only those rules; the worker's policy is the runbooks'
//! (live, sealed, signed) plus its own calls on its queue, table and key parameter; the seal and
//! key names are in the task's environment, never a key. Bad input says what is wrong.

use serde_json::{Value, json};

use crate::support::{eventbridge, firebreak, moto, output, repo};

const SEAL: &str = "s3://evidence-bucket/cases";
const SIGN_KEY: &str =
    "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn shipped() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo("runbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    files
}

/// What a statement of `policy` allows on `resource`.
fn allowed_on(policy: &Value, resource: &Value) -> Vec<String> {
    let mut actions: Vec<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .filter(|s| s["Resource"].as_array().unwrap().contains(resource))
        .flat_map(|s| s["Action"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    actions.sort();
    actions
}

#[tokio::test]
async fn the_generated_stack_lints_admits_only_its_rules_and_grants_the_worker_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("firebreak-stack.json");
    let mut args = vec!["deploy-template".to_owned()];
    args.extend(shipped());
    args.extend(
        [
            "--seal",
            SEAL,
            "--sign-key",
            SIGN_KEY,
            "--journal-key-parameter",
            "/firebreak/journal-key",
        ]
        .map(String::from),
    );
    args.extend(["-o".to_owned(), file.display().to_string()]);
    let made = output(firebreak().args(&args));
    assert_eq!(made.code, Some(0), "{}", made.stderr);

    // cfn-lint (pinned, as CI runs it on every template).
    let lint = output(
        std::process::Command::new(repo(".venv/bin/cfn-lint"))
            .args(["--non-zero-exit-code", "error", "--"])
            .arg(&file),
    );
    assert_eq!(
        lint.code,
        Some(0),
        "cfn-lint:\n{}{}",
        lint.stdout,
        lint.stderr
    );

    let template: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let resources = template["Resources"].as_object().unwrap();
    let queue_arn = json!({"Fn::GetAtt": ["FindingsQueue", "Arn"]});

    // One rule per trigger, with its pattern, to the queue.
    let mut expected = Vec::new();
    for path in shipped() {
        let loaded = firebreak::check::load(std::path::Path::new(&path)).unwrap();
        for trigger in &loaded.runbook.triggers {
            expected.push(trigger.pattern.clone());
        }
    }
    let rules: Vec<(&String, &Value)> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Events::Rule")
        .collect();
    assert_eq!(rules.len(), expected.len());
    for pattern in &expected {
        let rule = rules
            .iter()
            .find(|(_, r)| &r["Properties"]["EventPattern"] == pattern)
            .unwrap_or_else(|| panic!("no rule for {pattern}"));
        assert_eq!(rule.1["Properties"]["Targets"][0]["Arn"], queue_arn);
    }
    // The queue admits EventBridge, only from those rules, only to send.
    let statement = &resources["FindingsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"];
    assert_eq!(statement.as_array().unwrap().len(), 1);
    assert_eq!(
        statement[0]["Principal"],
        json!({"Service": "events.amazonaws.com"})
    );
    assert_eq!(statement[0]["Action"], "sqs:SendMessage");
    let sources: Vec<Value> = rules
        .iter()
        .map(|(id, _)| json!({"Fn::GetAtt": [id, "Arn"]}))
        .collect();
    assert_eq!(
        statement[0]["Condition"]["ArnEquals"]["aws:SourceArn"],
        json!(sources)
    );

    // The worker's policy: its own calls on its own resources, the seal and key, no drills.
    let policy = &resources["WorkerPolicy"]["Properties"]["PolicyDocument"];
    assert_eq!(
        allowed_on(policy, &queue_arn),
        [
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:ReceiveMessage",
            "sqs:SendMessage"
        ]
    );
    assert_eq!(
        allowed_on(policy, &json!({"Fn::GetAtt": ["StateTable", "Arn"]})),
        [
            "dynamodb:DeleteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem"
        ]
    );
    assert_eq!(
        allowed_on(
            policy,
            &json!("arn:aws:ssm:*:*:parameter/firebreak/journal-key")
        ),
        ["ssm:GetParameter"]
    );
    assert!(allowed_on(policy, &json!(SIGN_KEY)).contains(&"kms:Sign".to_owned()));
    let text = policy.to_string();
    assert!(text.contains("arn:aws:s3:::evidence-bucket"), "{text}");
    assert!(text.contains("ec2:ModifyNetworkInterfaceAttribute"));
    assert!(
        !text.contains("iam:SimulatePrincipalPolicy"),
        "workers run live: no drill preflight"
    );
    // The task: the seal and the names of keys, never a key.
    let environment =
        &resources["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]["Environment"];
    assert_eq!(
        environment,
        &json!([
            {"Name": "FIREBREAK_SEAL", "Value": SEAL},
            {"Name": "FIREBREAK_SIGN_KEY", "Value": SIGN_KEY},
            {"Name": "FIREBREAK_JOURNAL_KEY_PARAMETER", "Value": "/firebreak/journal-key"},
        ])
    );
    // The task keeps its runs in the table; the Lambda option gets the same settings, plus
    // where its runs live and carry on, and reads the queue reporting partial failures.
    let command =
        resources["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]["Command"].to_string();
    assert!(
        command.contains("\"--journal\",{\"Fn::Sub\":\"dynamodb://${StateTable}\"}"),
        "{command}"
    );
    let variables = &resources["Function"]["Properties"]["Environment"]["Variables"];
    assert_eq!(variables["FIREBREAK_SEAL"], SEAL);
    assert_eq!(
        variables["FIREBREAK_JOURNAL_KEY_PARAMETER"],
        "/firebreak/journal-key"
    );
    assert_eq!(
        variables["FIREBREAK_JOURNAL"],
        json!({"Fn::Sub": "dynamodb://${StateTable}"})
    );
    assert_eq!(
        variables["FIREBREAK_QUEUE_URL"],
        json!({"Ref": "FindingsQueue"})
    );
    assert_eq!(resources["Function"]["Condition"], "OnLambda");
    assert_eq!(resources["Service"]["Condition"], "OnFargate");
    let mapping = &resources["FunctionQueue"]["Properties"];
    assert_eq!(
        mapping["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert_eq!(mapping["BatchSize"], 1);
    let table = &resources["StateTable"]["Properties"];
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(table["TimeToLiveSpecification"]["AttributeName"], "ttl");

    // EventBridge delivers a high-severity GuardDuty finding about an instance through the
    // generated rules, and not a low-severity one.
    let _moto = moto::exclusive().await;
    let event = |name: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(repo(&format!("tests/fixtures/events/{name}.json")))
                .unwrap()
                .replace("INSTANCE_ID", "i-0123456789abcdef0"),
        )
        .unwrap()
    };
    let events = [
        event("guardduty-ec2"),
        event("guardduty-low-severity-recon"),
    ];
    let patterns: Vec<Value> = rules
        .iter()
        .map(|(_, r)| r["Properties"]["EventPattern"].clone())
        .collect();
    let answer = eventbridge::deliver(&patterns, &events);
    let delivered: Vec<u64> = answer["delivered"]
        .as_array()
        .unwrap()
        .iter()
        .take(patterns.len())
        .flat_map(|d| d.as_array().unwrap().iter().map(|i| i.as_u64().unwrap()))
        .collect();
    assert_eq!(delivered, [0], "{answer}");
}

#[test]
fn bad_input_says_what_is_wrong() {
    let runbook = repo("runbooks/ec2-instance-compromise.yaml");
    let bad_seal = output(firebreak().args([
        "deploy-template",
        runbook.to_str().unwrap(),
        "--seal",
        "evidence-bucket",
    ]));
    assert_eq!(bad_seal.code, Some(2));
    assert!(bad_seal.stderr.contains("--seal"), "{}", bad_seal.stderr);
    let no_trigger = repo("runbooks/forensic-clean-room.yaml");
    let nothing = output(firebreak().args([
        "deploy-template",
        no_trigger.to_str().unwrap(),
        "--seal",
        SEAL,
    ]));
    assert_eq!(nothing.code, Some(2));
    assert!(
        nothing.stderr.contains("no runbook has a trigger"),
        "{}",
        nothing.stderr
    );
}
