//! `ec2.share_snapshots`: hand the case's snapshots to the forensic account.

use aws_sdk_ec2::types::{
    CreateVolumePermission, CreateVolumePermissionModifications, Filter, ResourceType,
    SnapshotAttributeName, TagSpecification,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ActionError, new_tag, provenance_tags, tags};
use crate::actions::grants::{Grant, arn, condition};
use crate::actions::{Action, Execute};
use crate::actions::{StepContext, reconcile};

/// Share snapshots with a forensic account (createVolumePermission), or copy them re-encrypted
/// with a given KMS key (the copy is what gets shared when the originals use the default key).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareSnapshots {
    pub snapshot_ids: Vec<String>,
    /// The 12-digit account to share with (createVolumePermission).
    #[serde(default)]
    pub account_id: Option<String>,
    /// Copy each snapshot encrypted with this KMS key (ARN or id) instead of sharing in place.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub case_id: Option<String>,
}

impl Action for ShareSnapshots {
    const NAME: &'static str = "ec2.share_snapshots";
    const SUMMARY: &'static str =
        "share snapshots with a forensic account, or copy them re-encrypted with a KMS key";
    const CALLS: &'static [&'static str] = &[
        "ec2:DescribeSnapshotAttribute",
        "ec2:ModifySnapshotAttribute",
        "ec2:DescribeSnapshots",
        "ec2:CopySnapshot",
    ];
    const PERMISSIONS: &'static [&'static str] = &[
        "ec2:DescribeSnapshotAttribute",
        "ec2:ModifySnapshotAttribute",
        "ec2:DescribeSnapshots",
        "ec2:CopySnapshot",
        "ec2:CreateTags",
        "kms:CreateGrant",
        "kms:DescribeKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
    ];
    const GRANTS: &'static [Grant] = &[
        Grant::on(&["ec2:DescribeSnapshotAttribute"], &[arn::SNAPSHOT]),
        // Only the case's snapshots are shared or copied.
        Grant::when(
            &["ec2:ModifySnapshotAttribute"],
            &[arn::SNAPSHOT],
            condition::RESOURCE_TAG_CASE,
        ),
        Grant::when(
            &["ec2:CopySnapshot"],
            &[arn::SNAPSHOT],
            condition::REQUEST_TAG_CASE,
        ),
        Grant::on(&["ec2:CreateTags"], arn::EC2_TAGGABLE),
        Grant::when(
            &[
                "kms:CreateGrant",
                "kms:DescribeKey",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
            ],
            &[arn::KMS_KEY],
            condition::KMS_VIA_EC2,
        ),
    ];
}

impl Execute for ShareSnapshots {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        if self.account_id.is_none() && self.kms_key_id.is_none() {
            return Err(ActionError::Failed(
                "give `account_id` (share) or `kms_key_id` (copy), or both".into(),
            ));
        }
        if let Some(account) = &self.account_id
            && !(account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(ActionError::Failed(format!(
                "`account_id` must be 12 digits, got `{account}`"
            )));
        }
        let mut results = Vec::new();
        let mut changed = false;
        for snapshot in &self.snapshot_ids {
            // Copy first (when asked), then share what was produced.
            let (target, copied) = match &self.kms_key_id {
                Some(key) => {
                    let (copy, made) =
                        copy_snapshot(ctx, snapshot, key, self.case_id.as_deref()).await?;
                    changed |= made;
                    (copy, Some(made))
                }
                None => (snapshot.clone(), None),
            };
            let mut shared_with = None;
            if let Some(account) = &self.account_id {
                changed |= share(ctx, &target, account).await?;
                shared_with = Some(account.clone());
            }
            results.push(json!({
                "source_snapshot_id": snapshot,
                "snapshot_id": target,
                "copied": copied,
                "shared_with": shared_with,
            }));
        }
        let ids: Vec<Value> = results.iter().map(|r| r["snapshot_id"].clone()).collect();
        Ok(json!({"snapshots": results, "snapshot_ids": ids, "changed": changed}))
    }
}

