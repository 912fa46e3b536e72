//! `ec2.detach_from_autoscaling`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ActionError;
use super::protect::change_flags;
use crate::actions::grants::{Grant, arn};
use crate::actions::{Action, Execute};
use crate::actions::{StepContext, reconcile};

/// What to do with an instance that is in an Auto Scaling group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AutoscalingMode {
    /// Detach it: the group launches a replacement unless `decrement_desired_capacity`.
    #[default]
    Detach,
    /// Put it in standby: it stays in the group but out of service and health checks.
    Standby,
}

/// If the instance is in an Auto Scaling group: protect it from scale-in, then detach it (or put it in standby). A no-op otherwise.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DetachFromAutoscaling {
    pub instance_id: String,
    #[serde(default)]
    pub mode: AutoscalingMode,
    /// Lower the group's desired capacity instead of launching a replacement.
    #[serde(default)]
    pub decrement_desired_capacity: bool,
}

impl Action for DetachFromAutoscaling {
    const NAME: &'static str = "ec2.detach_from_autoscaling";
    const SUMMARY: &'static str = "take the instance out of its Auto Scaling group (protected from scale-in first) so the group cannot terminate the evidence";
    const CALLS: &'static [&'static str] = &[
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:SetInstanceProtection",
        "autoscaling:DetachInstances",
        "autoscaling:EnterStandby",
    ];
    const PERMISSIONS: &'static [&'static str] = &[
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:SetInstanceProtection",
        "autoscaling:DetachInstances",
        "autoscaling:EnterStandby",
    ];
    const GRANTS: &'static [Grant] = &[Grant::on(
        &[
            "autoscaling:SetInstanceProtection",
            "autoscaling:DetachInstances",
            "autoscaling:EnterStandby",
        ],
        &[arn::AUTO_SCALING_GROUP],
    )];
}

impl Execute for DetachFromAutoscaling {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let id = self.instance_id.as_str();
        let Some(member) = group_member(ctx, id).await? else {
            let mut out = json!({"instance_id": id, "in_group": false, "done": []});
            change_flags(&mut out, false, ctx.mode);
            return Ok(out);
        };
        let group = member.auto_scaling_group_name().ok_or_else(|| {
            ActionError::Failed(format!(
                "autoscaling:DescribeAutoScalingInstances answered no group name for instance {id}"
            ))
        })?;
        let state = member.lifecycle_state().unwrap_or("unknown");
        let protected = member.protected_from_scale_in().unwrap_or(false);
        if state.starts_with("Terminat") {
            // Nothing can save it from here; say so rather than pretend.
            return Err(ActionError::Failed(format!(
                "instance {id} is already being terminated by Auto Scaling group {group} (lifecycle state {state})"
            )));
        }
        let mut report = Report {
            out: json!({
                "instance_id": id,
                "in_group": true,
                "autoscaling_group": group,
                "lifecycle_state_before": state,
                "protected_from_scale_in_before": protected,
                "mode": self.mode,
                "decrement_desired_capacity": self.decrement_desired_capacity,
            }),
            done: Vec::new(),
            activity_ids: Vec::new(),
        };

        let already = match (self.mode, state) {
            (_, "Detaching" | "Detached") => Some("already leaving the group"),
            (AutoscalingMode::Standby, "Standby" | "EnteringStandby") => Some("already in standby"),
            _ => None,
        };
        if let Some(reason) = already {
            report.out["reason"] = json!(reason);
            return Ok(report.snapshot(ctx));
        }

        if !protected {
            ctx.change(
                "autoscaling",
                "SetInstanceProtection",
                &[id, group],
                json!({"AutoScalingGroupName": group, "InstanceIds": [id], "ProtectedFromScaleIn": true}),
                || {
                    ctx.clients()
                        .autoscaling
                        .set_instance_protection()
                        .auto_scaling_group_name(group)
                        .instance_ids(id)
                        .protected_from_scale_in(true)
                        .send()
                },
            )
            .await
            .map_err(|e| e.with_outputs(report.snapshot(ctx)))?;
            report.done.push("set_instance_protection");
        }

