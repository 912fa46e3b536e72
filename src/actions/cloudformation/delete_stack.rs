//! `cloudformation.delete_stack`: tear a clean room down when the case closes, keeping (and
//! listing) what holds evidence.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{default_true, describe, in_progress, poll_delay, retained_resources};
use crate::actions::grants::{Grant, ScopeField, arn};
use crate::actions::{Action, ActionError, Execute, StepContext};

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
    const GRANTS: &'static [Grant] = &[Grant::on(
        &[
            "cloudformation:GetTemplate",
            "cloudformation:DescribeStackResources",
            "cloudformation:DeleteStack",
        ],
        &[arn::STACK],
    )];
    const SCOPE: &'static [ScopeField] = &[ScopeField {
        placeholder: "stack",
        field: "stack_name",
        default: "*",
    }];
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
                tokio::time::sleep(poll_delay(round)).await;
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
