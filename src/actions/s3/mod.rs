//! S3 bucket exposure: evidence first (`inventory_bucket`: every setting, hashed), then the
//! containment moves, each changing one or two settings and recording them `before` and
//! `after`, and the release that puts `before` back from a verified journal. S3 has no
//! `DryRun`: every change goes through [`StepContext::change`], which in a drill journals what
//! would be sent and sends nothing. Every call names the account that must own the bucket.

mod contain;
mod inventory;
mod release;
mod settings;

pub use contain::{BlockPublicAccess, EnforceBucketOwner, RestrictBucketPolicy, TagBucket};
pub use inventory::InventoryBucket;
pub use release::ReleaseBucket;

use super::{ActionError, StepContext};
use crate::actions::grants::ScopeField;

/// The bucket an action acts on comes from its `bucket` input.
pub const BUCKET_SCOPE: &[ScopeField] = &[ScopeField {
    placeholder: "bucket",
    field: "bucket",
    default: "*",
}];

/// The bucket of an input, with the owner it must have (empty: not checked).
fn bucket(name: &str, owner: Option<&str>) -> Result<settings::Bucket, ActionError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ActionError::Input("`bucket` is empty".into()));
    }
    Ok(settings::Bucket {
        name: name.to_owned(),
        owner: owner
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned),
    })
}

/// Sets one setting to `desired` unless it already is; `(before, sent)`.
async fn apply(
    ctx: &StepContext,
    bucket: &settings::Bucket,
    setting: settings::Setting,
    desired: &serde_json::Value,
) -> Result<(serde_json::Value, bool), ActionError> {
    let before = settings::read(ctx, bucket, setting).await?;
    if settings::same(setting, &before, desired) {
        return Ok((before, false));
    }
    let sent = settings::write(ctx, bucket, setting, desired).await?;
    Ok((before, sent))
}
