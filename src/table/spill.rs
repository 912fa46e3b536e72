//! Records larger than a DynamoDB item (400 KB) go to the seal bucket: the line is written as
//! an object (`PREFIX/RUN/spill/<seq>-<sha256 prefix>.jsonl`, only if absent, with a CRC64NVME
//! the bucket checks, under the bucket's Object Lock retention) and the item names it with the
//! line's SHA-256, so the journal's chain still covers every byte: export puts the line back
//! only if its hash matches.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use sha2::{Digest, Sha256};

use crate::aws::error::AwsError;

/// Where large records go: the seal's bucket and prefix.
#[derive(Debug, Clone)]
pub struct Spill {
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    /// Without slashes at either end; empty for the bucket's root.
    pub prefix: String,
    /// The account that must own the bucket (`ExpectedBucketOwner`), when known.
    pub owner: Option<String>,
}

impl Spill {
    /// Stores one line (without its newline); answers what the item holds instead.
    pub async fn put(&self, run_id: &str, seq: u64, line: &[u8]) -> Result<String, String> {
        let sha = hex::encode(Sha256::digest(line));
        let key = [
            self.prefix.as_str(),
            run_id,
            "spill",
            &format!("{seq:012}-{}.jsonl", &sha[..16]),
        ]
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
        let sent = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(ByteStream::from(line.to_vec()))
            .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
            .if_none_match("*")
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await;
        match sent {
            Ok(_) => {}
            // Already there (an earlier attempt whose answer was lost): only if it is this line.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
                let there = fetch(&self.s3, &self.bucket, &key, self.owner.as_deref()).await?;
                if hex::encode(Sha256::digest(&there)) != sha {
                    return Err(format!(
                        "s3://{}/{key} already holds another record",
                        self.bucket
                    ));
                }
            }
            Err(e) => return Err(AwsError::from_sdk("s3", "PutObject", e).to_string()),
        }
        Ok(format!("s3://{}/{key}#{sha}", self.bucket))
    }
}

/// The line a `spill` attribute names, once its SHA-256 is the one the item holds.
pub async fn get(s3: &aws_sdk_s3::Client, spilled: &str) -> Result<Vec<u8>, String> {
    let (url, sha) = spilled
        .split_once('#')
        .ok_or_else(|| format!("{spilled:?} is not a spilled record's place"))?;
    let (bucket, key) = url
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .ok_or_else(|| format!("{url:?} is not an s3:// URL"))?;
    let line = fetch(s3, bucket, key, None).await?;
    if hex::encode(Sha256::digest(&line)) != sha {
        return Err(format!(
            "{url} is not the record the table names (its SHA-256 differs)"
        ));
    }
    Ok(line)
}

async fn fetch(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    owner: Option<&str>,
) -> Result<Vec<u8>, String> {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_expected_bucket_owner(owner.map(str::to_owned))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("s3", "GetObject", e).to_string())?;
    object
        .body
        .collect()
        .await
        .map(|bytes| bytes.into_bytes().to_vec())
        .map_err(|e| format!("reading s3://{bucket}/{key}: {e}"))
}
