//! `ec2.detach_from_autoscaling`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ActionError;
use crate::actions::{Action, Execute};
use crate::engine::StepContext;

/// What to do with an instance that is in an Auto Scaling group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AutoscalingMode {
    /// Detach it: the group launches a replacement unless `decrement_desired_capacity`.
    #[default]
    Detach,
    /// Put it in standby: it stays in the group but out of service and health checks.
    Standby,
}

/// If the instance is in an Auto Scaling group: protect it from scale-in, then detach it (or put it in standby). A no-op otherwise.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DetachFromAutoscaling {
    pub instance_id: String,
    #[serde(default)]
    pub mode: AutoscalingMode,
    /// Lower the group's desired capacity instead of launching a replacement.
    #[serde(default)]
    pub decrement_desired_capacity: bool,
}

impl Action for DetachFromAutoscaling {
    const NAME: &'static str = "ec2.detach_from_autoscaling";
    const SUMMARY: &'static str = "take the instance out of its Auto Scaling group (protected from scale-in first) so the group cannot terminate the evidence";
    const CALLS: &'static [&'static str] = &[
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:SetInstanceProtection",
        "autoscaling:DetachInstances",
        "autoscaling:EnterStandby",
    ];
    const PERMISSIONS: &'static [&'static str] = &[
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:SetInstanceProtection",
        "autoscaling:DetachInstances",
        "autoscaling:EnterStandby",
    ];
}

impl Execute for DetachFromAutoscaling {
    async fn execute(&self, _ctx: &StepContext) -> Result<Value, ActionError> {
        Err(ActionError::Failed(
            "ec2.detach_from_autoscaling is not implemented yet".into(),
        ))
    }
}
