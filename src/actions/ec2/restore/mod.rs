//! `ec2.restore_instance`: everything a containing run changed on an instance, other than its
//! security groups (`ec2.release_isolation`) and the credential deny on its role
//! (`iam.release_instance_credentials`), put back as the run's verified journal recorded it:
//! metadata options, instance profile, Elastic IPs, termination protection and the rest of
//! what preservation changed, Auto Scaling membership, load balancer registrations, and
//! firebreak's tags (snapshots keep theirs: they are evidence).
//!
//! Each piece is first planned — its recorded value before the containment, the value the
//! containment left, the value now — and only when no piece changed since (or with `force`)
//! is anything restored; what was done is journaled piece by piece.

mod addresses;
mod autoscaling;
mod metadata;
mod profile;
mod protection;
mod tags;
mod targets;

use std::sync::Arc;

use futures_util::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ActionError;
use crate::actions::grants::{Grant, arn, condition};
use crate::actions::prior::{Recorded, Standing, changed_since, drift};
use crate::actions::{Action, Execute, StepContext};

/// One thing to put back.
pub(crate) struct Piece {
    pub name: String,
    pub standing: Standing,
    /// What the containment left it at.
    pub left: Value,
    pub now: Value,
    pub restore_to: Value,
    pub op: Op,
}

/// How a piece is put back.
pub(crate) enum Op {
    Metadata(metadata::Wanted),
    Profile(profile::Wanted),
    Address(Value),
    Protection(protection::Wanted),
    Group(autoscaling::Wanted),
    Target(Value),
    Untag(tags::Wanted),
    /// Cannot be put back yet (a load balancer refuses a stopped instance): said, not done.
    Deferred(String),
}

/// Put back what a containing run changed on an instance (other than its security groups and the credential deny), from its verified journal: metadata options, instance profile, Elastic IPs, termination protection, shutdown behaviour and volumes' delete-on-termination, Auto Scaling membership (attach or exit standby), load balancer registrations, firebreak's tags. Refuses, changing nothing, when a piece is no longer as the containment left it unless `force`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreInstance {
    /// The journal of the run that contained the instance (verified before it is read).
    pub journal: String,
    pub instance_id: String,
    /// Every instance this run releases (the runbook's list). If the journal contained one of
    /// them not at all — a mistyped id — or a piece of one changed since the containment,
    /// every item refuses before changing anything: the others must not be half released
    /// (their network is released only by a later step).
    #[serde(default)]
    pub instance_ids: Vec<String>,
    /// Restore even pieces changed since the containment.
    #[serde(default)]
    pub force: bool,
}

impl Action for RestoreInstance {
    const NAME: &'static str = "ec2.restore_instance";
    const SUMMARY: &'static str = "put back an instance's metadata options, profile, Elastic IPs, protection, Auto Scaling membership, load balancer registrations and firebreak tags, from the containing run's verified journal";
    const CALLS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:ModifyInstanceMetadataOptions",
        "ec2:DescribeIamInstanceProfileAssociations",
        "ec2:ReplaceIamInstanceProfileAssociation",
        "ec2:AssociateIamInstanceProfile",
        "ec2:DeleteTags",
        "ec2:DescribeTags",
        "ec2:DescribeAddresses",
        "ec2:AssociateAddress",
        "ec2:DescribeInstanceAttribute",
        "ec2:ModifyInstanceAttribute",
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:AttachInstances",
        "autoscaling:ExitStandby",
        "autoscaling:SetInstanceProtection",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:RegisterTargets",
    ];
    const PERMISSIONS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:ModifyInstanceMetadataOptions",
        "ec2:DescribeIamInstanceProfileAssociations",
        "ec2:ReplaceIamInstanceProfileAssociation",
        "ec2:AssociateIamInstanceProfile",
        "ec2:DeleteTags",
        "ec2:DescribeTags",
        "ec2:DescribeAddresses",
        "ec2:AssociateAddress",
        "ec2:DescribeInstanceAttribute",
        "ec2:ModifyInstanceAttribute",
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:AttachInstances",
        "autoscaling:ExitStandby",
        "autoscaling:SetInstanceProtection",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:RegisterTargets",
        // Giving the instance its own profile back passes that profile's role to EC2.
        "iam:PassRole",
    ];
    const GRANTS: &'static [Grant] = &[
        Grant::on(
            &[
                "ec2:ModifyInstanceMetadataOptions",
                "ec2:ModifyInstanceAttribute",
            ],
            &[arn::INSTANCE],
        ),
        // A role goes back only onto an instance under a case (the containment tagged it; the
        // tags come off after the profile is back), so the broad PassRole below cannot put any
        // role on any instance.
        Grant::when(
            &[
                "ec2:ReplaceIamInstanceProfileAssociation",
                "ec2:AssociateIamInstanceProfile",
            ],
            &[arn::INSTANCE],
            condition::RESOURCE_TAG_CASE,
        ),
        Grant::on(&["ec2:DeleteTags"], arn::EC2_TAGGABLE),
        Grant::on(
            &["ec2:AssociateAddress"],
            &[arn::ELASTIC_IP, arn::NETWORK_INTERFACE, arn::INSTANCE],
        ),
        Grant::on(
            &[
                "autoscaling:AttachInstances",
                "autoscaling:ExitStandby",
                "autoscaling:SetInstanceProtection",
            ],
            &[arn::AUTO_SCALING_GROUP],
        ),
        Grant::on(
            &["elasticloadbalancing:RegisterTargets"],
            &[arn::TARGET_GROUP],
        ),
        Grant::when(
            &["iam:PassRole"],
            &[arn::ANY_ROLE],
            condition::PASSED_TO_EC2,
        ),
    ];
}

