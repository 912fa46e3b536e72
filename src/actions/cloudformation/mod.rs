//! The forensic clean room through CloudFormation: create a stack from a template shipped with
//! the runbooks (exactly once, even across crashes), wait for it while journaling its events, and
//! tear it down when the case closes — keeping what holds evidence. Here: what both actions
//! share (describe, wait, events, the first failure, retained resources).

mod create_stack;
mod delete_stack;

pub use create_stack::{CreateStack, StackCapability, StackOnFailure};
pub use delete_stack::DeleteStack;

use std::time::Duration;

use aws_sdk_cloudformation::types::{Stack, StackStatus};
use serde_json::Value;

use crate::actions::{ActionError, StepContext};
use crate::aws::ErrorClass;
use crate::journal::Event;
use crate::journal::event::StackEvent;

fn default_true() -> bool {
    true
}

/// Polling interval while a stack changes: 2 s growing to 16 s; the step's timeout bounds the
/// whole wait.
fn poll_delay(round: u32) -> Duration {
    Duration::from_secs(2u64 << round.min(3))
}

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
        // DescribeStacks says ValidationError "Stack with id X does not exist" (classified
        // not-found in `aws::error`).
        Err(error) if error.aws_class() == Some(ErrorClass::NotFound) => Ok(None),
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
        ctx.progress(&format!(
            "stack {name}: {}",
            stack.stack_status().map(|s| s.as_str()).unwrap_or("?")
        ));
        tokio::time::sleep(poll_delay(round)).await;
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
        ctx.record(Event::StackEvent(StackEvent {
            stack_name: name.to_owned(),
            logical_resource_id: event.logical_resource_id().map(str::to_owned),
            resource_type: event.resource_type().map(str::to_owned),
            resource_status: event.resource_status().map(|s| s.as_str().to_owned()),
            reason: event.resource_status_reason().map(str::to_owned),
            timestamp: event.timestamp().map(|t| t.to_string()),
            step: ctx.step_id.clone(),
            item_index: ctx.item_index,
        }))?;
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
