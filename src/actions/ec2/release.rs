//! `ec2.release_isolation`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ActionError;
use crate::actions::{Action, Execute};
use crate::engine::StepContext;

/// One interface to restore: as `ec2.isolate_instance` reports it (other fields are ignored).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct IsolatedInterface {
    pub network_interface_id: String,
    pub original_groups: Vec<String>,
}

/// Put back the original security groups of isolated interfaces: from the `interfaces` outputs of an isolation step, from the journal of the run that isolated, or from the tags isolation left on the instance's interfaces.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseIsolation {
    /// The `interfaces` outputs of an `ec2.isolate_instance` step.
    #[serde(default)]
    pub interfaces: Option<Vec<IsolatedInterface>>,
    /// The journal of the run that isolated (verified before it is read).
    #[serde(default)]
    pub journal: Option<String>,
    /// With `journal`: the isolation step's id (default: every `ec2.isolate_instance` step).
    #[serde(default)]
    pub step: Option<String>,
    /// Restore from the `firebreak:original-groups` tags on this instance's interfaces.
    #[serde(default)]
    pub instance_id: Option<String>,
}

impl Action for ReleaseIsolation {
    const NAME: &'static str = "ec2.release_isolation";
    const SUMMARY: &'static str =
        "put back the original security groups of isolated network interfaces";
    const CALLS: &'static [&'static str] = &[
        "ec2:DescribeNetworkInterfaces",
        "ec2:ModifyNetworkInterfaceAttribute",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
}

impl Execute for ReleaseIsolation {
    async fn execute(&self, _ctx: &StepContext) -> Result<Value, ActionError> {
        Err(ActionError::Failed("not implemented yet".into()))
    }
}
