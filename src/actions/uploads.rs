//! `ssm.run_command`'s `uploads`: evidence that goes from the instance straight to the run's
//! seal through presigned URLs (see `custody::presign`) — one PUT per artifact, or the parts of
//! a multipart upload firebreak creates and completes (memory images, anything over 5 GB) —
//! then is read back — S3's CRC64NVME of what arrived and its retention — and journaled as
//! `sealed` (`collected`), beside the SHA-256 the instance reported.

use std::time::Duration;

use aws_sdk_s3::types::{ChecksumMode, CompletedMultipartUpload, CompletedPart};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ActionError, StepContext};
use crate::custody::presign::Collection;
use crate::custody::store::Head;
use crate::custody::upload_script::{self, Reported};
use crate::journal::Event;
use crate::journal::custody::{Sealed, SealedKind};

/// SigV4 presigned URLs live at most seven days.
const MAX_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);
/// Parts presigned at most: each adds ~70 bytes to the command SSM carries.
pub const MAX_PARTS: u64 = 200;
/// S3's bounds on a part (all but the last part at least 5 MiB, none over 5 GiB).
const PART_MIB: std::ops::RangeInclusive<u64> = 5..=5 * 1024;
/// The smallest default part: fewer, larger requests for small images.
const DEFAULT_MIN_PART_MIB: u64 = 64;

/// One artifact of `uploads`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    untagged,
    expecting = "an upload: a file name (one presigned PUT, up to 5 GB), or {name, max_size_gib, \
                 part_size_mib?} for a larger artifact such as a memory image (a multipart upload)"
)]
pub enum UploadSpec {
    /// One presigned PUT (up to 5 GB).
    Name(String),
    /// A multipart upload firebreak creates, presigns part by part, and completes.
    Parts(PartsSpec),
}

/// A large artifact's upload (a memory image): parts presigned for up to `max_size_gib`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PartsSpec {
    /// The artifact's name: the object key's last part, and `firebreak_upload`'s first argument.
    pub name: String,
    /// The largest the artifact may be, in GiB; enough parts are presigned for it (at most
    /// 200), and a larger file fails on the instance, saying so.
    pub max_size_gib: u64,
    /// Each part's size in MiB (5 to 5120). By default the smallest that covers
    /// `max_size_gib` in 200 parts, and at least 64. The instance's disk holds one part beside
    /// the artifact while it uploads.
    #[serde(default)]
    pub part_size_mib: Option<u64>,
}

impl UploadSpec {
    pub fn name(&self) -> &str {
        match self {
            UploadSpec::Name(name) => name,
            UploadSpec::Parts(parts) => &parts.name,
        }
    }
}

impl PartsSpec {
    /// The part size (MiB) and how many parts cover `max_size_gib`.
    pub fn plan(&self) -> Result<(u64, u64), String> {
        let name = &self.name;
        if self.max_size_gib == 0 {
            return Err(format!(
                "`uploads` {name:?}: max_size_gib must be at least 1"
            ));
        }
        let max_mib = self.max_size_gib.saturating_mul(1024);
        let part_mib = self
            .part_size_mib
            .unwrap_or_else(|| max_mib.div_ceil(MAX_PARTS).max(DEFAULT_MIN_PART_MIB));
        if !PART_MIB.contains(&part_mib) {
            return Err(format!(
                "`uploads` {name:?}: parts are 5 to 5120 MiB (S3's bounds), not {part_mib}"
            ));
        }
        let count = max_mib.div_ceil(part_mib);
        if count > MAX_PARTS {
            return Err(format!(
                "`uploads` {name:?}: {} GiB in parts of {part_mib} MiB is {count} parts; at most \
                 {MAX_PARTS} are presigned: raise part_size_mib (or leave it out) or lower \
                 max_size_gib",
                self.max_size_gib
            ));
        }
        Ok((part_mib, count))
    }
}

/// The names, with empty ones dropped: `["{{#if run.sealed}}x.tar.gz{{/if}}"]` uploads only
/// when sealed.
pub fn wanted(specs: &[UploadSpec]) -> Vec<UploadSpec> {
    specs
        .iter()
        .filter(|s| !s.name().is_empty())
        .cloned()
        .collect()
}

