//! `elbv2.deregister_targets`: a contained instance leaves every target group that holds it,
//! so no load balancer sends it traffic (and the attacker on it no requests to tamper with).
//! An Auto Scaling detach already takes an instance out of its group's target groups; this
//! finds what is left — groups registered by hand, or by another system — and records each
//! registration (port and zone) for the release to register again.

use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::grants::{Grant, arn};
use super::{Action, ActionError, Execute, Mode, StepContext};

/// Take an instance out of every load balancer target group that holds it (found by listing the region's target groups and their targets once per run, then reading again each group that holds the instance). Records each registration (group, port, zone) before; one not registered anywhere changes nothing.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeregisterTargets {
    pub instance_id: String,
}

impl Action for DeregisterTargets {
    const NAME: &'static str = "elbv2.deregister_targets";
    const SUMMARY: &'static str = "take an instance out of every load balancer target group that holds it; records each registration";
    const CALLS: &'static [&'static str] = &[
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DeregisterTargets",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[Grant::on(
        &["elasticloadbalancing:DeregisterTargets"],
        &[arn::TARGET_GROUP],
    )];
}

/// Register an instance again where `elbv2.deregister_targets` recorded it.
pub(crate) async fn register(
    ctx: &StepContext,
    instance_id: &str,
    registration: &Value,
) -> Result<bool, ActionError> {
    let group = registration["target_group_arn"]
        .as_str()
        .unwrap_or_default();
    let port = registration["port"]
        .as_i64()
        .and_then(|p| i32::try_from(p).ok());
    let zone = registration["availability_zone"]
        .as_str()
        .map(str::to_owned);
    let target = TargetDescription::builder()
        .id(instance_id)
        .set_port(port)
        .set_availability_zone(zone)
        .build();
    Ok(ctx
        .change(
            "elasticloadbalancing",
            "RegisterTargets",
            &[group, instance_id],
            json!({ "target_group_arn": group, "instance_id": instance_id, "port": port }),
            || {
                ctx.clients()
                    .elbv2
                    .register_targets()
                    .target_group_arn(group)
                    .targets(target.clone())
                    .send()
            },
        )
        .await?
        .is_some())
}

/// A target of an instance target group, as the run-wide list holds it.
#[derive(Debug, Clone)]
struct Listed {
    instance_id: String,
    port: Option<i32>,
}

/// Every target of the region's instance target groups, by group: one `DescribeTargetHealth`
/// per group for the whole run, so a fleet of N instances in a region of G groups costs G
/// reads here, not N×G. It can be minutes old for a fleet's later instances; [`registrations`]
/// reads each group that lists the instance again.
async fn targets_by_group(
    ctx: &StepContext,
) -> Result<std::sync::Arc<Vec<(String, Vec<Listed>)>>, ActionError> {
    ctx.once("elasticloadbalancing:targets-by-group", || async {
        let mut listed = Vec::new();
        for group in instance_target_groups(ctx).await? {
            let health = ctx
                .call(
                    "elasticloadbalancing",
                    "DescribeTargetHealth",
                    &[group.as_str()],
                    || {
                        ctx.clients()
                            .elbv2
                            .describe_target_health()
                            .target_group_arn(&group)
                            .send()
                    },
                )
                .await;
            // A group deleted since it was listed holds nothing.
            let Some(health) = crate::actions::error::found(health)? else {
                continue;
            };
            let targets = health
                .target_health_descriptions()
                .iter()
                .filter_map(|d| d.target())
                .filter_map(|t| {
                    Some(Listed {
                        instance_id: t.id()?.to_owned(),
                        port: t.port(),
                    })
                })
                .collect();
            listed.push((group, targets));
        }
        Ok(std::sync::Arc::new(listed))
    })
    .await
}

