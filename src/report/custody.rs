//! The report's chain of custody: where the run was sealed, each object with its version and
//! retention, what failed to seal, and the signed statements. Read from the journal only; the
//! signature is checked by `journal verify --kms` or `--public-key`, not here.

use crate::journal::{Event, Record};

#[derive(Debug, Clone, Default)]
pub struct Custody {
    /// `s3://BUCKET/PREFIX` as the run chose it (the latest choice).
    pub location: Option<String>,
    pub objects: Vec<SealedObject>,
    /// `(ts, what, error)`
    pub failures: Vec<(String, String, String)>,
    /// One line per signed statement.
    pub statements: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SealedObject {
    pub what: String,
    pub key: String,
    pub version_id: String,
    pub retention: String,
}

impl Custody {
    pub fn from_records(records: &[Record]) -> Custody {
        let mut custody = Custody::default();
        for record in records {
            match &record.event {
                Event::RunStarted(e) => {
                    custody.location = e.custody.as_ref().map(|c| c.seal.clone());
                }
                Event::RunResumed(e) => {
                    if let Some(c) = &e.custody {
                        custody.location = Some(c.seal.clone());
                    }
                }
                Event::Sealed(s) => custody.objects.push(SealedObject {
                    what: s.what.as_str().to_owned(),
                    key: format!("s3://{}/{}", s.bucket, s.key),
                    version_id: s.version_id.clone().unwrap_or_default(),
                    retention: format!(
                        "{} until {}",
                        s.retention_mode.as_deref().unwrap_or("none"),
                        s.retain_until.as_deref().unwrap_or("—")
                    ),
                }),
                Event::SealFailed(f) => custody.failures.push((
                    record.ts.clone(),
                    f.what.as_str().to_owned(),
                    f.error.clone(),
                )),
                Event::Signed(s) => custody.statements.push(format!(
                    "records 1–{} (head {}, run {}) signed by {} at {}{}",
                    s.statement.records,
                    s.statement.head.get(..16).unwrap_or_default(),
                    s.statement.status,
                    s.statement.key_id,
                    s.statement.signed_at,
                    s.key
                        .as_ref()
                        .map(|k| format!("; sealed as {k}"))
                        .unwrap_or_else(|| "; the statement's upload failed".into())
                )),
                _ => {}
            }
        }
        custody
    }
}
