//! `ec2.capture_console_output`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ActionError;
use crate::actions::{Action, Execute};
use crate::engine::StepContext;

/// Save the console output as an evidence file in the run's evidence folder.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureConsoleOutput {
    pub instance_id: String,
    /// The most recent output (Nitro instances) rather than the buffered last 64 KB.
    #[serde(default = "default_true")]
    pub latest: bool,
}

fn default_true() -> bool {
    true
}

impl Action for CaptureConsoleOutput {
    const NAME: &'static str = "ec2.capture_console_output";
    const SUMMARY: &'static str =
        "save the instance's console output as an evidence artifact (SHA-256 in the journal)";
    const CALLS: &'static [&'static str] = &["ec2:GetConsoleOutput"];
    const PERMISSIONS: &'static [&'static str] = &["ec2:GetConsoleOutput"];
}

impl Execute for CaptureConsoleOutput {
    async fn execute(&self, _ctx: &StepContext) -> Result<Value, ActionError> {
        Err(ActionError::Failed(
            "ec2.capture_console_output is not implemented yet".into(),
        ))
    }
}
