//! The forensic clean room through CloudFormation: create a stack from a template shipped with
//! the runbooks (exactly once, even across crashes), wait for it while journaling its events, and
//! tear it down when the case closes — keeping what holds evidence.

use std::time::Duration;

use aws_sdk_cloudformation::types::{Capability, OnFailure, Parameter, Stack, StackStatus, Tag};
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Action, ActionError, Execute};
use crate::engine::StepContext;

/// Create a stack from a template file (relative to the runbook), with parameters, tags and
/// capabilities, and wait until it is complete.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStack {
    pub stack_name: String,
    /// Template path relative to the runbook, e.g. `../clean-room/forensic-vpc.yaml`.
    pub template: String,
    #[serde(default)]
    pub parameters: IndexMap<String, String>,
    #[serde(default)]
    pub tags: IndexMap<String, String>,
    /// e.g. `CAPABILITY_IAM`, `CAPABILITY_NAMED_IAM`.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// What CloudFormation does when creation fails: `ROLLBACK` (default), `DELETE`, `DO_NOTHING`.
    #[serde(default = "default_on_failure")]
    pub on_failure: String,
    #[serde(default = "default_true")]
    pub wait: bool,
}

fn default_on_failure() -> String {
    "ROLLBACK".into()
}

fn default_true() -> bool {
    true
}

impl Action for CreateStack {
    const NAME: &'static str = "cloudformation.create_stack";
    const SUMMARY: &'static str =
        "create a CloudFormation stack (e.g. the forensic clean room) exactly once and wait for it";
    const CALLS: &'static [&'static str] = &[
        "cloudformation:DescribeStacks",
        "cloudformation:CreateStack",
        "cloudformation:DescribeStackEvents",
    ];
    const PERMISSIONS: &'static [&'static str] = &[
        "cloudformation:DescribeStacks",
        "cloudformation:CreateStack",
        "cloudformation:DescribeStackEvents",
        "iam:PassRole",
    ];
}