impl Execute for RestoreInstance {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let id = self.instance_id.as_str();
        // Verified and read once for every instance the run releases.
        let recorded = Recorded::once(ctx, &self.journal).await?;
        let strangers = strangers(ctx, &recorded, &self.journal, &self.instance_ids).await?;
        if !strangers.is_empty() {
            return Err(ActionError::Input(format!(
                "journal {} records no containment of instance {} (named in instance_ids); \
                 nothing was restored, of {id} or any other",
                self.journal,
                strangers.join(", ")
            )));
        }
        if !contained(&recorded, id) {
            return Err(ActionError::Input(format!(
                "journal {} records no containment of instance {id}; nothing was restored",
                self.journal
            )));
        }
        // Planned afresh by each item (and each attempt): a plan says which association or
        // registration to change, and is stale once part of it was applied.
        let pieces = plan(ctx, &recorded, id).await?;
        let drifted = drifted(&pieces);
        if !drifted.is_empty() && !self.force {
            return Err(changed_since(&format!("instance {id}"), drifted));
        }
        // Another named instance changed since: refused with it, as for a stranger, so this
        // one is not left half released (its network comes back only in a later step).
        let elsewhere: Vec<String> = if self.force {
            Vec::new()
        } else {
            drifted_instances(ctx, &recorded, &self.journal, &self.instance_ids)
                .await?
                .iter()
                .filter(|other| *other != id)
                .cloned()
                .collect()
        };
        if !elsewhere.is_empty() {
            return Err(ActionError::Refused(format!(
                "instance {} (named in instance_ids) changed since the containment (see its \
                 item's outputs.drifted); nothing was restored, of {id} or any other. Look at \
                 who changed it; release it with force: true, or the others without it",
                elsewhere.join(", ")
            )));
        }
        let mut restored = Vec::new();
        for piece in &pieces {
            let sent = if piece.standing == Standing::AlreadyRestored {
                false
            } else {
                apply(ctx, id, &piece.op).await.map_err(|e| {
                    e.with_outputs(json!({ "instance_id": id, "restored": restored }))
                })?
            };
            let state = match &piece.op {
                Op::Deferred(why) => format!("deferred: {why}"),
                _ => piece.standing.as_str().to_owned(),
            };
            restored.push(json!({
                "setting": piece.name,
                "state": state,
                "was": piece.now,
                "restored_to": piece.restore_to,
                "changed": sent,
            }));
        }
        let changed = restored.iter().any(|r| r["changed"] == true);
        Ok(
            json!({ "instance_id": id, "restored": restored, "drifted": drifted, "changed": changed }),
        )
    }
}

/// The named instances with a piece changed since the containment, worked out once for all
/// the step's items before any of them changes anything (read up to ten instances at a
/// time): one drift refuses every item, as a stranger does. Sorted.
async fn drifted_instances(
    ctx: &StepContext,
    recorded: &Recorded,
    journal: &str,
    named: &[String],
) -> Result<Arc<Vec<String>>, ActionError> {
    if named.is_empty() {
        return Ok(Arc::default());
    }
    let key = format!("release-drift:{journal}:{}", named.join(","));
    ctx.once(&key, || async {
        // Owned ids: a closure over borrowed ones is not general enough for a Send future.
        let reads = named.iter().cloned().map(|other| async move {
            let pieces = plan(ctx, recorded, &other).await?;
            Ok::<_, ActionError>((!drifted(&pieces).is_empty()).then_some(other))
        });
        let planned: Vec<Result<Option<String>, ActionError>> = futures_util::stream::iter(reads)
            .buffer_unordered(10)
            .collect()
            .await;
        let mut drifted = Vec::new();
        for instance in planned {
            drifted.extend(instance?);
        }
        drifted.sort();
        drifted.dedup();
        Ok(Arc::new(drifted))
    })
    .await
}

