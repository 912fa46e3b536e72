//! A compromised Lambda function: evidence first (`inventory_function`: configuration, code
//! location and hash, resource policy, event sources, environment variable *names* — never
//! their values), then reversible containment moves, each recording the setting it changes
//! `before` and `after`, and the release that puts `before` back from a verified journal.
//! Lambda has no `DryRun`: changes go through [`StepContext::change`].

mod contain;
mod inventory;
mod release;
mod settings;

pub use contain::{
    BlockInvocations, DisableEventSources, RemovePublicStatements, RestrictFunctionUrl, TagFunction,
};
pub use inventory::InventoryFunction;
pub use release::ReleaseFunction;

use super::{ActionError, StepContext};
use crate::actions::grants::ScopeField;

/// The function an action acts on comes from its `function_name` input.
pub const FUNCTION_SCOPE: &[ScopeField] = &[ScopeField {
    placeholder: "function",
    field: "function_name",
    default: "*",
}];

/// The function, by name, with its ARN (read once: tags are addressed by ARN).
async fn function(ctx: &StepContext, name: &str) -> Result<settings::Function, ActionError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ActionError::Input("`function_name` is empty".into()));
    }
    let lambda = &ctx.clients().lambda;
    let config = ctx
        .call("lambda", "GetFunctionConfiguration", &[name], || {
            lambda
                .get_function_configuration()
                .function_name(name)
                .send()
        })
        .await?;
    Ok(settings::Function {
        name: config.function_name().unwrap_or(name).to_owned(),
        arn: config.function_arn().unwrap_or_default().to_owned(),
    })
}