/// Adds the account to createVolumePermission unless it is there already.
async fn share(ctx: &StepContext, snapshot: &str, account: &str) -> Result<bool, ActionError> {
    if snapshot.starts_with('<') {
        return Ok(false); // a drill placeholder: nothing to share yet
    }
    let current = ctx
        .call("ec2", "DescribeSnapshotAttribute", &[snapshot], || {
            ctx.clients()
                .ec2
                .describe_snapshot_attribute()
                .snapshot_id(snapshot)
                .attribute(SnapshotAttributeName::CreateVolumePermission)
                .send()
        })
        .await?;
    if current
        .create_volume_permissions()
        .iter()
        .any(|p| p.user_id() == Some(account))
    {
        return Ok(false);
    }
    ctx.ec2_change("ModifySnapshotAttribute", &[snapshot, account], |dry_run| {
        ctx.clients()
            .ec2
            .modify_snapshot_attribute()
            .dry_run(dry_run)
            .snapshot_id(snapshot)
            .attribute(SnapshotAttributeName::CreateVolumePermission)
            .create_volume_permission(
                CreateVolumePermissionModifications::builder()
                    .add(CreateVolumePermission::builder().user_id(account).build())
                    .build(),
            )
            .send()
    })
    .await?;
    Ok(true)
}

/// The re-encrypted copy of `snapshot` this step made (found by tag), or a new one. CopySnapshot
/// takes no client token: a copy whose answer was lost is looked for before copying again.
async fn copy_snapshot(
    ctx: &StepContext,
    snapshot: &str,
    key: &str,
    case: Option<&str>,
) -> Result<(String, bool), ActionError> {
    if let Some(copy) = own_copy(ctx, snapshot).await? {
        return Ok((copy, false));
    }
    let mut copy_tags = provenance_tags(ctx, case);
    copy_tags.push(new_tag(tags::SOURCE_SNAPSHOT, snapshot));
    let region = ctx
        .clients()
        .ec2
        .config()
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let send = || async {
        let copied = ctx
            .ec2_change("CopySnapshot", &[snapshot], |dry_run| {
                ctx.clients()
                    .ec2
                    .copy_snapshot()
                    .dry_run(dry_run)
                    .source_snapshot_id(snapshot)
                    .source_region(&region)
                    .encrypted(true)
                    .kms_key_id(key)
                    .description(format!(
                        "firebreak copy of {snapshot} for case {}",
                        case.unwrap_or("-")
                    ))
                    .tag_specifications(
                        TagSpecification::builder()
                            .resource_type(ResourceType::Snapshot)
                            .set_tags(Some(copy_tags.clone()))
                            .build(),
                    )
                    .customize()
                    .config_override(reconcile::ec2_once())
                    .send()
            })
            .await?;
        Ok(match copied {
            Some(output) => (output.snapshot_id().unwrap_or_default().to_owned(), true),
            None => (format!("<would be copied by step {}>", ctx.step_id), false),
        })
    };
    // A copy found after a lost answer was made by this step: `true`.
    let found = || async { Ok(own_copy(ctx, snapshot).await?.map(|copy| (copy, true))) };
    reconcile::until_done(send, found).await
}

/// The copy of `snapshot` this step made, by its idempotency and source-snapshot tags.
async fn own_copy(ctx: &StepContext, snapshot: &str) -> Result<Option<String>, ActionError> {
    let existing = ctx
        .call("ec2", "DescribeSnapshots", &[snapshot], || {
            ctx.clients()
                .ec2
                .describe_snapshots()
                .filters(
                    Filter::builder()
                        .name(format!("tag:{}", tags::IDEMPOTENCY_KEY))
                        .values(&ctx.idempotency_key)
                        .build(),
                )
                .filters(
                    Filter::builder()
                        .name("tag:firebreak:source-snapshot")
                        .values(snapshot)
                        .build(),
                )
                .send()
        })
        .await?;
    Ok(existing
        .snapshots()
        .first()
        .and_then(|s| s.snapshot_id())
        .map(str::to_owned))
}
