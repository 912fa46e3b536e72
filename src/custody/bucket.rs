//! Is a bucket fit to hold evidence: owned by the expected account, Object Lock on, and a
//! default retention in COMPLIANCE mode at least as long as the operator asks. Checked before
//! the first upload; GOVERNANCE mode is refused (a privileged role can lift it).

use aws_sdk_s3::types::{ObjectLockEnabled, ObjectLockRetentionMode};

use super::store::Store;
use crate::aws::error::AwsError;

/// The bucket's default retention, as checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub days: u32,
}

/// Checks the bucket's owner and Object Lock configuration.
pub async fn check(store: &Store, min_retention_days: u32) -> Result<Retention, String> {
    let bucket = &store.bucket;
    let answer = store
        .s3
        .get_object_lock_configuration()
        .bucket(bucket)
        .expected_bucket_owner(&store.owner)
        .send()
        .await
        .map_err(|e| {
            let error = AwsError::from_sdk("s3", "GetObjectLockConfiguration", e);
            match error.code.as_deref() {
                Some("ObjectLockConfigurationNotFoundError") => format!(
                    "bucket {bucket} has no Object Lock: evidence there could be deleted; create \
                     it with deploy/evidence.yaml"
                ),
                Some("AccessDenied") | Some("403") => format!(
                    "bucket {bucket} is not owned by account {} (or its Object Lock \
                     configuration may not be read): {error}",
                    store.owner
                ),
                _ => format!("bucket {bucket}: {error}"),
            }
        })?;
    let configuration = answer
        .object_lock_configuration()
        .ok_or_else(|| format!("bucket {bucket} has no Object Lock configuration"))?;
    if configuration.object_lock_enabled() != Some(&ObjectLockEnabled::Enabled) {
        return Err(format!("bucket {bucket} does not have Object Lock enabled"));
    }
    let retention = configuration
        .rule()
        .and_then(|rule| rule.default_retention())
        .ok_or_else(|| {
            format!(
                "bucket {bucket} has Object Lock but no default retention: objects would be \
                 written unprotected"
            )
        })?;
    if retention.mode() != Some(&ObjectLockRetentionMode::Compliance) {
        return Err(format!(
            "bucket {bucket}'s default retention is {} mode, not COMPLIANCE: a privileged role \
             could delete evidence",
            retention.mode().map_or("no", |m| m.as_str())
        ));
    }
    let days = retention.days().unwrap_or(0).max(0) as u32
        + retention.years().unwrap_or(0).max(0) as u32 * 365;
    if days < min_retention_days {
        return Err(format!(
            "bucket {bucket} retains objects for {days} days; at least {min_retention_days} were \
             asked for (--seal-retention-days)"
        ));
    }
    Ok(Retention { days })
}