impl Execute for CreateStack {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let (body, sha256) = ctx.read_runbook_file(&self.template)?;
        let body = String::from_utf8(body).map_err(|_| {
            ActionError::Failed(format!("template {} is not UTF-8 text", self.template))
        })?;
        let name = self.stack_name.as_str();
        let on_failure = match self.on_failure.as_str() {
            "ROLLBACK" => OnFailure::Rollback,
            "DELETE" => OnFailure::Delete,
            "DO_NOTHING" => OnFailure::DoNothing,
            other => {
                return Err(ActionError::Failed(format!(
                    "`on_failure` must be ROLLBACK, DELETE or DO_NOTHING, not `{other}`"
                )));
            }
        };
        // The same step (same idempotency key) always sends the same token: CloudFormation
        // answers a repeated CreateStack with the stack it already made.
        let token = ctx.client_token();
        let mut created = false;
        let existing = describe(ctx, name).await?;
        let stack = match existing {
            Some(stack)
                if stack.tags().iter().any(|t| {
                    t.key() == Some(KEY_TAG) && t.value() == Some(&ctx.idempotency_key)
                }) =>
            {
                stack
            }
            Some(stack) => {
                return Err(ActionError::Failed(format!(
                    "stack {name} already exists ({}) and was not created by this step; choose another `stack_name`",
                    stack
                        .stack_status()
                        .map(|s| s.as_str())
                        .unwrap_or("unknown status")
                )));
            }
            None => {
                let mut tags: Vec<Tag> = self
                    .tags
                    .iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect();
                tags.push(
                    Tag::builder()
                        .key(KEY_TAG)
                        .value(&ctx.idempotency_key)
                        .build(),
                );
                tags.push(
                    Tag::builder()
                        .key("firebreak:run")
                        .value(&ctx.run_id)
                        .build(),
                );
                let parameters: Vec<Parameter> = self
                    .parameters
                    .iter()
                    .map(|(k, v)| {
                        Parameter::builder()
                            .parameter_key(k)
                            .parameter_value(v)
                            .build()
                    })
                    .collect();
                let input = json!({
                    "stack_name": name, "template": self.template, "template_sha256": sha256,
                    "parameters": self.parameters, "tags": self.tags, "capabilities": self.capabilities,
                    "client_request_token": token,
                });
                let sent = ctx
                    .change("cloudformation", "CreateStack", &[name], input, || {
                        ctx.clients()
                            .cloudformation
                            .create_stack()
                            .stack_name(name)
                            .template_body(&body)
                            .set_parameters(Some(parameters.clone()))
                            .set_tags(Some(tags.clone()))
                            .set_capabilities(Some(
                                self.capabilities
                                    .iter()
                                    .map(|c| Capability::from(c.as_str()))
                                    .collect(),
                            ))
                            .on_failure(on_failure.clone())
                            .client_request_token(&token)
                            .send()
                    })
                    .await;
                match sent {
                    Ok(Some(_)) => created = true,
                    Ok(None) => {
                        return Ok(json!({
                            "dry_run": true,
                            "stack_name": name,
                            "stack_id": format!("<would be created by step {}>", ctx.step_id),
                            "template_sha256": sha256,
                        }));
                    }
                    // A crash between CreateStack and its record: the stack is there already.
                    Err(error) if error.code() == Some("AlreadyExistsException") => {}
                    Err(error) => return Err(error),
                }
                describe(ctx, name).await?.ok_or_else(|| {
                    ActionError::Failed(format!("stack {name} was created but cannot be described"))
                })?
            }
        };
        let stack = if self.wait {
            wait_for(ctx, name, stack).await?
        } else {
            stack
        };
        let status = stack
            .stack_status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        let outputs: Map<String, Value> = stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), json!(o.output_value()))))
            .collect();
        let result = json!({
            "stack_name": name,
            "stack_id": stack.stack_id(),
            "status": status,
            "created": created,
            "template_sha256": sha256,
            "outputs": outputs,
        });
        if self.wait && status != "CREATE_COMPLETE" {
            let reason = first_failure(ctx, name).await?;
            return Err(
                ActionError::Failed(format!("stack {name} ended {status}: {reason}"))
                    .with_outputs(result),
            );
        }
        Ok(result)
    }
}

const KEY_TAG: &str = "firebreak:idempotency-key";

