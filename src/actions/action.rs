//! What every action declares about itself and how it runs.

use std::future::Future;

use schemars::{JsonSchema, Schema};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::grants::{Grant, ScopeField};
use super::{ActionError, StepContext};

/// What every action declares about itself.
pub trait Action: DeserializeOwned + JsonSchema {
    /// The name runbooks use, `service.verb_object`.
    const NAME: &'static str;
    /// One line for `plan` and `--help`.
    const SUMMARY: &'static str;
    /// The AWS API calls it may make, as `service:Operation`.
    const CALLS: &'static [&'static str];
    /// The IAM permissions it needs (feeds `policy` and the dry-run preflight).
    const PERMISSIONS: &'static [&'static str];
    /// Where its permissions apply; a permission no grant names applies to `*` (the
    /// Describe/List/Get calls AWS does not scope to resources).
    const GRANTS: &'static [Grant] = &[];
    /// Which input fields fill the placeholders of its grants.
    const SCOPE: &'static [ScopeField] = &[];
}

/// How an action runs. Implementations must be idempotent: the engine runs a step again after a
/// crash, with the same idempotency key (`ctx.idempotency_key`).
pub trait Execute {
    fn execute(&self, ctx: &StepContext)
    -> impl Future<Output = Result<Value, ActionError>> + Send;
}

/// A catalogue entry: an action's declarations without its type.
pub struct ActionInfo {
    pub name: &'static str,
    pub summary: &'static str,
    pub calls: &'static [&'static str],
    pub permissions: &'static [&'static str],
    pub grants: &'static [Grant],
    pub scope: &'static [ScopeField],
    /// Whether the action asks a person (a decision point in plans and drills).
    pub decision: bool,
    /// Whether its success cuts the target off (its time to isolation is journaled).
    pub isolates: bool,
    /// The input's JSON Schema (draft-07, with its own definitions).
    pub input_schema: fn() -> Schema,
}

impl ActionInfo {
    /// The grant that covers `permission`, if one does.
    pub fn grant_for(&self, permission: &str) -> Option<&'static Grant> {
        self.grants
            .iter()
            .find(|g| g.permissions.contains(&permission))
    }
}

/// The input schema of one action, as a standalone draft-07 document.
pub fn input_schema<T: JsonSchema>() -> Schema {
    schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<T>()
}
