//! `cloudformation.create_stack`: a stack from a template shipped with the runbooks, made
//! exactly once (client token and idempotency tag), waited for with its events journaled.

use aws_sdk_cloudformation::types::{Capability, OnFailure, Parameter, Tag};
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{default_true, describe, first_failure, wait_for};
use crate::actions::grants::{Grant, ScopeField, arn, condition};
use crate::actions::{Action, ActionError, Execute, StepContext, tags};

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
    /// What the template may create that needs acknowledging.
    #[serde(default)]
    pub capabilities: Vec<StackCapability>,
    /// What CloudFormation does when creation fails.
    #[serde(default)]
    pub on_failure: StackOnFailure,
    #[serde(default = "default_true")]
    pub wait: bool,
}

/// `capabilities`: CloudFormation's names, so `validate` catches a typo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StackCapability {
    CapabilityIam,
    CapabilityNamedIam,
    CapabilityAutoExpand,
}

impl StackCapability {
    fn sdk(self) -> Capability {
        match self {
            StackCapability::CapabilityIam => Capability::CapabilityIam,
            StackCapability::CapabilityNamedIam => Capability::CapabilityNamedIam,
            StackCapability::CapabilityAutoExpand => Capability::CapabilityAutoExpand,
        }
    }
}

/// `on_failure`: what CloudFormation does when creation fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StackOnFailure {
    /// Roll the stack back (the default).
    #[default]
    Rollback,
    /// Delete it.
    Delete,
    /// Leave it as it failed, to investigate.
    DoNothing,
}

impl StackOnFailure {
    fn sdk(self) -> OnFailure {
        match self {
            StackOnFailure::Rollback => OnFailure::Rollback,
            StackOnFailure::Delete => OnFailure::Delete,
            StackOnFailure::DoNothing => OnFailure::DoNothing,
        }
    }
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
    const GRANTS: &'static [Grant] = &[
        Grant::on(
            &[
                "cloudformation:CreateStack",
                "cloudformation:DescribeStackEvents",
            ],
            &[arn::STACK],
        ),
        Grant::when(
            &["iam:PassRole"],
            &[arn::FIREBREAK_ROLES],
            condition::PASSED_TO_EC2,
        ),
    ];
    const SCOPE: &'static [ScopeField] = &[ScopeField {
        placeholder: "stack",
        field: "stack_name",
        default: "*",
    }];
}

impl Execute for CreateStack {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let (body, sha256) = ctx.read_runbook_file(&self.template)?;
        let body = String::from_utf8(body).map_err(|_| {
            ActionError::Input(format!("template {} is not UTF-8 text", self.template))
        })?;
        let name = self.stack_name.as_str();
        // The same step (same idempotency key) always sends the same token: CloudFormation
        // answers a repeated CreateStack with the stack it already made.
        let token = ctx.client_token();
        let mut created = false;
        let existing = describe(ctx, name).await?;
        let stack = match existing {
            Some(stack)
                if stack.tags().iter().any(|t| {
                    t.key() == Some(tags::IDEMPOTENCY_KEY)
                        && t.value() == Some(&ctx.idempotency_key)
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
                        .key(tags::IDEMPOTENCY_KEY)
                        .value(&ctx.idempotency_key)
                        .build(),
                );
                tags.push(Tag::builder().key(tags::RUN).value(&ctx.run_id).build());
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
                                self.capabilities.iter().map(|c| c.sdk()).collect(),
                            ))
                            .on_failure(self.on_failure.sdk())
                            .client_request_token(&token)
                            .send()
                    })
                    .await;
                // Found after AlreadyExistsException: the SDK sent it again after a lost
                // answer (CloudFormation honours the token; an emulator may not), or another
                // process made a stack of that name meanwhile — only the first is this step's.
                let mine = |stack: &aws_sdk_cloudformation::types::Stack| {
                    stack.tags().iter().any(|t| {
                        t.key() == Some(tags::IDEMPOTENCY_KEY)
                            && t.value() == Some(&ctx.idempotency_key)
                    })
                };
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
                    Err(error) if error.code() == Some("AlreadyExistsException") => {
                        created = true;
                    }
                    Err(error) => return Err(error),
                }
                let stack = describe(ctx, name).await?.ok_or_else(|| {
                    ActionError::Failed(format!("stack {name} was created but cannot be described"))
                })?;
                if !mine(&stack) {
                    return Err(ActionError::Failed(format!(
                        "stack {name} appeared while this step created it, and was not created by this step; choose another `stack_name`"
                    )));
                }
                stack
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
