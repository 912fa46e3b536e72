//! `ec2.stop_instance`.

use aws_sdk_ec2::types::{Instance, InstanceStateName};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::protect::change_flags;
use super::{ActionError, describe_one, poll_delay};
use crate::actions::grants::{Grant, arn};
use crate::actions::{Action, Execute};
use crate::actions::{Mode, StepContext};

/// Stop the instance (never terminate: its disks are evidence). A no-op if already stopped.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopInstance {
    pub instance_id: String,
    /// Wait until it is `stopped` (bounded by the step timeout).
    #[serde(default)]
    pub wait: bool,
}

impl Action for StopInstance {
    const NAME: &'static str = "ec2.stop_instance";
    const SUMMARY: &'static str =
        "stop (never terminate) the instance, optionally waiting until it is stopped";
    const CALLS: &'static [&'static str] = &["ec2:DescribeInstances", "ec2:StopInstances"];
    const PERMISSIONS: &'static [&'static str] = &["ec2:DescribeInstances", "ec2:StopInstances"];
    const GRANTS: &'static [Grant] = &[Grant::on(&["ec2:StopInstances"], &[arn::INSTANCE])];
}

impl Execute for StopInstance {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let id = self.instance_id.as_str();
        let before = state_of(&describe_one(ctx, id).await?);
        if matches!(
            before,
            InstanceStateName::ShuttingDown | InstanceStateName::Terminated
        ) {
            return Err(ActionError::Failed(format!(
                "instance {id} is {}: it cannot be stopped",
                before.as_str()
            )));
        }
        let needs_stop = !matches!(
            before,
            InstanceStateName::Stopped | InstanceStateName::Stopping
        );
        let mut after = before.clone();
        if needs_stop {
            // Never `Force` (it skips flushing file systems) and never hibernate: the disks
            // are evidence.
            let stopped = ctx
                .ec2_change("StopInstances", &[id], |dry_run| {
                    ctx.clients()
                        .ec2
                        .stop_instances()
                        .dry_run(dry_run)
                        .instance_ids(id)
                        .send()
                })
                .await?;
            // In a drill nothing was sent: the state stays as it was.
            if let Some(stopped) = stopped {
                after = stopped
                    .stopping_instances()
                    .iter()
                    .find(|c| c.instance_id() == Some(id))
                    .and_then(|c| c.current_state())
                    .and_then(|s| s.name())
                    .cloned()
                    .unwrap_or(InstanceStateName::Stopping);
            }
        }
        let mut out = json!({
            "instance_id": id,
            "state_before": before.as_str(),
            "state_after": after.as_str(),
            "waited": false,
        });
        if self.wait && ctx.mode == Mode::Live && after != InstanceStateName::Stopped {
            let polls = wait_until_stopped(ctx, id).await.map_err(|e| {
                let mut out = out.clone();
                change_flags(&mut out, needs_stop, ctx.mode);
                e.with_outputs(out)
            })?;
            out["state_after"] = json!(InstanceStateName::Stopped.as_str());
            out["waited"] = json!(true);
            out["polls"] = json!(polls);
        }
        change_flags(&mut out, needs_stop, ctx.mode);
        Ok(out)
    }
}

fn state_of(instance: &Instance) -> InstanceStateName {
    instance
        .state()
        .and_then(|s| s.name())
        .cloned()
        .unwrap_or_else(|| InstanceStateName::from("unknown"))
}

/// Polls until `stopped`, the delay growing with `poll_delay` (the engine's step timeout
/// bounds the wait); fails if the instance goes away instead. Returns the number of polls.
async fn wait_until_stopped(ctx: &StepContext, id: &str) -> Result<u32, ActionError> {
    let mut round = 0;
    loop {
        let state = state_of(&describe_one(ctx, id).await?);
        round += 1;
        match state {
            InstanceStateName::Stopped => return Ok(round),
            InstanceStateName::ShuttingDown | InstanceStateName::Terminated => {
                return Err(ActionError::Failed(format!(
                    "instance {id} is {} while waiting for it to stop",
                    state.as_str()
                )));
            }
            _ => tokio::time::sleep(poll_delay(round - 1)).await,
        }
    }
}
