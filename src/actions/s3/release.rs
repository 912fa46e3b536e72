//! `s3.release_bucket`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::contain::{BlockPublicAccess, EnforceBucketOwner, RestrictBucketPolicy, TagBucket};
use super::settings::{self, ALL};
use super::{ActionError, BUCKET_SCOPE, bucket};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, ScopeField, arn};
use crate::actions::prior::{
    Settings, Standing, before_and_after, changed_since, drift, recorded_outputs,
};
use crate::actions::{Action, Execute};

/// Put back the bucket settings a containing run changed, as its verified journal recorded them before: public access block, ownership, ACL, policy, tags (a setting the bucket did not have is deleted, not set). Settings the run did not change are not touched. Refuses, changing nothing, when a setting is no longer as the containment left it (someone changed it since) unless `force`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBucket {
    /// The journal of the run that contained the bucket (verified before it is read).
    pub journal: String,
    pub bucket: String,
    /// The account that must own the bucket (e.g. `{{run.account}}`). Empty: not checked.
    #[serde(default)]
    pub expected_owner: Option<String>,
    /// Restore even settings changed since the containment (their current value is recorded).
    #[serde(default)]
    pub force: bool,
}

impl Action for ReleaseBucket {
    const NAME: &'static str = "s3.release_bucket";
    const SUMMARY: &'static str = "put back the bucket settings a containing run changed, from its verified journal; refuses settings changed since unless forced";
    const CALLS: &'static [&'static str] = &[
        "s3:GetBucketTagging",
        "s3:PutBucketTagging",
        "s3:DeleteBucketTagging",
        "s3:GetPublicAccessBlock",
        "s3:PutPublicAccessBlock",
        "s3:DeletePublicAccessBlock",
        "s3:GetBucketOwnershipControls",
        "s3:PutBucketOwnershipControls",
        "s3:DeleteBucketOwnershipControls",
        "s3:GetBucketAcl",
        "s3:PutBucketAcl",
        "s3:GetBucketPolicy",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
    ];
    const PERMISSIONS: &'static [&'static str] = &[
        "s3:GetBucketTagging",
        "s3:PutBucketTagging",
        "s3:GetBucketPublicAccessBlock",
        "s3:PutBucketPublicAccessBlock",
        "s3:GetBucketOwnershipControls",
        "s3:PutBucketOwnershipControls",
        "s3:GetBucketAcl",
        "s3:PutBucketAcl",
        "s3:GetBucketPolicy",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
    ];
    const GRANTS: &'static [Grant] = &[Grant::on(Self::PERMISSIONS, &[arn::S3_BUCKET])];
    const SCOPE: &'static [ScopeField] = BUCKET_SCOPE;
}

impl Execute for ReleaseBucket {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let bucket = bucket(&self.bucket, self.expected_owner.as_deref())?;
        let (prior, left) = recorded(&self.journal, &bucket.name, ctx.journal_key())?;
        // Read everything first: a drifted setting refuses the release before any change.
        let mut plan = Vec::new();
        let mut drifted = Vec::new();
        for setting in ALL {
            let key = setting.key();
            let (Some(before), Some(after)) = (prior.get(key), left.get(key)) else {
                continue;
            };
            let same = |a: &Value, b: &Value| settings::same(*setting, a, b);
            if same(before, after) {
                continue; // the containment did not change it
            }
            let live = settings::read(ctx, &bucket, *setting).await?;
            let standing = Standing::of(&live, before, after, same);
            if standing == Standing::ChangedSince {
                drifted.push(drift(key, after, &live, before));
            }
            plan.push((*setting, before.clone(), live, standing));
        }
        if !drifted.is_empty() && !self.force {
            return Err(changed_since(&format!("bucket {}", bucket.name), drifted));
        }
        let mut restored = Vec::new();
        for (setting, before, live, standing) in plan {
            let sent = if standing == Standing::AlreadyRestored {
                false
            } else {
                settings::write(ctx, &bucket, setting, &before)
                    .await
                    .map_err(|e| e.with_outputs(json!({ "restored": restored })))?
            };
            restored.push(json!({
                "setting": setting.key(),
                "state": standing.as_str(),
                "was": live,
                "restored_to": before,
                "changed": sent,
            }));
        }
        let changed = restored.iter().any(|r| r["changed"] == true);
        Ok(json!({
            "bucket": bucket.name,
            "restored": restored,
            "drifted": drifted,
            "changed": changed,
        }))
    }
}

/// For each setting the containing run's moves recorded on `bucket`: its value before the
/// first move that touched it, and after the last.
fn recorded(
    path: &str,
    bucket: &str,
    key: Option<&[u8]>,
) -> Result<(Settings, Settings), ActionError> {
    let mut outputs = Vec::new();
    for action in [
        BlockPublicAccess::NAME,
        EnforceBucketOwner::NAME,
        RestrictBucketPolicy::NAME,
        TagBucket::NAME,
    ] {
        outputs.extend(recorded_outputs(path, action, None, key)?);
    }
    let (prior, left) = before_and_after(outputs.iter().filter(|o| o["bucket"] == bucket));
    if prior.is_empty() {
        return Err(ActionError::Failed(format!(
            "journal {path} records no containment of bucket {bucket}; nothing to release"
        )));
    }
    Ok((prior, left))
}
