//! `ec2.capture_console_output`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ActionError;
use crate::actions::StepContext;
use crate::actions::grants::{Grant, arn};
use crate::actions::{Action, Execute};

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
    const GRANTS: &'static [Grant] = &[Grant::on(&["ec2:GetConsoleOutput"], &[arn::INSTANCE])];
}

impl Execute for CaptureConsoleOutput {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let id = self.instance_id.as_str();
        // The id names the evidence file: nothing that could leave the evidence folder.
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(ActionError::Failed(format!(
                "`{id}` is not an instance id (letters, digits and `-` only)"
            )));
        }
        let targets = [id];
        let get = |latest: bool| {
            ctx.call("ec2", "GetConsoleOutput", &targets, move || {
                ctx.clients()
                    .ec2
                    .get_console_output()
                    .instance_id(id)
                    .latest(latest)
                    .send()
            })
        };
        let mut latest = self.latest;
        let output = match get(latest).await {
            // `Latest` exists only on Nitro instances; older ones still have the buffered output.
            Err(error) if latest && error.code() == Some("UnsupportedOperation") => {
                latest = false;
                get(latest).await?
            }
            other => other?,
        };
        let encoded = output.output().unwrap_or_default();
        let bytes = aws_smithy_types::base64::decode(encoded.trim()).map_err(|e| {
            ActionError::Failed(format!(
                "console output of {id} is not valid base64 ({e}); nothing was saved"
            ))
        })?;
        let artifact = ctx.write_evidence(&format!("console-{id}.txt"), &bytes)?;
        Ok(json!({
            "artifact": artifact,
            "empty": bytes.is_empty(),
            "timestamp": output
                .timestamp()
                .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
            "latest": latest,
        }))
    }
}