/// The region's instance target groups, read once per run: a run does not create any.
async fn instance_target_groups(ctx: &StepContext) -> Result<Vec<String>, ActionError> {
    ctx.once("elasticloadbalancing:DescribeTargetGroups", || async {
        let mut arns = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = ctx
                .call("elasticloadbalancing", "DescribeTargetGroups", &[], || {
                    ctx.clients()
                        .elbv2
                        .describe_target_groups()
                        .set_marker(marker.clone())
                        .send()
                })
                .await?;
            arns.extend(
                page.target_groups()
                    .iter()
                    .filter(|g| g.target_type().is_none_or(|t| t.as_str() == "instance"))
                    .filter_map(|g| g.target_group_arn().map(str::to_owned)),
            );
            marker = page.next_marker().map(str::to_owned);
            if marker.is_none() {
                return Ok(arns);
            }
        }
    })
    .await
}

/// Where the instance is registered now: `{target_group_arn, port, availability_zone, state}`
/// per registration. The groups the run-wide list shows holding it are read again for this
/// instance alone (a target drained or deregistered since is left out); a registration made
/// after the run-wide list was read — within the run, by someone else — is not seen.
pub(crate) async fn registrations(
    ctx: &StepContext,
    instance_id: &str,
) -> Result<Vec<Value>, ActionError> {
    let listed = targets_by_group(ctx).await?;
    let mut found = Vec::new();
    for (group, targets) in listed.iter() {
        let mine: Vec<TargetDescription> = targets
            .iter()
            .filter(|t| t.instance_id == instance_id)
            .map(|t| {
                TargetDescription::builder()
                    .id(instance_id)
                    .set_port(t.port)
                    .build()
            })
            .collect();
        if mine.is_empty() {
            continue;
        }
        let health = ctx
            .call(
                "elasticloadbalancing",
                "DescribeTargetHealth",
                &[group.as_str(), instance_id],
                || {
                    ctx.clients()
                        .elbv2
                        .describe_target_health()
                        .target_group_arn(group)
                        .set_targets(Some(mine.clone()))
                        .send()
                },
            )
            .await;
        let Some(health) = crate::actions::error::found(health)? else {
            continue;
        };
        for description in health.target_health_descriptions() {
            let Some(target) = description.target() else {
                continue;
            };
            let state = description
                .target_health()
                .and_then(|h| h.state())
                .map(|s| s.as_str().to_owned());
            let reason = description
                .target_health()
                .and_then(|h| h.reason())
                .map(|r| r.as_str());
            // A target already draining is on its way out; one deregistered is gone.
            if target.id() == Some(instance_id)
                && state.as_deref() != Some("draining")
                && reason != Some("Target.NotRegistered")
            {
                found.push(json!({
                    "target_group_arn": group,
                    "port": target.port(),
                    "availability_zone": target.availability_zone(),
                    "state": state,
                }));
            }
        }
    }
    Ok(found)
}

impl Execute for DeregisterTargets {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let id = self.instance_id.as_str();
        let held = registrations(ctx, id).await?;
        let mut done = Vec::new();
        for registration in &held {
            let group = registration["target_group_arn"]
                .as_str()
                .unwrap_or_default();
            let port = registration["port"]
                .as_i64()
                .and_then(|p| i32::try_from(p).ok());
            let target = TargetDescription::builder()
                .id(id)
                .set_port(port)
                .set_availability_zone(
                    registration["availability_zone"]
                        .as_str()
                        .map(str::to_owned),
                )
                .build();
            ctx.change(
                "elasticloadbalancing",
                "DeregisterTargets",
                &[group, id],
                json!({ "target_group_arn": group, "instance_id": id, "port": port }),
                || {
                    ctx.clients()
                        .elbv2
                        .deregister_targets()
                        .target_group_arn(group)
                        .targets(target.clone())
                        .send()
                },
            )
            .await
            .map_err(|e| e.with_outputs(json!({ "instance_id": id, "deregistered": done })))?;
            done.push(registration.clone());
        }
        let mut out = json!({
            "instance_id": id,
            "deregistered": done,
            "changed": !done.is_empty() && ctx.mode == Mode::Live,
        });
        if !done.is_empty() && ctx.mode == Mode::DryRun {
            out["dry_run"] = json!(true);
        }
        Ok(out)
    }
}
