//! `ec2.attach_evidence_volumes`: evidence disks on the forensic workstation.

use std::time::Duration;

use aws_sdk_ec2::types::{Filter, ResourceType, TagSpecification, VolumeState};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ActionError, new_tag, poll_delay, provenance_tags, tags};
use crate::actions::grants::{Grant, arn, condition};
use crate::actions::{Action, Execute};
use crate::actions::{StepContext, reconcile};

/// Create a volume from each snapshot in the clean room's AZ (tagged with the case) and attach
/// it to the forensic workstation. Mount them read-only (`-o ro,noload` for ext4,
/// `ro,norecovery` for xfs); the snapshots stay the evidence of record.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachEvidenceVolumes {
    pub snapshot_ids: Vec<String>,
    /// The workstation's availability zone (the clean room's `AvailabilityZone` output).
    pub availability_zone: String,
    /// The forensic workstation.
    pub instance_id: String,
    pub case_id: String,
    /// Devices are assigned from this letter on: `/dev/sdf`, `/dev/sdg`, …
    #[serde(default = "default_first_device")]
    pub first_device: String,
}

fn default_first_device() -> String {
    "f".into()
}

impl Action for AttachEvidenceVolumes {
    const NAME: &'static str = "ec2.attach_evidence_volumes";
    const SUMMARY: &'static str = "create volumes from evidence snapshots in the clean room and attach them to the workstation";
    const CALLS: &'static [&'static str] = &[
        "ec2:DescribeVolumes",
        "ec2:CreateVolume",
        "ec2:AttachVolume",
    ];
    const PERMISSIONS: &'static [&'static str] = &[
        "ec2:DescribeVolumes",
        "ec2:CreateVolume",
        "ec2:AttachVolume",
        "ec2:CreateTags",
    ];
    const GRANTS: &'static [Grant] = &[
        Grant::when(
            &["ec2:CreateVolume"],
            &[arn::VOLUME, arn::SNAPSHOT],
            condition::REQUEST_TAG_CASE,
        ),
        Grant::on(&["ec2:AttachVolume"], &[arn::INSTANCE, arn::VOLUME]),
        Grant::on(&["ec2:CreateTags"], arn::EC2_TAGGABLE),
    ];
}

impl Execute for AttachEvidenceVolumes {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let first = self
            .first_device
            .chars()
            .next()
            .filter(|c| ('f'..='p').contains(c))
            .ok_or_else(|| {
                ActionError::Failed(format!(
                    "`first_device` must be a letter from f to p, got `{}`",
                    self.first_device
                ))
            })?;
        if self.snapshot_ids.len() > ('p' as usize - first as usize + 1) {
            return Err(ActionError::Failed(format!(
                "too many snapshots ({}) for devices /dev/sd{first}…/dev/sdp",
                self.snapshot_ids.len()
            )));
        }
        let mut volumes = Vec::new();
        let mut changed = false;
        for (index, snapshot) in self.snapshot_ids.iter().enumerate() {
            let device = format!("/dev/sd{}", (first as u8 + index as u8) as char);
            let outcome = self.one(ctx, snapshot, &device).await;
            match outcome {
                Ok((volume, made)) => {
                    changed |= made;
                    volumes.push(volume);
                }
                Err(error) => {
                    return Err(error.with_outputs(json!({"volumes": volumes, "changed": changed})));
                }
            }
        }
        let ids: Vec<Value> = volumes.iter().map(|v| v["volume_id"].clone()).collect();
        Ok(json!({
            "instance_id": self.instance_id,
            "volumes": volumes,
            "volume_ids": ids,
            "changed": changed,
            "read_only_use": "mount with -o ro,noload (ext4) or -o ro,norecovery (xfs); never fsck or write",
        }))
    }
}

/// The volume this step made from `snapshot`, by its idempotency tag.
async fn own_volume(
    ctx: &StepContext,
    snapshot: &str,
) -> Result<Option<aws_sdk_ec2::types::Volume>, ActionError> {
    let existing = ctx
        .call("ec2", "DescribeVolumes", &[snapshot], || {
            ctx.clients()
                .ec2
                .describe_volumes()
                .filters(
                    Filter::builder()
                        .name(format!("tag:{}", tags::IDEMPOTENCY_KEY))
                        .values(&ctx.idempotency_key)
                        .build(),
                )
                .filters(
                    Filter::builder()
                        .name("snapshot-id")
                        .values(snapshot)
                        .build(),
                )
                .send()
        })
        .await?;
    Ok(existing.volumes().first().cloned())
}

