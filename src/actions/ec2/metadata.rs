//! `ec2.disable_metadata`.

use aws_sdk_ec2::types::{HttpTokensState, InstanceMetadataEndpointState};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::protect::change_flags;
use super::{ActionError, describe_one};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, arn};
use crate::actions::{Action, Execute};

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
    const GRANTS: &'static [Grant] = &[Grant::on(
        &["ec2:ModifyInstanceMetadataOptions"],
        &[arn::INSTANCE],
    )];
}

impl Execute for DisableMetadata {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let id = self.instance_id.as_str();
        let instance = describe_one(ctx, id).await?;
        let options = instance.metadata_options();
        let endpoint = options.and_then(|o| o.http_endpoint()).cloned();
        let tokens = options.and_then(|o| o.http_tokens()).cloned();
        let before = json!({
            "http_endpoint": endpoint.as_ref().map(|e| e.as_str()),
            "http_tokens": tokens.as_ref().map(|t| t.as_str()),
            "http_put_response_hop_limit": options.and_then(|o| o.http_put_response_hop_limit()),
            "instance_metadata_tags": options.and_then(|o| o.instance_metadata_tags()).map(|t| t.as_str()),
        });

        // What to set; the other of the two settings is sent with its current value, so the
        // change can never loosen it by falling back to a default.
        let (want_endpoint, want_tokens) = match self.mode {
            MetadataMode::Disable => (
                Some(InstanceMetadataEndpointState::Disabled),
                tokens.clone(),
            ),
            MetadataMode::RequireTokens => (endpoint.clone(), Some(HttpTokensState::Required)),
        };
        let needed = want_endpoint != endpoint || want_tokens != tokens;
        let mut after = before.clone();
        let mut out = json!({
            "instance_id": id,
            "mode": self.mode,
        });
        if needed {
            ctx.ec2_change("ModifyInstanceMetadataOptions", &[id], |dry_run| {
                ctx.clients()
                    .ec2
                    .modify_instance_metadata_options()
                    .dry_run(dry_run)
                    .instance_id(id)
                    .set_http_endpoint(want_endpoint.clone())
                    .set_http_tokens(want_tokens.clone())
                    .send()
            })
            .await?;
            after["http_endpoint"] = json!(want_endpoint.as_ref().map(|e| e.as_str()));
            after["http_tokens"] = json!(want_tokens.as_ref().map(|t| t.as_str()));
        }
        out["before"] = before;
        out["after"] = after;
        change_flags(&mut out, needed, ctx.mode);
        Ok(out)
    }
}
