//! `ec2.disassociate_addresses`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ActionError;
use crate::actions::{Action, Execute};
use crate::engine::StepContext;

/// Disassociate every Elastic IP of the instance (all its interfaces), recording what was where.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DisassociateAddresses {
    pub instance_id: String,
}

impl Action for DisassociateAddresses {
    const NAME: &'static str = "ec2.disassociate_addresses";
    const SUMMARY: &'static str = "disassociate the Elastic IPs of the instance, recording each";
    const CALLS: &'static [&'static str] = &["ec2:DescribeAddresses", "ec2:DisassociateAddress"];
    const PERMISSIONS: &'static [&'static str] =
        &["ec2:DescribeAddresses", "ec2:DisassociateAddress"];
}

impl Execute for DisassociateAddresses {
    async fn execute(&self, _ctx: &StepContext) -> Result<Value, ActionError> {
        Err(ActionError::Failed(
            "ec2.disassociate_addresses is not implemented yet".into(),
        ))
    }
}
