//! `ec2.stop_instance`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ActionError;
use crate::actions::{Action, Execute};
use crate::engine::StepContext;

/// Stop the instance (never terminate: its disks are evidence). A no-op if already stopped.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopInstance {
    pub instance_id: String,
    /// Wait until it is `stopped` (bounded by the step timeout).
    #[serde(default)]
    pub wait: bool,
}

impl Action for StopInstance {
    const NAME: &'static str = "ec2.stop_instance";
    const SUMMARY: &'static str =
        "stop (never terminate) the instance, optionally waiting until it is stopped";
    const CALLS: &'static [&'static str] = &["ec2:DescribeInstances", "ec2:StopInstances"];
    const PERMISSIONS: &'static [&'static str] = &["ec2:DescribeInstances", "ec2:StopInstances"];
}

impl Execute for StopInstance {
    async fn execute(&self, _ctx: &StepContext) -> Result<Value, ActionError> {
        Err(ActionError::Failed(
            "ec2.stop_instance is not implemented yet".into(),
        ))
    }
}
