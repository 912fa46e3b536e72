//! `ec2.protect_instance`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ActionError;
use crate::actions::{Action, Execute};
use crate::engine::StepContext;

/// Turn on termination protection, set shutdown behaviour to `stop`, and keep every EBS volume on termination.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtectInstance {
    pub instance_id: String,
}

impl Action for ProtectInstance {
    const NAME: &'static str = "ec2.protect_instance";
    const SUMMARY: &'static str = "keep the instance and its evidence: termination protection on, shutdown behaviour `stop`, volumes kept on termination";
    const CALLS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:DescribeInstanceAttribute",
        "ec2:ModifyInstanceAttribute",
    ];
    const PERMISSIONS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:DescribeInstanceAttribute",
        "ec2:ModifyInstanceAttribute",
    ];
}

impl Execute for ProtectInstance {
    async fn execute(&self, _ctx: &StepContext) -> Result<Value, ActionError> {
        Err(ActionError::Failed(
            "ec2.protect_instance is not implemented yet".into(),
        ))
    }
}