async fn describe(ctx: &StepContext, name: &str) -> Result<Option<Stack>, ActionError> {
    let result = ctx
        .call("cloudformation", "DescribeStacks", &[name], || {
            ctx.clients()
                .cloudformation
                .describe_stacks()
                .stack_name(name)
                .send()
        })
        .await;
    match result {
        Ok(output) => Ok(output.stacks().first().cloned()),
        // DescribeStacks says ValidationError "Stack with id X does not exist".
        Err(error)
            if error.code() == Some("ValidationError")
                && error.to_string().contains("does not exist") =>
        {
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

fn in_progress(status: Option<&StackStatus>) -> bool {
    status.is_some_and(|s| s.as_str().ends_with("_IN_PROGRESS"))
}

/// Polls until the stack leaves `*_IN_PROGRESS`, journaling each new stack event.
async fn wait_for(ctx: &StepContext, name: &str, mut stack: Stack) -> Result<Stack, ActionError> {
    let mut seen = std::collections::HashSet::new();
    let mut round = 0u32;
    loop {
        stream_events(ctx, name, &mut seen).await?;
        if !in_progress(stack.stack_status()) {
            return Ok(stack);
        }
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprint!(
                "\r  stack {name}: {} …",
                stack.stack_status().map(|s| s.as_str()).unwrap_or("?")
            );
        }
        tokio::time::sleep(Duration::from_secs(2u64 << round.min(3))).await;
        round += 1;
        stack = describe(ctx, name).await?.ok_or_else(|| {
            ActionError::Failed(format!("stack {name} disappeared while waiting"))
        })?;
    }
}

async fn stream_events(
    ctx: &StepContext,
    name: &str,
    seen: &mut std::collections::HashSet<String>,
) -> Result<(), ActionError> {
    let output = ctx
        .call("cloudformation", "DescribeStackEvents", &[name], || {
            ctx.clients()
                .cloudformation
                .describe_stack_events()
                .stack_name(name)
                .send()
        })
        .await?;
    // Newest first from the API; journal oldest first.
    for event in output.stack_events().iter().rev() {
        let Some(id) = event.event_id() else { continue };
        if !seen.insert(id.to_owned()) {
            continue;
        }
        let mut record = Map::new();
        record.insert("stack_name".into(), json!(name));
        record.insert(
            "logical_resource_id".into(),
            json!(event.logical_resource_id()),
        );
        record.insert("resource_type".into(), json!(event.resource_type()));
        record.insert(
            "resource_status".into(),
            json!(event.resource_status().map(|s| s.as_str())),
        );
        record.insert("reason".into(), json!(event.resource_status_reason()));
        record.insert(
            "timestamp".into(),
            json!(event.timestamp().map(|t| t.to_string())),
        );
        ctx.journal_event("stack_event", record)?;
    }
    Ok(())
}

/// The first resource that failed, and why.
async fn first_failure(ctx: &StepContext, name: &str) -> Result<String, ActionError> {
    let output = ctx
        .call("cloudformation", "DescribeStackEvents", &[name], || {
            ctx.clients()
                .cloudformation
                .describe_stack_events()
                .stack_name(name)
                .send()
        })
        .await?;
    Ok(output
        .stack_events()
        .iter()
        .rev()
        .find(|e| {
            e.resource_status()
                .is_some_and(|s| s.as_str().ends_with("_FAILED"))
        })
        .map(|e| {
            format!(
                "{} ({}) failed: {}",
                e.logical_resource_id().unwrap_or("?"),
                e.resource_type().unwrap_or("?"),
                e.resource_status_reason().unwrap_or("no reason given")
            )
        })
        .unwrap_or_else(|| "no failed resource reported".into()))
}

/// Delete a stack when a case closes. Resources with `DeletionPolicy: Retain` (the evidence
/// bucket, its key, the log group) stay; the outputs list them.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteStack {
    pub stack_name: String,
    #[serde(default = "default_true")]
    pub wait: bool,
}

impl Action for DeleteStack {
    const NAME: &'static str = "cloudformation.delete_stack";
    const SUMMARY: &'static str =
        "tear a stack down, listing the resources it keeps (DeletionPolicy: Retain)";
    const CALLS: &'static [&'static str] = &[
        "cloudformation:DescribeStacks",
        "cloudformation:GetTemplate",
        "cloudformation:DescribeStackResources",
        "cloudformation:DeleteStack",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
}

impl Execute for DeleteStack {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let name = self.stack_name.as_str();
        let Some(stack) = describe(ctx, name).await? else {
            return Ok(
                json!({"stack_name": name, "deleted": false, "already_gone": true, "kept": []}),
            );
        };
        if stack
            .stack_status()
            .is_some_and(|s| s.as_str() == "DELETE_COMPLETE")
        {
            return Ok(
                json!({"stack_name": name, "deleted": false, "already_gone": true, "kept": []}),
            );
        }
        let template = ctx
            .call("cloudformation", "GetTemplate", &[name], || {
                ctx.clients()
                    .cloudformation
                    .get_template()
                    .stack_name(name)
                    .send()
            })
            .await?;
        let retained = retained_resources(template.template_body().unwrap_or_default());
        let resources = ctx
            .call("cloudformation", "DescribeStackResources", &[name], || {
                ctx.clients()
                    .cloudformation
                    .describe_stack_resources()
                    .stack_name(name)
                    .send()
            })
            .await?;
        let kept: Vec<Value> = resources
            .stack_resources()
            .iter()
            .filter(|r| {
                r.logical_resource_id()
                    .is_some_and(|id| retained.iter().any(|k| k == id))
            })
            .map(|r| {
                json!({
                    "logical_resource_id": r.logical_resource_id(),
                    "physical_resource_id": r.physical_resource_id(),
                    "resource_type": r.resource_type(),
                })
            })
            .collect();
        let input = json!({"stack_name": name, "keeps": kept});
        let sent = ctx
            .change("cloudformation", "DeleteStack", &[name], input, || {
                ctx.clients()
                    .cloudformation
                    .delete_stack()
                    .stack_name(name)
                    .client_request_token(ctx.client_token())
                    .send()
            })
            .await?;
        if sent.is_none() {
            return Ok(json!({"stack_name": name, "dry_run": true, "kept": kept}));
        }
        let mut status = "DELETE_IN_PROGRESS".to_owned();
        if self.wait {
            let mut round = 0u32;
            loop {
                match describe(ctx, name).await? {
                    None => {
                        status = "DELETE_COMPLETE".into();
                        break;
                    }
                    Some(stack) if !in_progress(stack.stack_status()) => {
                        status = stack
                            .stack_status()
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default();
                        break;
                    }
                    Some(_) => {}
                }
                tokio::time::sleep(Duration::from_secs(2u64 << round.min(3))).await;
                round += 1;
            }
        }
        let outputs = json!({"stack_name": name, "deleted": true, "status": status, "kept": kept});
        if self.wait && status != "DELETE_COMPLETE" {
            return Err(
                ActionError::Failed(format!("stack {name} ended {status}")).with_outputs(outputs)
            );
        }
        Ok(outputs)
    }
}

