//! The journal's custody records: where a run's journal and evidence are sealed (S3 Object
//! Lock), each upload as S3 read it back, uploads that failed, and signed statements of the
//! journal's head. They say what left the host and when; `journal verify s3://…` checks them.

use serde::{Deserialize, Serialize};

/// Where a run seals its journal and evidence, as chosen when it started (`--seal`,
/// `--sign-key`); a resume without `--seal` carries on sealing there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Custody {
    /// `s3://BUCKET/PREFIX`
    pub seal: String,
    /// The account that must own the bucket (`ExpectedBucketOwner` on every call).
    pub owner: String,
    /// The shortest default COMPLIANCE retention the bucket may have, in days.
    pub min_retention_days: u32,
    /// The KMS key that signs the journal's head at every end of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_key: Option<String>,
}

/// What an upload holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SealedKind {
    /// The journal up to `records` (its head in the key).
    Journal,
    /// An evidence file the run wrote (`path`).
    Evidence,
    /// A signed statement of the journal's head.
    Statement,
    /// An artifact a collection uploaded straight from an instance.
    Collected,
    /// The bucket's Object Lock and owner check (only in `seal_failed`).
    Bucket,
}

impl SealedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SealedKind::Journal => "journal",
            SealedKind::Evidence => "evidence",
            SealedKind::Statement => "statement",
            SealedKind::Collected => "collected",
            SealedKind::Bucket => "bucket",
        }
    }
}

/// One object written to the seal, as `HeadObject` read it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub what: SealedKind,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub size: u64,
    /// SHA-256 of the bytes, computed by firebreak (or, for `collected`, reported by the
    /// instance: a root attacker can forge it).
    pub sha256: Option<String>,
    /// S3's full-object CRC64NVME of what arrived (base64, as S3 gives it).
    pub checksum_crc64nvme: Option<String>,
    pub retention_mode: Option<String>,
    pub retain_until: Option<String>,
    /// For the journal: how many records the object holds, and the last one's hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// For evidence: the local file's path as its `evidence` record names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// For collected artifacts: the step and instance that uploaded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// For a collected multipart upload: how many parts firebreak completed it from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<u32>,
}

/// An upload (or the bucket check) that failed: the run went on; `firebreak journal seal` or
/// the next resume completes the seal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealFailed {
    pub what: SealedKind,
    pub key: Option<String>,
    pub error: String,
}

/// The statement a KMS key signs: small, canonical (these fields in this order, compact JSON),
/// and enough to pin the whole journal (its head hash chains every record before it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub run_id: String,
    pub records: u64,
    pub head: String,
    pub status: String,
    pub key_id: String,
    pub signed_at: String,
}

impl Statement {
    /// The exact bytes signed: compact JSON of the fields in declaration order.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a statement serializes")
    }
}

/// A signed statement of the journal's head (`kms:Sign`, RAW message, ECDSA_SHA_256), and
/// where it was sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    pub statement: Statement,
    pub algorithm: String,
    /// The DER signature, hex.
    pub signature: String,
    /// The statement's object in the seal (absent when its upload failed).
    pub key: Option<String>,
    pub version_id: Option<String>,
}

/// The record kinds that only say what left the host; they may follow `run_finished`.
pub const CUSTODY_KINDS: &[&str] = &["sealed", "seal_failed", "signed"];

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::journal::Event;

    /// Each custody record reads back as its type and writes the same fields in the same order.
    #[test]
    fn custody_records_round_trip() {
        for (kind, payload) in [
            (
                "sealed",
                json!({"what": "journal", "bucket": "b", "key": "p/R/journal.3-ab.jsonl",
                       "version_id": "v1", "size": 10, "sha256": "00", "checksum_crc64nvme": "AA==",
                       "retention_mode": "COMPLIANCE", "retain_until": "2027-01-01T00:00:00Z",
                       "records": 3, "head": "ab"}),
            ),
            (
                "seal_failed",
                json!({"what": "evidence", "key": "p/R/evidence/a", "error": "500"}),
            ),
            (
                "signed",
                json!({"statement": {"run_id": "R", "records": 3, "head": "ab",
                                     "status": "succeeded", "key_id": "k", "signed_at": "t"},
                       "algorithm": "ECDSA_SHA_256", "signature": "3044", "key": null,
                       "version_id": null}),
            ),
        ] {
            let Value::Object(fields) = payload.clone() else {
                unreachable!()
            };
            let event = Event::from_payload(kind, fields);
            assert!(!matches!(event, Event::Other(_)), "{kind}: {event:?}");
            assert_eq!(Value::Object(event.payload()), payload, "{kind}");
        }
    }
}
