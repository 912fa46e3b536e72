//! `ec2.isolate_instance`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ActionError;
use crate::actions::{Action, Execute};
use crate::engine::StepContext;

/// How to isolate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum IsolationStrategy {
    /// First an all-traffic group (existing connections become untracked), then the no-rule
    /// group: existing attacker sessions are cut, not only new ones.
    #[default]
    UntrackThenIsolate,
    /// Straight to the no-rule group; tracked connections already open may live on.
    IsolateOnly,
}

/// Isolate every network interface of the instance in a firebreak-managed security group with no rules, recording each interface's original groups.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IsolateInstance {
    pub instance_id: String,
    #[serde(default)]
    pub strategy: IsolationStrategy,
    /// Tags the groups firebreak creates with the case.
    #[serde(default)]
    pub case_id: Option<String>,
}

impl Action for IsolateInstance {
    const NAME: &'static str = "ec2.isolate_instance";
    const SUMMARY: &'static str = "cut every network interface off: all-traffic group first (untracks connections), then a group with no rules";
    const CALLS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSecurityGroups",
        "ec2:CreateSecurityGroup",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:CreateTags",
        "ec2:ModifyNetworkInterfaceAttribute",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
}

impl Execute for IsolateInstance {
    async fn execute(&self, _ctx: &StepContext) -> Result<Value, ActionError> {
        Err(ActionError::Failed("not implemented yet".into()))
    }
}
