//! `ssm.run_command`'s `uploads`: evidence that goes from the instance straight to the run's
//! seal through presigned PUT URLs (see `custody::presign`), then is read back — S3's
//! CRC64NVME of what arrived and its retention — and journaled as `sealed` (`collected`),
//! beside the SHA-256 the instance reported.

use std::time::Duration;

use aws_sdk_s3::types::ChecksumMode;
use serde_json::{Value, json};

use super::{ActionError, StepContext};
use crate::custody::presign;
use crate::custody::store::Head;
use crate::journal::Event;
use crate::journal::custody::{Sealed, SealedKind};

/// SigV4 presigned URLs live at most seven days.
const MAX_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Checks the names and presigns one URL per artifact; returns the shell lines to put before
/// the command body. `None` in a drill (nothing is sent, nothing presigned).
pub async fn prepare(
    ctx: &StepContext,
    instance_ids: &[String],
    names: &[String],
    execution_timeout_seconds: u32,
) -> Result<Option<Vec<String>>, ActionError> {
    if let Some(bad) = names.iter().find(|n| !valid_name(n)) {
        return Err(ActionError::Input(format!(
            "`uploads` name {bad:?} must be letters, digits, dots, dashes and underscores"
        )));
    }
    let [instance] = instance_ids else {
        return Err(ActionError::Input(
            "`uploads` needs exactly one instance in `instance_ids` (each instance gets its own \
             URLs): fan out with for_each"
                .into(),
        ));
    };
    if ctx.mode == crate::journal::Mode::DryRun {
        return Ok(None);
    }
    let Some(collection) = ctx.collection() else {
        return Err(ActionError::Input(
            "`uploads` go to the run's seal: run with --seal s3://BUCKET/PREFIX (a bucket that \
             passed its Object Lock check)"
                .into(),
        ));
    };
    let valid_for = (Duration::from_secs(u64::from(execution_timeout_seconds))
        + Duration::from_secs(300))
    .min(MAX_VALIDITY);
    let mut uploads = Vec::new();
    for name in names {
        let upload = collection
            .presign(&ctx.run_id, &ctx.step_id, instance, name, valid_for)
            .await
            .map_err(ActionError::Failed)?;
        // The URL lets its holder write that one object until it expires: never printed.
        ctx.add_secret(&upload.url);
        uploads.push(upload);
    }
    Ok(Some(presign::preamble(&uploads)))
}

/// Reads back every artifact the instance was to upload and journals what arrived. Missing
/// artifacts are named in the error.
pub async fn settle(
    ctx: &StepContext,
    instance: &str,
    names: &[String],
    stdout: &str,
) -> Result<Value, ActionError> {
    let Some(collection) = ctx.collection() else {
        return Ok(json!([]));
    };
    let reported = presign::reported(stdout);
    let mut arrived = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        let key = collection
            .target
            .collected_key(&ctx.run_id, &ctx.step_id, instance, name);
        let store = &collection.store;
        let head = ctx
            .call("s3", "HeadObject", &[instance], || {
                store
                    .s3
                    .head_object()
                    .bucket(&store.bucket)
                    .key(&key)
                    .expected_bucket_owner(&store.owner)
                    .checksum_mode(ChecksumMode::Enabled)
                    .send()
            })
            .await;
        let head = match head {
            Ok(head) => head,
            Err(error) if error.is_journal() => return Err(error),
            Err(error) => {
                missing.push(format!("{name} ({error})"));
                continue;
            }
        };
        let said = reported.iter().find(|(n, _, _)| n == name);
        let head = Head::of(&head);
        let sealed = Sealed {
            what: SealedKind::Collected,
            bucket: store.bucket.clone(),
            key: key.clone(),
            version_id: head.version_id,
            size: head.size,
            sha256: said.map(|(_, sha, _)| sha.clone()),
            checksum_crc64nvme: head.checksum_crc64nvme,
            retention_mode: head.retention_mode,
            retain_until: head.retain_until,
            records: None,
            head: None,
            path: None,
            step: Some(ctx.step_id.clone()),
            instance_id: Some(instance.to_owned()),
        };
        ctx.record(Event::Sealed(sealed.clone()))?;
        arrived.push(json!({
            "name": name, "key": key, "version_id": sealed.version_id, "size": sealed.size,
            "sha256_reported": sealed.sha256, "checksum_crc64nvme": sealed.checksum_crc64nvme,
            "retain_until": sealed.retain_until,
        }));
    }
    if missing.is_empty() {
        Ok(Value::Array(arrived))
    } else {
        Err(ActionError::Failed(format!(
            "evidence did not arrive in the seal: {}",
            missing.join(", ")
        ))
        .with_outputs(json!({"uploads": arrived})))
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}