/// Every piece of instance `id` the journal recorded a change of: its recorded value, what
/// the containment left, and what it is now.
async fn plan(ctx: &StepContext, recorded: &Recorded, id: &str) -> Result<Vec<Piece>, ActionError> {
    let of = |action: &str| recorded.changes(action, |o| o["instance_id"] == id);
    let metadata_moves = of(<super::DisableMetadata as Action>::NAME);
    let profile_moves = of(<super::ReplaceInstanceProfile as Action>::NAME);
    let address_moves = of(<super::DisassociateAddresses as Action>::NAME);
    let protection_moves = of(<super::ProtectInstance as Action>::NAME);
    let group_moves = of(<super::DetachFromAutoscaling as Action>::NAME);
    let target_moves = of(<crate::actions::elbv2::DeregisterTargets as Action>::NAME);
    let mut mine = instance_resources(recorded, id);
    if !mine.iter().any(|m| m == id) {
        mine.push(id.to_owned());
    }
    let mut pieces = Vec::new();
    pieces.extend(metadata::plan(ctx, id, &metadata_moves).await?);
    pieces.extend(profile::plan(ctx, id, &profile_moves).await?);
    pieces.extend(addresses::plan(ctx, &address_moves).await?);
    pieces.extend(protection::plan(ctx, id, &protection_moves).await?);
    pieces.extend(autoscaling::plan(ctx, id, &group_moves).await?);
    pieces.extend(targets::plan(ctx, id, &target_moves).await?);
    // Tag steps name many resources (a fleet's, every instance): only this instance's own
    // come back here, so releasing one instance leaves the others' case tags in place.
    let tagged = recorded.outputs(<super::TagResources as Action>::NAME, None);
    pieces.extend(tags::plan(ctx, &tagged, &mine).await?);
    Ok(pieces)
}

/// The pieces changed since the containment, as `outputs.drifted` reports them.
fn drifted(pieces: &[Piece]) -> Vec<Value> {
    pieces
        .iter()
        .filter(|p| p.standing == Standing::ChangedSince)
        .map(|p| drift(&p.name, &p.left, &p.now, &p.restore_to))
        .collect()
}

/// The named instances the journal contained nothing of; worked out once for the run's items.
async fn strangers(
    ctx: &StepContext,
    recorded: &Recorded,
    journal: &str,
    named: &[String],
) -> Result<Vec<String>, ActionError> {
    if named.is_empty() {
        return Ok(Vec::new());
    }
    let key = format!("release-strangers:{journal}:{}", named.join(","));
    ctx.once(&key, || async {
        Ok(named
            .iter()
            .filter(|id| !contained(recorded, id))
            .cloned()
            .collect::<Vec<String>>())
    })
    .await
}

/// Whether the journal recorded anything of the instance: a describe, an isolation, or a
/// change of any piece this action puts back.
fn contained(recorded: &Recorded, id: &str) -> bool {
    !instance_resources(recorded, id).is_empty()
        || CHANGING.iter().any(|action| {
            !recorded
                .changes(action, |o| o["instance_id"] == id)
                .is_empty()
        })
}

/// The actions whose changes this action puts back.
const CHANGING: [&str; 6] = [
    <super::DisableMetadata as Action>::NAME,
    <super::ReplaceInstanceProfile as Action>::NAME,
    <super::DisassociateAddresses as Action>::NAME,
    <super::ProtectInstance as Action>::NAME,
    <super::DetachFromAutoscaling as Action>::NAME,
    <crate::actions::elbv2::DeregisterTargets as Action>::NAME,
];

/// The resources the journal knows as this instance's: the instance itself and the interfaces
/// and volumes its describe and isolation steps recorded (a fleet's describe lists them under
/// `instances`). Empty when the run never described or isolated the instance.
fn instance_resources(recorded: &Recorded, id: &str) -> Vec<String> {
    let mut mine: Vec<String> = Vec::new();
    let mut add = |resource: &str| {
        if !mine.iter().any(|m| m == resource) {
            mine.push(resource.to_owned());
        }
    };
    let described = recorded.outputs(<super::DescribeInstance as Action>::NAME, None);
    for out in &described {
        let facts = if out["instance_id"] == id {
            out
        } else {
            &out["instances"][id]
        };
        if facts.is_null() {
            continue;
        }
        add(id);
        for field in ["network_interface_ids", "volume_ids"] {
            for resource in facts[field].as_array().into_iter().flatten() {
                if let Some(resource) = resource.as_str() {
                    add(resource);
                }
            }
        }
    }
    let isolated = recorded.outputs(<super::IsolateInstance as Action>::NAME, None);
    for out in isolated.iter().filter(|o| o["instance_id"] == id) {
        add(id);
        for eni in out["interfaces"].as_array().into_iter().flatten() {
            if let Some(resource) = eni["network_interface_id"].as_str() {
                add(resource);
            }
        }
    }
    mine
}

async fn apply(ctx: &StepContext, id: &str, op: &Op) -> Result<bool, ActionError> {
    match op {
        Op::Metadata(wanted) => metadata::apply(ctx, id, wanted).await,
        Op::Profile(wanted) => profile::apply(ctx, id, wanted).await,
        Op::Address(address) => addresses::apply(ctx, address).await,
        Op::Protection(wanted) => protection::apply(ctx, id, wanted).await,
        Op::Group(wanted) => autoscaling::apply(ctx, id, wanted).await,
        Op::Target(registration) => crate::actions::elbv2::register(ctx, id, registration).await,
        Op::Untag(wanted) => tags::apply(ctx, wanted).await,
        Op::Deferred(_) => Ok(false),
    }
}
