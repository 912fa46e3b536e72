//! The containment moves on a compromised function. Each reads its setting first and changes
//! it only when it is not yet as wanted (a rerun changes nothing), and records it `before` and
//! `after` for `lambda.release_function`. All reversible: nothing is deleted.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::settings::{self, Function, Setting};
use super::{ActionError, FUNCTION_SCOPE, function};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, ScopeField, arn};
use crate::actions::{Action, Execute, Mode};

/// Moves one setting to what `desired` makes of it; the outputs every move reports.
async fn apply(
    ctx: &StepContext,
    function: &Function,
    setting: Setting,
    desired: impl FnOnce(&Value) -> Value,
) -> Result<Value, ActionError> {
    let before = settings::read(ctx, function, setting).await?;
    let after = desired(&before);
    let sent = if before == after {
        false
    } else {
        settings::write(ctx, function, setting, &before, &after).await?
    };
    let mut out = json!({
        "function_name": function.name,
        "before": { setting.key(): before },
        "after": { setting.key(): after },
        "changed": sent,
    });
    if before != after && !sent && ctx.mode == Mode::DryRun {
        out["dry_run"] = json!(true);
    }
    Ok(out)
}

macro_rules! function_input {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// The function's name (or ARN).
            pub function_name: String,
        }
    };
}

function_input!(
    /// Disable every enabled event source mapping of the function (reversible: the sources keep their messages, subject to their own retention). Records each mapping's state before.
    DisableEventSources
);

impl Action for DisableEventSources {
    const NAME: &'static str = "lambda.disable_event_sources";
    const SUMMARY: &'static str = "disable the function's enabled event source mappings (the sources keep their messages); records their states";
    const CALLS: &'static [&'static str] = &[
        "lambda:GetFunctionConfiguration",
        "lambda:ListEventSourceMappings",
        "lambda:UpdateEventSourceMapping",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[
        Grant::on(
            &["lambda:GetFunctionConfiguration"],
            &[arn::LAMBDA_FUNCTION],
        ),
        Grant::on(
            &["lambda:UpdateEventSourceMapping"],
            &[arn::EVENT_SOURCE_MAPPING],
        ),
    ];
    const SCOPE: &'static [ScopeField] = FUNCTION_SCOPE;
}

impl Execute for DisableEventSources {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let function = function(ctx, &self.function_name).await?;
        apply(ctx, &function, Setting::EventSources, |before| {
            let mut after = before.as_object().cloned().unwrap_or_default();
            for state in after.values_mut() {
                if state == "enabled" {
                    *state = json!("disabled");
                }
            }
            Value::Object(after)
        })
        .await
    }
}

function_input!(
    /// Set the function's reserved concurrency to 0: no invocation runs. Asynchronous events are then retried by Lambda and may age out (to the function's on-failure destination or dead-letter queue, if it has one). Records the reserved concurrency before (`null`: none).
    BlockInvocations
);

impl Action for BlockInvocations {
    const NAME: &'static str = "lambda.block_invocations";
    const SUMMARY: &'static str =
        "set the function's reserved concurrency to 0 (nothing runs); records the one before";
    const CALLS: &'static [&'static str] = &[
        "lambda:GetFunctionConfiguration",
        "lambda:GetFunctionConcurrency",
        "lambda:PutFunctionConcurrency",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[Grant::on(Self::CALLS, &[arn::LAMBDA_FUNCTION])];
    const SCOPE: &'static [ScopeField] = FUNCTION_SCOPE;
}

impl Execute for BlockInvocations {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let function = function(ctx, &self.function_name).await?;
        apply(ctx, &function, Setting::Concurrency, |_| json!(0)).await
    }
}

function_input!(
    /// Switch the function URL's auth type from NONE to AWS_IAM: anonymous calls stop, the URL stays (a deleted URL cannot come back at the same address). A function without a URL is left alone. Records the auth type before.
    RestrictFunctionUrl
);

impl Action for RestrictFunctionUrl {
    const NAME: &'static str = "lambda.restrict_function_url";
    const SUMMARY: &'static str = "switch the function URL to AWS_IAM auth instead of deleting it; records the auth type before";
    const CALLS: &'static [&'static str] = &[
        "lambda:GetFunctionConfiguration",
        "lambda:GetFunctionUrlConfig",
        "lambda:UpdateFunctionUrlConfig",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[Grant::on(Self::CALLS, &[arn::LAMBDA_FUNCTION])];
    const SCOPE: &'static [ScopeField] = FUNCTION_SCOPE;
}

impl Execute for RestrictFunctionUrl {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let function = function(ctx, &self.function_name).await?;
        apply(ctx, &function, Setting::UrlAuth, |before| {
            if before.is_null() {
                Value::Null
            } else {
                json!("AWS_IAM")
            }
        })
        .await
    }
}

function_input!(
    /// Remove the resource-policy statements that allow everyone (`Principal: *`), by statement id. Records each removed statement whole, for the release to add back.
    RemovePublicStatements
);

impl Action for RemovePublicStatements {
    const NAME: &'static str = "lambda.remove_public_statements";
    const SUMMARY: &'static str =
        "remove the function's resource-policy statements that allow everyone; records them whole";
    const CALLS: &'static [&'static str] = &[
        "lambda:GetFunctionConfiguration",
        "lambda:GetPolicy",
        "lambda:RemovePermission",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[Grant::on(Self::CALLS, &[arn::LAMBDA_FUNCTION])];
    const SCOPE: &'static [ScopeField] = FUNCTION_SCOPE;
}

impl Execute for RemovePublicStatements {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let function = function(ctx, &self.function_name).await?;
        apply(ctx, &function, Setting::PublicStatements, |_| json!([])).await
    }
}

/// Add tags to the function, keeping its others. Records the tags before.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagFunction {
    pub function_name: String,
    pub tags: BTreeMap<String, String>,
}

impl Action for TagFunction {
    const NAME: &'static str = "lambda.tag_function";
    const SUMMARY: &'static str =
        "add tags to a function, keeping its others; records the tags before";
    const CALLS: &'static [&'static str] = &[
        "lambda:GetFunctionConfiguration",
        "lambda:ListTags",
        "lambda:TagResource",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[Grant::on(Self::CALLS, &[arn::LAMBDA_FUNCTION])];
    const SCOPE: &'static [ScopeField] = FUNCTION_SCOPE;
}

impl Execute for TagFunction {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let function = function(ctx, &self.function_name).await?;
        let tags = self.tags.clone();
        apply(ctx, &function, Setting::Tags, move |before| {
            let mut merged: Map<String, Value> = before.as_object().cloned().unwrap_or_default();
            for (k, v) in tags {
                merged.insert(k, json!(v));
            }
            Value::Object(merged)
        })
        .await
    }
}
