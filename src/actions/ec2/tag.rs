//! `ec2.tag_resources`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ActionError;
use crate::actions::{Action, Execute};
use crate::engine::StepContext;

/// One id or a list of ids (so `{{steps.describe.outputs.volume_ids}}` can be given as is).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ResourceIds {
    One(String),
    Many(Vec<String>),
}

/// Tag resources (any EC2 resource ids) with the given tags, up to 1000 resources a call.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagResources {
    /// Ids and lists of ids; flattened and de-duplicated.
    pub resource_ids: Vec<ResourceIds>,
    pub tags: indexmap::IndexMap<String, String>,
}

impl Action for TagResources {
    const NAME: &'static str = "ec2.tag_resources";
    const SUMMARY: &'static str =
        "tag instances, volumes, snapshots and interfaces with the case, in batches";
    const CALLS: &'static [&'static str] = &["ec2:CreateTags"];
    const PERMISSIONS: &'static [&'static str] = &["ec2:CreateTags"];
}

impl Execute for TagResources {
    async fn execute(&self, _ctx: &StepContext) -> Result<Value, ActionError> {
        Err(ActionError::Failed(
            "ec2.tag_resources is not implemented yet".into(),
        ))
    }
}
