//! Filling the base template in. The base is plain YAML (long-form intrinsics), read into JSON;
//! the output is a JSON template (CloudFormation reads both).

use serde_json::{Value, json};

use crate::actions::RunUses;
use crate::policy::{self, EngineScope, WorkerScope};
use crate::runbook::Runbook;

const BASE: &str = include_str!("../../deploy/firebreak.yaml");

/// Stand-ins for ARNs only the stack knows, swapped for `Fn::GetAtt` after the policy is made.
const QUEUE_ARN: &str = "arn:aws:sqs:firebreak:000000000000:FindingsQueue";
const TABLE_NAME: &str = "firebreak-StateTable";

/// What the workers seal with and where their key is.
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    pub seal: String,
    pub sign_key: Option<String>,
    pub journal_key_parameter: Option<String>,
}

/// The deployable template for `runbooks`.
pub fn worker_template(runbooks: &[&Runbook], options: &DeployOptions) -> Result<Value, String> {
    let seal =
        crate::custody::SealTarget::parse(&options.seal).map_err(|e| format!("--seal: {e}"))?;
    let mut template: Value = serde_saphyr::from_str(BASE)
        .map_err(|e| format!("deploy/firebreak.yaml (built in): {e}"))?;
    let resources = template["Resources"]
        .as_object_mut()
        .ok_or("deploy/firebreak.yaml has no Resources")?;

    // One rule per trigger, each sending to the queue.
    let mut rule_arns = Vec::new();
    for runbook in runbooks {
        for trigger in &runbook.triggers {
            let id = logical_id("Rule", &format!("{}-{}", runbook.name, trigger.name));
            if resources.contains_key(&id) {
                return Err(format!(
                    "two triggers make the rule {id} ({} / {}): rename one",
                    runbook.name, trigger.name
                ));
            }
            resources.insert(
                id.clone(),
                json!({
                    "Type": "AWS::Events::Rule",
                    "Properties": {
                        "Description": format!("firebreak: {} / {}", runbook.name, trigger.name),
                        "State": "ENABLED",
                        "EventPattern": trigger.pattern,
                        "Targets": [{
                            "Id": "findings",
                            "Arn": {"Fn::GetAtt": ["FindingsQueue", "Arn"]},
                        }],
                    },
                }),
            );
            rule_arns.push(json!({"Fn::GetAtt": [id, "Arn"]}));
        }
    }
    if rule_arns.is_empty() {
        return Err("no runbook has a trigger: nothing would reach the queue".into());
    }
    // Events are instructions to contain: only these rules may send them.
    resources.insert(
        "FindingsQueuePolicy".into(),
        json!({
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": "FindingsQueue"}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Sid": "OnlyFirebreaksRules",
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": {"Fn::GetAtt": ["FindingsQueue", "Arn"]},
                        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns}},
                    }],
                },
            },
        }),
    );

    // The worker's policy: the runbooks' permissions, live only, sealed, plus its own calls.
    let uses = RunUses {
        drills: false,
        assume_role: false,
        seal: true,
        sign: options.sign_key.is_some(),
    };
    let scope = EngineScope {
        assume_role: None,
        seal_bucket: Some(&seal.bucket),
        sign_key: options.sign_key.as_deref(),
        worker: Some(WorkerScope {
            queue_arn: QUEUE_ARN,
            table: Some(TABLE_NAME),
            journal_key_parameter: options.journal_key_parameter.as_deref(),
        }),
    };
    let mut document = policy::document(runbooks, uses, scope);
    swap_placeholders(&mut document);
    resources.insert(
        "WorkerPolicy".into(),
        json!({
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "Description": "firebreak serve: the runbooks' permissions and the worker's own",
                "Roles": [{"Ref": "WorkerRole"}],
                "PolicyDocument": document,
            },
        }),
    );

    // The seal (and key names) in the task's environment: never a key itself.
    let mut environment = vec![json!({"Name": "FIREBREAK_SEAL", "Value": options.seal})];
    if let Some(key) = &options.sign_key {
        environment.push(json!({"Name": "FIREBREAK_SIGN_KEY", "Value": key}));
    }
    if let Some(parameter) = &options.journal_key_parameter {
        environment.push(json!({"Name": "FIREBREAK_JOURNAL_KEY_PARAMETER", "Value": parameter}));
    }
    let container = resources
        .get_mut("TaskDefinition")
        .and_then(|t| t.pointer_mut("/Properties/ContainerDefinitions/0"))
        .and_then(Value::as_object_mut)
        .ok_or("deploy/firebreak.yaml has no TaskDefinition container")?;
    // The function: the same, and where its runs live and carry on (a task passes these on
    // its command line).
    let mut variables: serde_json::Map<String, Value> = environment
        .iter()
        .filter_map(|pair| Some((pair["Name"].as_str()?.to_owned(), pair["Value"].clone())))
        .collect();
    variables.insert(
        "FIREBREAK_JOURNAL".into(),
        json!({"Fn::Sub": "dynamodb://${StateTable}"}),
    );
    variables.insert(
        "FIREBREAK_QUEUE_URL".into(),
        json!({"Ref": "FindingsQueue"}),
    );
    container.insert("Environment".into(), Value::Array(environment));
    let function = resources
        .get_mut("Function")
        .and_then(|f| f.pointer_mut("/Properties/Environment"))
        .and_then(Value::as_object_mut)
        .ok_or("deploy/firebreak.yaml has no Function environment")?;
    function.insert("Variables".into(), Value::Object(variables));
    Ok(template)
}

/// The stand-in ARNs in a policy document, as the stack's own `Fn::GetAtt`s.
fn swap_placeholders(value: &mut Value) {
    match value {
        Value::String(text) if text == QUEUE_ARN => {
            *value = json!({"Fn::GetAtt": ["FindingsQueue", "Arn"]});
        }
        Value::String(text) if text.ends_with(&format!("table/{TABLE_NAME}")) => {
            *value = json!({"Fn::GetAtt": ["StateTable", "Arn"]});
        }
        Value::Array(items) => items.iter_mut().for_each(swap_placeholders),
        Value::Object(map) => map.values_mut().for_each(swap_placeholders),
        _ => {}
    }
}

/// A CloudFormation logical id: `prefix` and the words of `name`, capitalised, alphanumeric.
fn logical_id(prefix: &str, name: &str) -> String {
    let mut id = prefix.to_owned();
    for word in name.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id.truncate(255);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_ids_are_alphanumeric_words() {
        assert_eq!(
            logical_id("Rule", "ec2-instance-compromise-guardduty-ec2"),
            "RuleEc2InstanceCompromiseGuarddutyEc2"
        );
    }
}
