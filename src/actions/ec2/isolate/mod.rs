//! `ec2.isolate_instance`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod groups;
mod membership;
mod moves;

use groups::find_or_create_group;
use membership::{FirebreakGroups, Membership, instance_interfaces};
use moves::{PASSES, isolate_interface};

use super::interfaces::{COLLECTION_ROLE, role_groups};
use super::reads::group_rule_count;
use super::{ActionError, describe_one};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, arn, condition};
use crate::actions::{Action, Execute};

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
    const GRANTS: &'static [Grant] = &[
        // A request condition holds for every resource of the request, so the VPC and the new
        // group share one statement.
        Grant::when(
            &["ec2:CreateSecurityGroup"],
            &[arn::VPC, arn::SECURITY_GROUP],
            condition::REQUEST_TAG_ROLE,
        ),
        // Rules change only on firebreak's own groups.
        Grant::when(
            &[
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupEgress",
            ],
            &[arn::SECURITY_GROUP],
            condition::RESOURCE_TAG_MANAGED,
        ),
        Grant::on(&["ec2:CreateTags"], arn::EC2_TAGGABLE),
        Grant::on(
            &["ec2:ModifyNetworkInterfaceAttribute"],
            &[arn::NETWORK_INTERFACE, arn::SECURITY_GROUP],
        ),
    ];
}

/// What a firebreak-managed security group is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// No rules at all: nothing in, nothing out.
    Isolation,
    /// All traffic in and out: connections through it are untracked, so the move to the
    /// isolation group cuts them.
    Untrack,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Isolation => "isolation",
            Role::Untrack => "untrack",
        }
    }
}