/// Logical ids of resources with `DeletionPolicy: Retain`, in a JSON or YAML template. YAML
/// templates use short-form tags (`!Ref`, `!Sub`) no generic parser knows, so the YAML case
/// reads the `Resources` block by indentation.
pub fn retained_resources(template: &str) -> Vec<String> {
    if let Ok(Value::Object(root)) = serde_json::from_str::<Value>(template) {
        return root
            .get("Resources")
            .and_then(Value::as_object)
            .map(|resources| {
                resources
                    .iter()
                    .filter(|(_, r)| r["DeletionPolicy"] == "Retain")
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default();
    }
    let mut kept = Vec::new();
    let mut in_resources = false;
    let mut resource_indent = None;
    let mut current: Option<String> = None;
    for line in template.lines() {
        let trimmed = line.trim_end();
        if trimmed.trim_start().starts_with('#') || trimmed.trim().is_empty() {
            continue;
        }
        let indent = trimmed.len() - trimmed.trim_start().len();
        if indent == 0 {
            in_resources = trimmed.starts_with("Resources:");
            resource_indent = None;
            continue;
        }
        if !in_resources {
            continue;
        }
        let first = *resource_indent.get_or_insert(indent);
        let text = trimmed.trim_start();
        if indent == first {
            current = text.strip_suffix(':').map(str::to_owned);
        } else if indent > first
            && let Some(policy) = text.strip_prefix("DeletionPolicy:")
            && policy.trim().trim_matches(['"', '\'']) == "Retain"
            && let Some(id) = &current
            && !kept.contains(id)
        {
            kept.push(id.clone());
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retained_resources_in_yaml_and_json() {
        let yaml = "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  Bucket:\n    Type: AWS::S3::Bucket\n    DeletionPolicy: Retain\n    Properties:\n      BucketName: !Sub '${AWS::StackName}-x'\n  Vpc:\n    Type: AWS::EC2::VPC\n  Key:\n    DeletionPolicy: \"Retain\"\n    Type: AWS::KMS::Key\nOutputs:\n  X:\n    DeletionPolicy: Retain\n";
        assert_eq!(retained_resources(yaml), ["Bucket", "Key"]);
        let json = r#"{"Resources": {"A": {"Type": "x", "DeletionPolicy": "Retain"}, "B": {"Type": "y"}}}"#;
        assert_eq!(retained_resources(json), ["A"]);
    }
}
