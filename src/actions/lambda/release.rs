//! `lambda.release_function`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::contain::{
    BlockInvocations, DisableEventSources, RemovePublicStatements, RestrictFunctionUrl, TagFunction,
};
use super::settings::{self, ALL};
use super::{ActionError, FUNCTION_SCOPE, function};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, ScopeField, arn};
use crate::actions::prior::{Standing, before_and_after, changed_since, drift, recorded_outputs};
use crate::actions::{Action, Execute};

/// Put back what a containing run changed on a function, as its verified journal recorded it: tags, public policy statements (added back), the URL's auth type, reserved concurrency (removed when there was none) and event source mappings (enabled again). Settings the run did not change are not touched. Refuses, changing nothing, when a setting is no longer as the containment left it unless `force`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseFunction {
    /// The journal of the run that contained the function (verified before it is read).
    pub journal: String,
    pub function_name: String,
    /// Restore even settings changed since the containment.
    #[serde(default)]
    pub force: bool,
}

impl Action for ReleaseFunction {
    const NAME: &'static str = "lambda.release_function";
    const SUMMARY: &'static str = "put back what a containing run changed on a function, from its verified journal; refuses settings changed since unless forced";
    const CALLS: &'static [&'static str] = &[
        "lambda:GetFunctionConfiguration",
        "lambda:ListTags",
        "lambda:TagResource",
        "lambda:UntagResource",
        "lambda:GetPolicy",
        "lambda:AddPermission",
        "lambda:RemovePermission",
        "lambda:GetFunctionUrlConfig",
        "lambda:UpdateFunctionUrlConfig",
        "lambda:GetFunctionConcurrency",
        "lambda:PutFunctionConcurrency",
        "lambda:DeleteFunctionConcurrency",
        "lambda:ListEventSourceMappings",
        "lambda:UpdateEventSourceMapping",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[
        Grant::on(
            &[
                "lambda:GetFunctionConfiguration",
                "lambda:ListTags",
                "lambda:TagResource",
                "lambda:UntagResource",
                "lambda:GetPolicy",
                "lambda:AddPermission",
                "lambda:RemovePermission",
                "lambda:GetFunctionUrlConfig",
                "lambda:UpdateFunctionUrlConfig",
                "lambda:GetFunctionConcurrency",
                "lambda:PutFunctionConcurrency",
                "lambda:DeleteFunctionConcurrency",
            ],
            &[arn::LAMBDA_FUNCTION],
        ),
        Grant::on(
            &["lambda:UpdateEventSourceMapping"],
            &[arn::EVENT_SOURCE_MAPPING],
        ),
    ];
    const SCOPE: &'static [ScopeField] = FUNCTION_SCOPE;
}

impl Execute for ReleaseFunction {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let function = function(ctx, &self.function_name).await?;
        let mut outputs = Vec::new();
        for action in [
            DisableEventSources::NAME,
            BlockInvocations::NAME,
            RestrictFunctionUrl::NAME,
            RemovePublicStatements::NAME,
            TagFunction::NAME,
        ] {
            outputs.extend(recorded_outputs(
                &self.journal,
                action,
                None,
                ctx.journal_key(),
            )?);
        }
        let (prior, left) = before_and_after(
            outputs
                .iter()
                .filter(|o| o["function_name"] == function.name.as_str()),
        );
        if prior.is_empty() {
            return Err(ActionError::Failed(format!(
                "journal {} records no containment of function {}; nothing to release",
                self.journal, function.name
            )));
        }
        let mut plan = Vec::new();
        let mut drifted = Vec::new();
        for setting in ALL {
            let key = setting.key();
            let (Some(before), Some(after)) = (prior.get(key), left.get(key)) else {
                continue;
            };
            if before == after {
                continue;
            }
            let live = settings::read(ctx, &function, *setting).await?;
            let standing = Standing::of(&live, before, after, |a, b| a == b);
            if standing == Standing::ChangedSince {
                drifted.push(drift(key, after, &live, before));
            }
            plan.push((*setting, before.clone(), live, standing));
        }
        if !drifted.is_empty() && !self.force {
            return Err(changed_since(
                &format!("function {}", function.name),
                drifted,
            ));
        }
        let mut restored = Vec::new();
        for (setting, before, live, standing) in plan {
            let sent = if standing == Standing::AlreadyRestored {
                false
            } else {
                settings::write(ctx, &function, setting, &live, &before)
                    .await
                    .map_err(|e| e.with_outputs(json!({ "restored": restored })))?
            };
            restored.push(json!({
                "setting": setting.key(),
                "state": standing.as_str(),
                "was": live,
                "restored_to": before,
                "changed": sent,
            }));
        }
        let changed = restored.iter().any(|r| r["changed"] == true);
        Ok(json!({
            "function_name": function.name,
            "restored": restored,
            "drifted": drifted,
            "changed": changed,
        }))
    }
}