impl Execute for IsolateInstance {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let id = self.instance_id.as_str();
        let instance = describe_one(ctx, id).await?;
        let vpc = instance.vpc_id().ok_or_else(|| {
            ActionError::Failed(format!(
                "instance {id} is not in a VPC; cannot isolate it with security groups"
            ))
        })?;
        let case = self.case_id.as_deref();
        // Once per VPC per run: concurrent items share the group the first one found or made.
        let isolation = ctx
            .once(&format!("ec2-group/{vpc}/isolation"), || {
                find_or_create_group(ctx, vpc, Role::Isolation, case)
            })
            .await?;
        let untrack = match self.strategy {
            IsolationStrategy::UntrackThenIsolate => Some(
                ctx.once(&format!("ec2-group/{vpc}/untrack"), || {
                    find_or_create_group(ctx, vpc, Role::Untrack, case)
                })
                .await?,
            ),
            IsolationStrategy::IsolateOnly => None,
        };
        let mut groups = FirebreakGroups {
            isolation: isolation.clone(),
            untrack: untrack.clone(),
            collection: Vec::new(),
        };
        // Every interface is tried, whatever happens to the others: fail closed means cutting
        // off as much as possible, then saying exactly what is not. Then the state is read
        // back; an interface attached meanwhile (an agent, the attacker) gets its own pass, up
        // to PASSES in all, and is reported if it is still not isolated after the last.
        let mut report: Vec<Value> = Vec::new();
        let mut changed = false;
        let mut interfaces = instance_interfaces(ctx, id).await?;
        // A collection group (the SSM endpoints only, added after an earlier isolation) is
        // firebreak's: never an original group to restore, and not "isolated" either.
        if interfaces.iter().any(|e| e.hints_collection) {
            groups.collection = role_groups(ctx, vpc, COLLECTION_ROLE)
                .await?
                .iter()
                .filter_map(|g| g.group_id().map(str::to_owned))
                .collect();
        }
        let mut before = Membership::read(ctx, id, &interfaces, &groups).await?;
        // Once an interface has moved, a failure still says what was done.
        let partial = |error: ActionError, report: &[Value], changed: bool| {
            let done = outputs(
                self,
                vpc,
                &isolation,
                untrack.as_deref(),
                report.to_vec(),
                changed,
            );
            error.with_outputs(done)
        };
        for pass in 1..=PASSES {
            for eni in &interfaces {
                if before.exactly_isolated(&eni.id) {
                    report.push(json!({
                        "network_interface_id": eni.id,
                        "original_groups": eni.trusted_original(&before),
                        "state": "isolated",
                        "changed": false,
                    }));
                    continue;
                }
                let original = eni.trusted_original(&before);
                let outcome = match isolate_interface(ctx, eni, &original, &before, &groups).await {
                    Ok(outcome) => outcome,
                    Err(error) => return Err(partial(error, &report, changed)),
                };
                changed = true;
                let mut entry = outcome.report(&eni.id, &original);
                if pass > 1 {
                    entry["attached_during_isolation"] = json!(true);
                }
                report.push(entry);
            }
            if ctx.mode != crate::journal::Mode::Live {
                break;
            }
            // Read back: every attached interface in the isolation group and in no other.
            let read = match instance_interfaces(ctx, id).await {
                Ok(now) => Membership::read(ctx, id, &now, &groups)
                    .await
                    .map(|after| (now, after)),
                Err(error) => Err(error),
            };
            let (now, after) = match read {
                Ok(read) => read,
                Err(error) => return Err(partial(error, &report, changed)),
            };
            let mut late = Vec::new();
            for eni in now {
                let verified = after.exactly_isolated(&eni.id);
                match report
                    .iter_mut()
                    .find(|r| r["network_interface_id"] == eni.id.as_str())
                {
                    Some(entry) => entry["verified"] = json!(verified),
                    None if pass < PASSES => late.push(eni),
                    None => report.push(json!({
                        "network_interface_id": eni.id,
                        "original_groups": eni.groups,
                        "state": if verified { "isolated" } else { "not-isolated" },
                        "verified": verified,
                        "attached_during_isolation": true,
                    })),
                }
            }
            if late.is_empty() {
                break;
            }
            interfaces = late;
            before = after;
        }
        // The isolation group itself must still have no rules: one added since (by a person,
        // by the attacker) would open every interface in it.
        let group_rules = if ctx.mode == crate::journal::Mode::Live {
            match group_rule_count(ctx, &isolation).await {
                Ok(count) => count,
                Err(error) => return Err(partial(error, &report, changed)),
            }
        } else {
            0
        };
        let open = ids_where(&report, |r| r["state"] == "OPEN");
        let not_isolated = ids_where(&report, |r| {
            r["state"] != "isolated" || r["verified"] == false
        });
        let tracked = ids_where(&report, |r| r["tracked_flows_may_survive"] == true);
        let mut outputs = outputs(self, vpc, &isolation, untrack.as_deref(), report, changed);
        outputs["open"] = json!(open);
        outputs["tracked_flows_may_survive"] = json!(tracked);
        if group_rules > 0 {
            return Err(ActionError::Failed(format!(
                "the isolation group {isolation} has {group_rules} rule(s): interfaces in it are \
                 not cut off. Remove its rules (or delete it; firebreak makes a new one)"
            ))
            .with_outputs(outputs));
        }
        if not_isolated.is_empty() {
            return Ok(outputs);
        }
        let message = if open.is_empty() {
            format!(
                "isolation of {id} failed; NOT isolated: {} (back in their original groups, no \
                 more exposed than before)",
                not_isolated.join(", ")
            )
        } else {
            format!(
                "isolation of {id} failed and left {} OPEN: in the all-traffic untrack group, \
                 reachable from anywhere; move them to {isolation} or their original groups by \
                 hand now. NOT isolated: {}",
                open.join(", "),
                not_isolated.join(", ")
            )
        };
        Err(ActionError::Failed(message).with_outputs(outputs))
    }
}

fn ids_where(report: &[Value], keep: impl Fn(&Value) -> bool) -> Vec<String> {
    report
        .iter()
        .filter(|r| keep(r))
        .filter_map(|r| r["network_interface_id"].as_str().map(str::to_owned))
        .collect()
}

fn outputs(
    input: &IsolateInstance,
    vpc: &str,
    isolation: &str,
    untrack: Option<&str>,
    interfaces: Vec<Value>,
    changed: bool,
) -> Value {
    json!({
        "instance_id": input.instance_id,
        "vpc_id": vpc,
        "strategy": input.strategy,
        "isolation_group": isolation,
        "untrack_group": untrack,
        "interfaces": interfaces,
        "changed": changed,
    })
}
