//! `ec2.snapshot_volumes`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ActionError;
use crate::actions::{Action, Execute};
use crate::engine::StepContext;

/// Snapshot all (or the listed) volumes of the instance, tagged at creation with case, run, step, source instance and volume; on resume, finds its own snapshots by tag instead of making new ones.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotVolumes {
    pub instance_id: String,
    /// Only these volumes (default: every EBS volume attached to the instance).
    #[serde(default)]
    pub volume_ids: Option<Vec<String>>,
    /// The case the snapshots belong to (tag `firebreak:case`).
    pub case_id: String,
    /// Wait until every snapshot is `completed` (bounded by the step timeout).
    #[serde(default = "default_true")]
    pub wait: bool,
}

fn default_true() -> bool {
    true
}

impl Action for SnapshotVolumes {
    const NAME: &'static str = "ec2.snapshot_volumes";
    const SUMMARY: &'static str =
        "crash-consistent snapshots of the instance's volumes, tagged with the case, waited for";
    const CALLS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:DescribeSnapshots",
        "ec2:CreateSnapshot",
    ];
    const PERMISSIONS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:DescribeSnapshots",
        "ec2:CreateSnapshot",
        "ec2:CreateTags",
    ];
}

impl Execute for SnapshotVolumes {
    async fn execute(&self, _ctx: &StepContext) -> Result<Value, ActionError> {
        Err(ActionError::Failed(
            "ec2.snapshot_volumes is not implemented yet".into(),
        ))
    }
}