impl AttachEvidenceVolumes {
    async fn one(
        &self,
        ctx: &StepContext,
        snapshot: &str,
        device: &str,
    ) -> Result<(Value, bool), ActionError> {
        let mut changed = false;
        let volume = match own_volume(ctx, snapshot).await? {
            Some(volume) => volume,
            None => {
                let mut volume_tags = provenance_tags(ctx, Some(&self.case_id));
                volume_tags.push(new_tag(tags::SOURCE_SNAPSHOT, snapshot));
                volume_tags.push(new_tag(tags::EVIDENCE, "read-only"));
                // One token per step and snapshot, so EC2 makes one volume however often the
                // call is sent; and no SDK re-sends besides (an emulator may not honour the
                // token): after a lost answer the volume is looked for by tag first.
                let token = ctx.client_token_for(snapshot);
                let send = || async {
                    ctx.ec2_change("CreateVolume", &[snapshot], |dry_run| {
                        ctx.clients()
                            .ec2
                            .create_volume()
                            .dry_run(dry_run)
                            .client_token(&token)
                            .snapshot_id(snapshot)
                            .availability_zone(&self.availability_zone)
                            .tag_specifications(
                                TagSpecification::builder()
                                    .resource_type(ResourceType::Volume)
                                    .set_tags(Some(volume_tags.clone()))
                                    .build(),
                            )
                            .customize()
                            .config_override(reconcile::ec2_once())
                            .send()
                    })
                    .await
                    .map(|made| made.map(|v| v.volume_id().unwrap_or_default().to_owned()))
                };
                let found = || async {
                    Ok(own_volume(ctx, snapshot)
                        .await?
                        .map(|v| v.volume_id().map(str::to_owned)))
                };
                let Some(id) = reconcile::until_done(send, found).await? else {
                    return Ok((
                        json!({"snapshot_id": snapshot, "volume_id": format!("<would be created by step {}>", ctx.step_id), "device": device, "dry_run": true}),
                        false,
                    ));
                };
                changed = true;
                self.wait_state(ctx, &id, VolumeState::Available).await?
            }
        };
        let id = volume.volume_id().unwrap_or_default().to_owned();
        let attached = volume
            .attachments()
            .iter()
            .find(|a| a.instance_id() == Some(self.instance_id.as_str()));
        let device = match attached {
            Some(attachment) => attachment.device().unwrap_or(device).to_owned(),
            None => {
                // A second send fails once the first has worked (the volume is in use): after
                // a lost answer, an attachment to this instance is this call's.
                let send = || async {
                    ctx.ec2_change("AttachVolume", &[&id, &self.instance_id], |dry_run| {
                        ctx.clients()
                            .ec2
                            .attach_volume()
                            .dry_run(dry_run)
                            .volume_id(&id)
                            .instance_id(&self.instance_id)
                            .device(device)
                            .customize()
                            .config_override(reconcile::ec2_once())
                            .send()
                    })
                    .await
                    .map(|_| ())
                };
                let attached = || async {
                    let output = ctx
                        .call("ec2", "DescribeVolumes", &[&id], || {
                            ctx.clients().ec2.describe_volumes().volume_ids(&id).send()
                        })
                        .await?;
                    Ok(output
                        .volumes()
                        .iter()
                        .flat_map(|v| v.attachments())
                        .any(|a| a.instance_id() == Some(self.instance_id.as_str()))
                        .then_some(()))
                };
                reconcile::until_done(send, attached).await?;
                changed = true;
                self.wait_state(ctx, &id, VolumeState::InUse).await?;
                device.to_owned()
            }
        };
        Ok((
            json!({"snapshot_id": snapshot, "volume_id": id, "device": device, "created_or_attached": changed}),
            changed,
        ))
    }

    /// Polls the volume until it reaches `state` (the step timeout bounds the wait).
    async fn wait_state(
        &self,
        ctx: &StepContext,
        volume: &str,
        state: VolumeState,
    ) -> Result<aws_sdk_ec2::types::Volume, ActionError> {
        let mut round = 0u32;
        loop {
            let output = ctx
                .call("ec2", "DescribeVolumes", &[volume], || {
                    ctx.clients()
                        .ec2
                        .describe_volumes()
                        .volume_ids(volume)
                        .send()
                })
                .await?;
            if let Some(found) = output.volumes().first() {
                if found.state() == Some(&state) {
                    return Ok(found.clone());
                }
                if found.state() == Some(&VolumeState::Error) {
                    return Err(ActionError::Failed(format!(
                        "volume {volume} is in state error"
                    )));
                }
            }
            tokio::time::sleep(poll_delay(round).min(Duration::from_secs(10))).await;
            round += 1;
        }
    }
}
