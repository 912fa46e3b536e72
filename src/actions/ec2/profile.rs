//! `ec2.replace_instance_profile`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ActionError;
use crate::actions::{Action, Execute};
use crate::engine::StepContext;

/// Replace the instance's profile with `replacement_profile_arn` (a deny-all profile), or disassociate it when none is given. Records the original.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceInstanceProfile {
    pub instance_id: String,
    /// ARN of the instance profile to put in place; without it the profile is disassociated.
    #[serde(default)]
    pub replacement_profile_arn: Option<String>,
}

impl Action for ReplaceInstanceProfile {
    const NAME: &'static str = "ec2.replace_instance_profile";
    const SUMMARY: &'static str = "remove the instance's role credentials: replace its instance profile with a deny-all one, or disassociate it";
    const CALLS: &'static [&'static str] = &[
        "ec2:DescribeIamInstanceProfileAssociations",
        "ec2:ReplaceIamInstanceProfileAssociation",
        "ec2:DisassociateIamInstanceProfile",
        "ec2:CreateTags",
    ];
    const PERMISSIONS: &'static [&'static str] = &[
        "ec2:DescribeIamInstanceProfileAssociations",
        "ec2:ReplaceIamInstanceProfileAssociation",
        "ec2:DisassociateIamInstanceProfile",
        "ec2:CreateTags",
        "iam:PassRole",
    ];
}

impl Execute for ReplaceInstanceProfile {
    async fn execute(&self, _ctx: &StepContext) -> Result<Value, ActionError> {
        Err(ActionError::Failed(
            "ec2.replace_instance_profile is not implemented yet".into(),
        ))
    }
}