        let input = json!({
            "AutoScalingGroupName": group,
            "InstanceIds": [id],
            "ShouldDecrementDesiredCapacity": self.decrement_desired_capacity,
        });
        // The scaling activities started, by id (none in a drill). Once either call has
        // worked a second send fails (the instance is no longer in service in the group):
        // after a lost answer the group is asked again, and an instance that left or is in
        // standby was moved by this call (its activities unknown).
        let send = || async {
            match self.mode {
                AutoscalingMode::Detach => ctx
                    .change(
                        "autoscaling",
                        "DetachInstances",
                        &[id, group],
                        input.clone(),
                        || {
                            ctx.clients()
                                .autoscaling
                                .detach_instances()
                                .auto_scaling_group_name(group)
                                .instance_ids(id)
                                .should_decrement_desired_capacity(self.decrement_desired_capacity)
                                .customize()
                                .config_override(reconcile::autoscaling_once())
                                .send()
                        },
                    )
                    .await
                    .map(|o| o.map(|o| activity_ids(o.activities()))),
                AutoscalingMode::Standby => ctx
                    .change(
                        "autoscaling",
                        "EnterStandby",
                        &[id, group],
                        input.clone(),
                        || {
                            ctx.clients()
                                .autoscaling
                                .enter_standby()
                                .auto_scaling_group_name(group)
                                .instance_ids(id)
                                .should_decrement_desired_capacity(self.decrement_desired_capacity)
                                .customize()
                                .config_override(reconcile::autoscaling_once())
                                .send()
                        },
                    )
                    .await
                    .map(|o| o.map(|o| activity_ids(o.activities()))),
            }
        };
        let moved = || async {
            let member = group_member(ctx, id).await?;
            let state = member.as_ref().and_then(|m| m.lifecycle_state());
            let moved = matches!(
                (self.mode, state),
                (
                    AutoscalingMode::Detach,
                    None | Some("Detaching" | "Detached")
                ) | (
                    AutoscalingMode::Standby,
                    Some("Standby" | "EnteringStandby")
                )
            );
            Ok(moved.then(|| Some(Vec::new())))
        };
        let activities = reconcile::until_done(send, moved)
            .await
            .map_err(|e| e.with_outputs(report.snapshot(ctx)))?;
        report.done.push(match self.mode {
            AutoscalingMode::Detach => "detach_instances",
            AutoscalingMode::Standby => "enter_standby",
        });
        report.activity_ids = activities.unwrap_or_default();
        Ok(report.snapshot(ctx))
    }
}

fn activity_ids(activities: &[aws_sdk_autoscaling::types::Activity]) -> Vec<String> {
    activities
        .iter()
        .filter_map(|a| a.activity_id().map(str::to_owned))
        .collect()
}

/// The outputs as they grow, so a failure part-way reports what was done.
struct Report {
    out: Value,
    done: Vec<&'static str>,
    activity_ids: Vec<String>,
}

impl Report {
    fn snapshot(&self, ctx: &StepContext) -> Value {
        let mut out = self.out.clone();
        out["done"] = json!(self.done);
        out["activity_ids"] = json!(self.activity_ids);
        change_flags(&mut out, !self.done.is_empty(), ctx.mode);
        out
    }
}

/// The instance's Auto Scaling membership, if any, read with concurrent items' (an id Auto
/// Scaling does not know is left out of the answer, not an error).
async fn group_member(
    ctx: &StepContext,
    instance_id: &str,
) -> Result<Option<aws_sdk_autoscaling::types::AutoScalingInstanceDetails>, ActionError> {
    /// DescribeAutoScalingInstances takes at most 50 ids.
    const IDS_PER_CALL: usize = 50;
    ctx.batched(
        "autoscaling:DescribeAutoScalingInstances",
        instance_id,
        |ctx, ids| async move {
            let mut found = std::collections::HashMap::new();
            for chunk in ids.chunks(IDS_PER_CALL) {
                let targets: Vec<&str> = chunk.iter().map(String::as_str).collect();
                let mut token: Option<String> = None;
                loop {
                    let page = ctx
                        .call(
                            "autoscaling",
                            "DescribeAutoScalingInstances",
                            &targets,
                            || {
                                ctx.clients()
                                    .autoscaling
                                    .describe_auto_scaling_instances()
                                    .set_instance_ids(Some(chunk.to_vec()))
                                    .set_next_token(token.clone())
                                    .send()
                            },
                        )
                        .await?;
                    for member in page.auto_scaling_instances() {
                        if let Some(id) = member.instance_id() {
                            found.insert(id.to_owned(), member.clone());
                        }
                    }
                    token = page
                        .next_token()
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned);
                    if token.is_none() {
                        break;
                    }
                }
            }
            Ok(found)
        },
    )
    .await
}
