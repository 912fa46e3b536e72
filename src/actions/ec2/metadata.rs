//! `ec2.disable_metadata`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ActionError;
use crate::actions::{Action, Execute};
use crate::engine::StepContext;

/// How to restrict the instance metadata service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MetadataMode {
    /// `HttpEndpoint=disabled`: no metadata at all.
    #[default]
    Disable,
    /// `HttpTokens=required`: IMDSv2 only (stops SSRF-style credential theft, keeps the service).
    RequireTokens,
}

/// Disable the metadata endpoint (or require IMDSv2 tokens), recording the previous options.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableMetadata {
    pub instance_id: String,
    #[serde(default)]
    pub mode: MetadataMode,
}

impl Action for DisableMetadata {
    const NAME: &'static str = "ec2.disable_metadata";
    const SUMMARY: &'static str = "stop credential theft through the instance metadata service";
    const CALLS: &'static [&'static str] =
        &["ec2:DescribeInstances", "ec2:ModifyInstanceMetadataOptions"];
    const PERMISSIONS: &'static [&'static str] =
        &["ec2:DescribeInstances", "ec2:ModifyInstanceMetadataOptions"];
}

impl Execute for DisableMetadata {
    async fn execute(&self, _ctx: &StepContext) -> Result<Value, ActionError> {
        Err(ActionError::Failed(
            "ec2.disable_metadata is not implemented yet".into(),
        ))
    }
}
