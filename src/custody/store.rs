//! Objects in the seal: written once (`If-None-Match: *`) to a bucket the expected account owns
//! (`ExpectedBucketOwner` on every call), then read back with `HeadObject` so the journal
//! records what S3 holds — version, full-object CRC64NVME, retention — not what was sent.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
use aws_smithy_checksums::ChecksumAlgorithm as Algorithm;
use sha2::{Digest, Sha256};

use crate::aws::error::AwsError;
use crate::journal::custody::{Sealed, SealedKind};

/// The bucket, its owner and the client that writes to it.
#[derive(Clone, Debug)]
pub struct Store {
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub owner: String,
}

/// What `HeadObject` says of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub version_id: Option<String>,
    pub size: u64,
    pub checksum_crc64nvme: Option<String>,
    pub retention_mode: Option<String>,
    pub retain_until: Option<String>,
}

impl Head {
    /// What a `HeadObject` answer (checksum mode on) says of the object.
    pub fn of(head: &aws_sdk_s3::operation::head_object::HeadObjectOutput) -> Head {
        Head {
            version_id: head.version_id().map(str::to_owned),
            size: head.content_length().unwrap_or_default().max(0) as u64,
            checksum_crc64nvme: head.checksum_crc64_nvme().map(str::to_owned),
            retention_mode: head.object_lock_mode().map(|m| m.as_str().to_owned()),
            retain_until: head
                .object_lock_retain_until_date()
                .and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
        }
    }
}

/// The CRC64NVME S3 computes over a whole object, base64 as S3 reports it.
pub fn crc64nvme(bytes: &[u8]) -> String {
    let mut checksum = Algorithm::Crc64Nvme.into_impl();
    checksum.update(bytes);
    checksum
        .header_value()
        .to_str()
        .expect("base64 is ASCII")
        .to_owned()
}

/// An S3 client in the bucket's own region. The seal's bucket may live elsewhere than the run
/// acts (a finding in eu-west-1, the security account's evidence in us-east-1), and S3 answers a
/// request to the wrong region with a redirect the SDK does not follow. Unknown (the location
/// could not be read): the client as it is, and the bucket check says what is wrong.
pub async fn in_bucket_region(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    owner: &str,
) -> aws_sdk_s3::Client {
    let location = s3
        .get_bucket_location()
        .bucket(bucket)
        .expected_bucket_owner(owner)
        .send()
        .await;
    let Ok(location) = location else {
        return s3.clone();
    };
    // No constraint is us-east-1; `EU` is the legacy name of eu-west-1.
    let region = match location.location_constraint().map(|c| c.as_str()) {
        None | Some("") => "us-east-1",
        Some("EU") => "eu-west-1",
        Some(region) => region,
    };
    if s3.config().region().map(|r| r.as_ref()) == Some(region) {
        return s3.clone();
    }
    aws_sdk_s3::Client::from_conf(
        s3.config()
            .to_builder()
            .region(aws_sdk_s3::config::Region::new(region.to_owned()))
            .build(),
    )
}

impl Store {
    /// Writes `bytes` under `key` unless an object is there already. An object already there
    /// (an upload before a crash) is accepted when S3's checksum of it equals these bytes'; a
    /// different object under the same name is an error — nothing is ever replaced.
    pub async fn put_once(
        &self,
        what: SealedKind,
        key: &str,
        bytes: Vec<u8>,
    ) -> Result<Sealed, String> {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let crc = crc64nvme(&bytes);
        let size = bytes.len() as u64;
        let put = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .expected_bucket_owner(&self.owner)
            .if_none_match("*")
            .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
            .body(ByteStream::from(bytes))
            .send()
            .await;
        if let Err(error) = put {
            let error = AwsError::from_sdk("s3", "PutObject", error);
            if error.code.as_deref() != Some("PreconditionFailed") {
                return Err(format!("uploading {key}: {error}"));
            }
        }
        let head = self.head(key, None).await?;
        if head.checksum_crc64nvme.as_deref() != Some(crc.as_str()) {
            return Err(format!(
                "s3://{}/{key} holds other bytes than this upload (CRC64NVME {} there, {crc} \
                 here); it was not replaced",
                self.bucket,
                head.checksum_crc64nvme.as_deref().unwrap_or("none")
            ));
        }
        Ok(Sealed {
            what,
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            version_id: head.version_id,
            size,
            sha256: Some(sha256),
            checksum_crc64nvme: head.checksum_crc64nvme,
            retention_mode: head.retention_mode,
            retain_until: head.retain_until,
            records: None,
            head: None,
            path: None,
            step: None,
            instance_id: None,
            parts: None,
        })
    }

    /// `HeadObject` (checksum mode on) of `key`, or of one version of it.
    pub async fn head(&self, key: &str, version: Option<&str>) -> Result<Head, String> {
        let head = self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .expected_bucket_owner(&self.owner)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "reading back {key}: {}",
                    AwsError::from_sdk("s3", "HeadObject", e)
                )
            })?;
        Ok(Head::of(&head))
    }

    /// The object's bytes (one version when given).
    pub async fn get(&self, key: &str, version: Option<&str>) -> Result<Vec<u8>, String> {
        let object = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .expected_bucket_owner(&self.owner)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "reading {key}: {}",
                    AwsError::from_sdk("s3", "GetObject", e)
                )
            })?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| format!("reading {key}: {e}"))?;
        Ok(bytes.into_bytes().to_vec())
    }

    /// Every key under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, String> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .expected_bucket_owner(&self.owner)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "listing s3://{}/{prefix}: {}",
                        self.bucket,
                        AwsError::from_sdk("s3", "ListObjectsV2", e)
                    )
                })?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                return Ok(keys);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc64nvme_matches_the_published_check_value() {
        // CRC-64/NVME of "123456789" is 0xAE8B14860A799888 (the catalogue's check value).
        let expected = aws_smithy_types::base64::encode(0xAE8B_1486_0A79_9888u64.to_be_bytes());
        assert_eq!(super::crc64nvme(b"123456789"), expected);
    }
}
