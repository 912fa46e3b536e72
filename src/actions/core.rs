//! Actions that do not touch AWS: operator approval and log lines.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Action, ActionError, Execute};
use crate::actions::StepContext;

/// Ask the operator to approve before the run goes on. Output: `approved: true|false`, `by`.
///
/// With nobody to ask the run parks (`awaiting_approval`) until `firebreak approve` or `deny`
/// writes a decision record; after `timeout` the decision is deny (never approve).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approve {
    /// The question shown to the operator.
    pub prompt: String,
    /// How long a parked approval waits, e.g. `4h` (at most 24h); then the decision is deny,
    /// applied by the next `approve`, `deny` or `resume` that touches the run. Default: no
    /// deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Who may decide: ARN patterns with `*` and `?`, matched against the decider's
    /// `sts:GetCallerIdentity` ARN, e.g. `arn:aws:sts::*:assumed-role/IR-Lead/*`. Default: anyone
    /// who can run firebreak on the run. Applies to `--yes` and the terminal too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
}

impl Action for Approve {
    const NAME: &'static str = "core.approve";
    const SUMMARY: &'static str = "ask the operator to approve before going on";
    const CALLS: &'static [&'static str] = &[];
    const PERMISSIONS: &'static [&'static str] = &[];
}

impl Execute for Approve {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let timeout = self
            .timeout
            .as_deref()
            .map(crate::runbook::duration::parse)
            .transpose()
            .map_err(|e| ActionError::Failed(format!("`timeout`: {e}")))?;
        let decision = ctx.approve(&self.prompt, &self.approvers, timeout).await?;
        if decision.parked {
            return Err(ActionError::Parked(format!(
                "\"{}\" ({})",
                ctx.redact(&self.prompt),
                decision.by
            )));
        }
        if decision.refused {
            return Err(ActionError::Refused(format!(
                "approval \"{}\" denied: {}",
                ctx.redact(&self.prompt),
                decision.by
            )));
        }
        Ok(json!({ "approved": decision.approved, "by": decision.by }))
    }
}

/// Write a line to the run's log and journal.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Log {
    pub message: String,
}

impl Action for Log {
    const NAME: &'static str = "core.log";
    const SUMMARY: &'static str = "write a message to the run's log and journal";
    const CALLS: &'static [&'static str] = &[];
    const PERMISSIONS: &'static [&'static str] = &[];
}

impl Execute for Log {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let message = ctx.redact(&self.message);
        tracing::info!(step = %ctx.step_id, "{message}");
        Ok(json!({ "message": message }))
    }
}

/// Pause the run, e.g. to let a change propagate. Bounded by the step's `timeout`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    /// How long, e.g. `30s`, `2m`.
    pub duration: String,
}

impl Action for Wait {
    const NAME: &'static str = "core.wait";
    const SUMMARY: &'static str = "pause for a duration (bounded by the step timeout)";
    const CALLS: &'static [&'static str] = &[];
    const PERMISSIONS: &'static [&'static str] = &[];
}

impl Execute for Wait {
    async fn execute(&self, _ctx: &StepContext) -> Result<Value, ActionError> {
        let duration = crate::runbook::duration::parse(&self.duration)
            .map_err(|e| ActionError::Failed(format!("`duration`: {e}")))?;
        tokio::time::sleep(duration).await;
        Ok(json!({ "waited": crate::runbook::duration::format(duration) }))
    }
}
