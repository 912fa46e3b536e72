//! Evidence uploaded straight from an instance to the seal, through URLs firebreak presigns per
//! artifact, so the instance's own role needs no S3 rights and can write nowhere else: one PUT
//! for an artifact up to 5 GB, or the parts of a multipart upload firebreak created (memory
//! images), which firebreak completes once the instance says it is done. Each URL carries its
//! headers (the expected owner; `If-None-Match: *` on a PUT): the instance must send them, so
//! it cannot overwrite an artifact or write to a bucket another account took over.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};

use super::store::Store;
use super::target::SealTarget;

/// Where an instance's uploads go: the run's seal.
#[derive(Clone, Debug)]
pub struct Collection {
    pub store: Store,
    pub target: SealTarget,
}

/// One artifact's upload: its key, the URL and the headers to send with it.
#[derive(Debug, Clone)]
pub struct Upload {
    pub name: String,
    pub key: String,
    /// A single PUT's URL; for parts, the URL common to every part (without `partNumber` and
    /// `X-Amz-Signature`, which the instance appends per part).
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub parts: Option<Parts>,
}

/// The presigned parts of a multipart upload: part N is `URL&partNumber=N&X-Amz-Signature=`
/// `signatures[N-1]`. Sent this way the command carries ~70 bytes per part, not a whole URL.
#[derive(Debug, Clone)]
pub struct Parts {
    pub upload_id: String,
    pub part_mib: u64,
    pub signatures: Vec<String>,
}

impl Upload {
    /// What lets the holder write: the URL and every part's signature (never printed).
    pub fn secrets(&self) -> Vec<&str> {
        let mut secrets = vec![self.url.as_str()];
        if let Some(parts) = &self.parts {
            secrets.extend(parts.signatures.iter().map(String::as_str));
        }
        secrets
    }
}

impl Collection {
    /// Presigns a PUT of `name` from `instance` in `step`, valid for `valid_for`.
    pub async fn presign(
        &self,
        run_id: &str,
        step: &str,
        instance: &str,
        name: &str,
        valid_for: Duration,
    ) -> Result<Upload, String> {
        let key = self.target.collected_key(run_id, step, instance, name);
        let presigned = self
            .store
            .s3
            .put_object()
            .bucket(&self.store.bucket)
            .key(&key)
            .expected_bucket_owner(&self.store.owner)
            .if_none_match("*")
            .presigned(config(&key, SystemTime::now(), valid_for)?)
            .await
            .map_err(|e| format!("presigning {key}: {e}"))?;
        Ok(Upload {
            name: name.to_owned(),
            url: presigned.uri().to_owned(),
            headers: headers(&presigned),
            key,
            parts: None,
        })
    }

    /// Presigns `count` parts of the multipart upload `upload_id` of `key`, each of at most
    /// `part_mib` MiB, all from one instant so their URLs differ only in part number and
    /// signature.
    pub async fn presign_parts(
        &self,
        name: &str,
        key: &str,
        upload_id: &str,
        count: u64,
        part_mib: u64,
        valid_for: Duration,
    ) -> Result<Upload, String> {
        let signed_at = SystemTime::now();
        let mut common: Option<(String, Vec<(String, String)>)> = None;
        let mut signatures = Vec::new();
        for number in 1..=count {
            let presigned = self
                .store
                .s3
                .upload_part()
                .bucket(&self.store.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number as i32)
                .expected_bucket_owner(&self.store.owner)
                .presigned(config(key, signed_at, valid_for)?)
                .await
                .map_err(|e| format!("presigning part {number} of {key}: {e}"))?;
            let (url, signature) = split_part_url(presigned.uri(), number)
                .ok_or_else(|| format!("presigning part {number} of {key}: unexpected URL"))?;
            let these = (url, headers(&presigned));
            match &common {
                None => common = Some(these),
                Some(first) if *first == these => {}
                // Never expected (one signing instant, one client): refuse rather than send a
                // part to a URL the instance would assemble wrongly.
                Some(_) => {
                    return Err(format!(
                        "presigning {key}: part URLs differ beyond part number and signature"
                    ));
                }
            }
            signatures.push(signature);
        }
        let (url, headers) = common.ok_or_else(|| format!("presigning {key}: no parts"))?;
        Ok(Upload {
            name: name.to_owned(),
            key: key.to_owned(),
            url,
            headers,
            parts: Some(Parts {
                upload_id: upload_id.to_owned(),
                part_mib,
                signatures,
            }),
        })
    }
}

fn config(key: &str, start: SystemTime, valid_for: Duration) -> Result<PresigningConfig, String> {
    PresigningConfig::builder()
        .start_time(start)
        .expires_in(valid_for)
        .build()
        .map_err(|e| format!("presigning {key}: {e}"))
}

fn headers(presigned: &PresignedRequest) -> Vec<(String, String)> {
    presigned
        .headers()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A part's URL without its `partNumber` and `X-Amz-Signature` parameters, and the signature.
/// SigV4 signs the sorted query, so the order the instance puts them back in does not matter.
fn split_part_url(url: &str, number: u64) -> Option<(String, String)> {
    let (path, query) = url.split_once('?')?;
    let mut signature = None;
    let mut part_seen = false;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("X-Amz-Signature=") {
            signature = Some(value.to_owned());
        } else if let Some(value) = pair.strip_prefix("partNumber=") {
            part_seen = value == number.to_string();
        } else {
            kept.push(pair);
        }
    }
    let signature = signature.filter(|s| s.chars().all(|c| c.is_ascii_hexdigit()))?;
    (part_seen && !kept.is_empty()).then(|| (format!("{path}?{}", kept.join("&")), signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_url_splits_into_the_common_url_and_its_signature() {
        let url = "https://b.s3.amazonaws.com/k?x-id=UploadPart&partNumber=3&uploadId=u1\
                   &X-Amz-Date=20261202T000000Z&X-Amz-Signature=abc123";
        let (common, signature) = split_part_url(url, 3).expect("splits");
        assert_eq!(
            common,
            "https://b.s3.amazonaws.com/k?x-id=UploadPart&uploadId=u1&X-Amz-Date=20261202T000000Z"
        );
        assert_eq!(signature, "abc123");
        assert_eq!(split_part_url(url, 4), None, "another part's number");
        assert_eq!(
            split_part_url("https://b/k?partNumber=3", 3),
            None,
            "no signature"
        );
    }
}