/// Checks the uploads, creates each multipart upload and presigns every URL; returns the shell
/// lines to put before the command body. `None` in a drill (nothing is sent, nothing created).
pub async fn prepare(
    ctx: &StepContext,
    instance_ids: &[String],
    specs: &[UploadSpec],
    execution_timeout_seconds: u32,
) -> Result<Option<Vec<String>>, ActionError> {
    if let Some(bad) = specs.iter().map(UploadSpec::name).find(|n| !valid_name(n)) {
        return Err(ActionError::Input(format!(
            "`uploads` name {bad:?} must be letters, digits, dots, dashes and underscores"
        )));
    }
    let plans = specs
        .iter()
        .map(|spec| match spec {
            UploadSpec::Name(_) => Ok(None),
            UploadSpec::Parts(parts) => parts.plan().map(Some),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(ActionError::Input)?;
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
    for (spec, plan) in specs.iter().zip(plans) {
        let name = spec.name();
        let upload = match plan {
            None => collection
                .presign(&ctx.run_id, &ctx.step_id, instance, name, valid_for)
                .await
                .map_err(ActionError::Failed)?,
            Some((part_mib, count)) => {
                let key =
                    collection
                        .target
                        .collected_key(&ctx.run_id, &ctx.step_id, instance, name);
                let upload_id = create(ctx, collection, instance, &key).await?;
                collection
                    .presign_parts(name, &key, &upload_id, count, part_mib, valid_for)
                    .await
                    .map_err(ActionError::Failed)?
            }
        };
        // A URL or signature lets its holder write that object until it expires: never printed.
        for secret in upload.secrets() {
            ctx.add_secret(secret);
        }
        uploads.push(upload);
    }
    Ok(Some(upload_script::preamble(&uploads)))
}

/// `CreateMultipartUpload` of `key` (journaled like any change); its upload id.
async fn create(
    ctx: &StepContext,
    collection: &Collection,
    instance: &str,
    key: &str,
) -> Result<String, ActionError> {
    let store = &collection.store;
    let created = ctx
        .change(
            "s3",
            "CreateMultipartUpload",
            &[instance],
            json!({"bucket": store.bucket, "key": key}),
            || {
                store
                    .s3
                    .create_multipart_upload()
                    .bucket(&store.bucket)
                    .key(key)
                    .expected_bucket_owner(&store.owner)
                    .send()
            },
        )
        .await?;
    created
        .and_then(|c| c.upload_id().map(str::to_owned))
        .ok_or_else(|| ActionError::Failed(format!("CreateMultipartUpload of {key} gave no id")))
}

/// Completes the instance's multipart uploads, then reads back every artifact the instance was
/// to upload and journals what arrived. Missing artifacts are named in the error.
pub async fn settle(
    ctx: &StepContext,
    instance: &str,
    specs: &[UploadSpec],
    stdout: &str,
) -> Result<Value, ActionError> {
    let Some(collection) = ctx.collection() else {
        return Ok(json!([]));
    };
    let reported = upload_script::reported(stdout);
    let mut arrived = Vec::new();
    let mut missing = Vec::new();
    for spec in specs {
        let name = spec.name();
        let key = collection
            .target
            .collected_key(&ctx.run_id, &ctx.step_id, instance, name);
        let said = reported.iter().find(|r| r.name == name);
        let mut parts = None;
        if let UploadSpec::Parts(_) = spec {
            match complete(ctx, collection, instance, &key, said).await {
                Ok(count) => parts = count,
                Err(error) if error.is_journal() => return Err(error),
                Err(error) => {
                    missing.push(format!("{name} ({error})"));
                    continue;
                }
            }
        }
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
        let head = Head::of(&head);
        let sealed = Sealed {
            what: SealedKind::Collected,
            bucket: store.bucket.clone(),
            key: key.clone(),
            version_id: head.version_id,
            size: head.size,
            sha256: said.map(|r| r.sha256.clone()),
            checksum_crc64nvme: head.checksum_crc64nvme,
            retention_mode: head.retention_mode,
            retain_until: head.retain_until,
            records: None,
            head: None,
            path: None,
            step: Some(ctx.step_id.clone()),
            instance_id: Some(instance.to_owned()),
            parts,
        };
        ctx.record(Event::Sealed(sealed.clone()))?;
        arrived.push(json!({
            "name": name, "key": key, "version_id": sealed.version_id, "size": sealed.size,
            "parts": parts, "sha256_reported": sealed.sha256,
            "checksum_crc64nvme": sealed.checksum_crc64nvme, "retain_until": sealed.retain_until,
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

/// Completes the multipart upload the instance reported finishing: its parts must run 1..N and
/// add up to the size it reported (S3 checks the size again). `None` when there is nothing to
/// complete because an earlier attempt completed it (the read-back finds the object); an
/// upload the instance did not finish stays incomplete — unreadable, and removed by the
/// evidence bucket's lifecycle rule.
async fn complete(
    ctx: &StepContext,
    collection: &Collection,
    instance: &str,
    key: &str,
    said: Option<&Reported>,
) -> Result<Option<u32>, ActionError> {
    let Some((said, upload_id)) = said.and_then(|r| Some((r, r.upload_id.as_deref()?))) else {
        return Err(ActionError::Failed(
            "the instance did not report finishing its parts".into(),
        ));
    };
    let store = &collection.store;
    let listed = ctx
        .call("s3", "ListParts", &[instance], || {
            store
                .s3
                .list_parts()
                .bucket(&store.bucket)
                .key(key)
                .upload_id(upload_id)
                .expected_bucket_owner(&store.owner)
                .max_parts(MAX_PARTS as i32)
                .send()
        })
        .await;
    let listed = match listed {
        Ok(listed) => listed,
        // Completed by an earlier attempt of this step: the read-back says what S3 holds.
        Err(error) if error.code() == Some("NoSuchUpload") => return Ok(None),
        Err(error) => return Err(error),
    };
    let parts: Vec<CompletedPart> = listed
        .parts()
        .iter()
        .map(|p| {
            CompletedPart::builder()
                .part_number(p.part_number().unwrap_or_default())
                .set_e_tag(p.e_tag().map(str::to_owned))
                .build()
        })
        .collect();
    let numbered = parts
        .iter()
        .enumerate()
        .all(|(i, p)| p.part_number() == Some(i as i32 + 1));
    let total: i64 = listed.parts().iter().filter_map(|p| p.size()).sum();
    if parts.is_empty() || !numbered || total != said.size as i64 {
        return Err(ActionError::Failed(format!(
            "its parts ({} of {total} bytes{}) do not make the {} bytes it reported",
            parts.len(),
            if numbered { "" } else { ", not numbered 1..N" },
            said.size
        )));
    }
    let count = parts.len() as u32;
    let done = CompletedMultipartUpload::builder()
        .set_parts(Some(parts))
        .build();
    let completed = ctx
        .change(
            "s3",
            "CompleteMultipartUpload",
            &[instance],
            json!({"bucket": store.bucket, "key": key, "parts": count}),
            || {
                store
                    .s3
                    .complete_multipart_upload()
                    .bucket(&store.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .multipart_upload(done.clone())
                    .mpu_object_size(said.size as i64)
                    .expected_bucket_owner(&store.owner)
                    // Never over an artifact already there.
                    .if_none_match("*")
                    .send()
            },
        )
        .await;
    match completed {
        Ok(_) => Ok(Some(count)),
        Err(error) if error.code() == Some("PreconditionFailed") => Ok(None),
        Err(error) => Err(error),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(max_size_gib: u64, part_size_mib: Option<u64>) -> PartsSpec {
        PartsSpec {
            name: "memory.lime".into(),
            max_size_gib,
            part_size_mib,
        }
    }

    #[test]
    fn parts_cover_the_largest_size_in_at_most_200() {
        assert_eq!(parts(4, None).plan(), Ok((64, 64)));
        assert_eq!(parts(256, None).plan(), Ok((1311, 200)));
        assert_eq!(parts(1, Some(8)).plan(), Ok((8, 128)));
        assert!(parts(1, Some(5)).plan().unwrap_err().contains("205 parts"));
        assert!(parts(1, Some(4)).plan().unwrap_err().contains("5 to 5120"));
        assert!(parts(0, None).plan().unwrap_err().contains("at least 1"));
        assert!(parts(2000, None).plan().unwrap_err().contains("5 to 5120"));
    }

    #[test]
    fn an_upload_is_a_name_or_a_sized_artifact() {
        let specs: Vec<UploadSpec> = serde_json::from_value(json!([
            "volatile.tar.gz",
            {"name": "memory.lime", "max_size_gib": 64},
            ""
        ]))
        .expect("parses");
        assert_eq!(wanted(&specs).len(), 2);
        assert_eq!(specs[1], UploadSpec::Parts(parts(64, None)));
        let error = serde_json::from_value::<UploadSpec>(json!({"name": "m", "size": 1}))
            .unwrap_err()
            .to_string();
        assert!(error.contains("max_size_gib"), "{error}");
    }
}
