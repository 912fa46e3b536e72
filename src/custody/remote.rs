//! A run's seal read back: its newest sealed journal and statement, and the check of both and
//! of every object the journal says it sealed (`journal verify s3://BUCKET/PREFIX/RUN_ID`).

use std::path::Path;

use super::store::Store;
use super::target::{SealTarget, journal_key_parts, statement_key_parts};
use crate::journal::custody::{Sealed, SealedKind, Signed};
use crate::journal::{Event, Record, Verification};

/// The newest sealed copy of a run's journal, and the newest signed statement.
pub struct Seal {
    pub journal_key: String,
    pub journal_version: Option<String>,
    pub bytes: Vec<u8>,
    /// The record count and head the key names.
    pub named: (u64, String),
    pub statement: Option<(String, Signed)>,
}

/// Finds and reads the newest sealed journal (the most records) and statement of a run.
pub async fn newest(store: &Store, target: &SealTarget, run_id: &str) -> Result<Seal, String> {
    let prefix = target.run_prefix(run_id);
    let keys = store.list(&prefix).await?;
    let newest_by = |parts: fn(&str) -> Option<(u64, String)>| {
        keys.iter()
            .filter_map(|k| parts(k).map(|p| (p, k.clone())))
            .max_by_key(|((records, _), _)| *records)
    };
    let Some((named, journal_key)) = newest_by(journal_key_parts) else {
        return Err(format!(
            "no sealed journal under s3://{}/{prefix} (is the run id right? was it run with --seal?)",
            store.bucket
        ));
    };
    let head = store.head(&journal_key, None).await?;
    let bytes = store.get(&journal_key, head.version_id.as_deref()).await?;
    let statement = match newest_by(statement_key_parts) {
        None => None,
        Some((_, key)) => {
            let body = store.get(&key, None).await?;
            let signed: Signed = serde_json::from_slice(&body)
                .map_err(|e| format!("statement {key} does not parse: {e}"))?;
            Some((key, signed))
        }
    };
    Ok(Seal {
        journal_key,
        journal_version: head.version_id,
        bytes,
        named,
        statement,
    })
}

/// The record after which only custody records follow, and the statement names it: the
/// signed head is the chain's record `records` and nothing but custody records comes after.
/// `records` are the journal's records, read from the copy whose chain was checked.
pub fn statement_covers(records: &[Record], signed: &Signed, run_id: &str) -> Result<(), String> {
    let statement = &signed.statement;
    if statement.run_id != run_id {
        return Err(format!(
            "the statement is for run {}, not {run_id}",
            statement.run_id
        ));
    }
    let Some(at) = records.iter().position(|r| r.seq == statement.records) else {
        return Err(format!(
            "the statement signs record {}, which the journal does not have (it ends at {}): \
             records were removed",
            statement.records,
            records.last().map_or(0, |r| r.seq)
        ));
    };
    if records[at].hash.as_deref() != Some(statement.head.as_str()) {
        return Err(format!(
            "record {}'s hash is not the signed head {}: the journal was changed after it was \
             signed",
            statement.records, statement.head
        ));
    }
    let unsigned: Vec<u64> = records[at + 1..]
        .iter()
        .filter(|r| !crate::journal::custody::CUSTODY_KINDS.contains(&r.event.kind()))
        .map(|r| r.seq)
        .collect();
    if let (Some(first), Some(last)) = (unsigned.first(), unsigned.last()) {
        return Err(format!(
            "records {first}–{last} come after the signed head and are not signed"
        ));
    }
    Ok(())
}

/// The newest signed statement a journal holds.
pub fn last_statement(records: &[Record]) -> Option<&Signed> {
    records.iter().rev().find_map(|r| match &r.event {
        Event::Signed(signed) => Some(signed),
        _ => None,
    })
}

/// One sealed object as the journal records it, checked against S3 now.
#[derive(Debug, Clone)]
pub struct ObjectCheck {
    pub key: String,
    pub what: SealedKind,
    pub problem: Option<String>,
    pub retain_until: Option<String>,
}

/// Every object the sealed journal says it sealed: still there in the version recorded, with
/// the recorded CRC64NVME, under COMPLIANCE retention that has not ended. And every evidence
/// file the journal names must have been sealed.
pub async fn check_objects(store: &Store, records: &[Record], now: &str) -> Vec<ObjectCheck> {
    let mut checks = Vec::new();
    let sealed: Vec<&Sealed> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Sealed(s) if matches!(s.what, SealedKind::Evidence | SealedKind::Collected) => {
                Some(s)
            }
            _ => None,
        })
        .collect();
    for artifact in crate::journal::evidence::artifacts(records) {
        if !sealed
            .iter()
            .any(|s| s.path.as_deref() == Some(&artifact.path))
        {
            checks.push(ObjectCheck {
                key: artifact.path.clone(),
                what: SealedKind::Evidence,
                problem: Some("journaled as evidence but never sealed".into()),
                retain_until: None,
            });
        }
    }
    for object in sealed {
        let problem = match store.head(&object.key, object.version_id.as_deref()).await {
            Err(error) => Some(error),
            Ok(head) => object_problem(object, &head, now),
        };
        checks.push(ObjectCheck {
            key: object.key.clone(),
            what: object.what,
            problem,
            retain_until: object.retain_until.clone(),
        });
    }
    checks
}

/// What is wrong with an object compared with its `sealed` record, if anything.
pub fn object_problem(object: &Sealed, head: &super::store::Head, now: &str) -> Option<String> {
    if object.checksum_crc64nvme.is_some() && head.checksum_crc64nvme != object.checksum_crc64nvme {
        return Some(format!(
            "CRC64NVME {} in S3, {} journaled",
            head.checksum_crc64nvme.as_deref().unwrap_or("none"),
            object.checksum_crc64nvme.as_deref().unwrap_or("none")
        ));
    }
    if head.retention_mode.as_deref() != Some("COMPLIANCE") {
        return Some(format!(
            "not under COMPLIANCE retention ({})",
            head.retention_mode.as_deref().unwrap_or("no retention")
        ));
    }
    match head.retain_until.as_deref() {
        Some(until) if until > now => None,
        Some(until) => Some(format!("its retention ended at {until}")),
        None => Some("no retain-until date".into()),
    }
}

/// The sealed copy's chain, checked like a local file (`name` for messages).
pub fn verify_copy(
    name: &Path,
    bytes: &[u8],
    key: Option<&[u8]>,
) -> (Verification, Result<Vec<Record>, String>) {
    let verification = crate::journal::verify_bytes(bytes, key);
    let records = crate::journal::read_from_bytes(name, bytes).map_err(|e| e.to_string());
    (verification, records)
}
