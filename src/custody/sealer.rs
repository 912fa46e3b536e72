//! What a run seals and when. At every step end: each evidence file not yet sealed, then the
//! journal as it stands. At every end of the run: the same, then (with a signing key) a signed
//! statement of the journal's head, sealed beside it. Each upload is journaled (`sealed`, as S3
//! read it back) or, when it fails, `seal_failed` — and the run goes on: a seal never blocks
//! containment. `journal seal` and the next resume complete what failed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::bucket;
use super::statement;
use super::store::Store;
use super::target::SealTarget;
use crate::aws::Clients;
use crate::journal::custody::{Custody, SealFailed, SealedKind, Signed, Statement};
use crate::journal::{Event, JournalError, Record};

/// Where the sealer's records go (the run's journal, redacted like every record).
pub type Write<'a> = &'a (dyn Fn(Event) -> Result<(), JournalError> + Send + Sync);

pub struct Sealer {
    store: Store,
    kms: aws_sdk_kms::Client,
    custody: Custody,
    target: SealTarget,
    run_id: String,
    journal_path: PathBuf,
    /// The bucket passed its check (nothing is uploaded to one that did not).
    trusted: bool,
    /// The signing key's ARN, once checked.
    sign_key: Option<String>,
    /// Local evidence paths already in the seal.
    sealed_paths: HashSet<String>,
    /// Records in the newest sealed copy of the journal.
    sealed_records: u64,
    /// Record count the newest statement signs.
    signed_records: u64,
}

/// How complete the seal is after an attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SealReport {
    /// `s3://BUCKET/PREFIX`
    pub location: String,
    /// The newest sealed journal object's key.
    pub journal_key: Option<String>,
    pub signed: bool,
    /// What failed this time (empty: everything asked is sealed).
    pub failures: Vec<String>,
}

impl Sealer {
    /// Checks the bucket (and the signing key) and learns from the journal what is sealed
    /// already. A bucket that fails its check is journaled as `seal_failed` and nothing is
    /// uploaded to it.
    pub async fn open(
        clients: &Clients,
        custody: Custody,
        run_id: &str,
        journal_path: &Path,
        write: Write<'_>,
    ) -> Result<(Sealer, Vec<String>), JournalError> {
        let parsed = SealTarget::parse(&custody.seal);
        let target = parsed.clone().unwrap_or(SealTarget {
            bucket: String::new(),
            prefix: String::new(),
        });
        let store = Store {
            s3: super::store::in_bucket_region(&clients.s3, &target.bucket, &custody.owner).await,
            bucket: target.bucket.clone(),
            owner: custody.owner.clone(),
        };
        let kms = match &custody.sign_key {
            Some(key) => statement::in_key_region(&clients.kms, key),
            None => clients.kms.clone(),
        };
        let mut sealer = Sealer {
            store,
            kms,
            custody,
            target,
            run_id: run_id.to_owned(),
            journal_path: journal_path.to_owned(),
            trusted: false,
            sign_key: None,
            sealed_paths: HashSet::new(),
            sealed_records: 0,
            signed_records: 0,
        };
        let mut failures = Vec::new();
        let checked = match parsed {
            Err(error) => Err(error),
            Ok(_) => bucket::check(&sealer.store, sealer.custody.min_retention_days)
                .await
                .map(|_| ()),
        };
        match checked {
            Ok(()) => sealer.trusted = true,
            Err(error) => failed(write, &mut failures, SealedKind::Bucket, None, error)?,
        }
        if let Some(key) = sealer.custody.sign_key.clone() {
            match statement::check_key(&sealer.kms, &key).await {
                Ok(arn) => sealer.sign_key = Some(arn),
                Err(error) => failed(write, &mut failures, SealedKind::Statement, None, error)?,
            }
        }
        if let Ok(records) = crate::journal::read(journal_path) {
            sealer.learn(&records);
        }
        Ok((sealer, failures))
    }

    /// What the journal says is sealed already (a resumed run, `journal seal`).
    fn learn(&mut self, records: &[Record]) {
        for record in records {
            match &record.event {
                Event::Sealed(sealed) if sealed.bucket == self.target.bucket => match sealed.what {
                    SealedKind::Evidence => {
                        if let Some(path) = &sealed.path {
                            self.sealed_paths.insert(path.clone());
                        }
                    }
                    SealedKind::Journal => {
                        self.sealed_records = self.sealed_records.max(sealed.records.unwrap_or(0));
                    }
                    _ => {}
                },
                Event::Signed(signed) => {
                    self.signed_records = self.signed_records.max(signed.statement.records);
                }
                _ => {}
            }
        }
    }

    /// Where instances may upload, once the bucket passed its check.
    pub fn collection(&self) -> Option<super::presign::Collection> {
        self.trusted.then(|| super::presign::Collection {
            store: self.store.clone(),
            target: self.target.clone(),
        })
    }

    pub fn location(&self) -> String {
        self.target.to_string()
    }

    /// Seals what is not sealed yet; at an end of the run (`status`), signs the head too.
    pub async fn seal(
        &mut self,
        status: Option<&str>,
        write: Write<'_>,
    ) -> Result<SealReport, JournalError> {
        let mut report = SealReport {
            location: self.location(),
            ..SealReport::default()
        };
        if !self.trusted {
            report
                .failures
                .push(format!("bucket {} was not trusted", self.target.bucket));
            return Ok(report);
        }
        self.seal_evidence(write, &mut report).await?;
        let sealed = self.seal_journal(write, &mut report).await?;
        if let (Some(status), Some((records, head))) = (status, sealed) {
            self.sign(status, records, head, write, &mut report).await?;
        }
        Ok(report)
    }

    async fn seal_evidence(
        &mut self,
        write: Write<'_>,
        report: &mut SealReport,
    ) -> Result<(), JournalError> {
        // A journal that cannot be read here is sealed as it is; its evidence waits for the
        // next seal.
        let Ok(records) = crate::journal::read(&self.journal_path) else {
            return Ok(());
        };
        for artifact in crate::journal::evidence::artifacts(&records) {
            if self.sealed_paths.contains(&artifact.path) {
                continue;
            }
            let name = Path::new(&artifact.path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| artifact.sha256.clone());
            let key = self.target.evidence_key(&self.run_id, &name);
            let uploaded = match std::fs::read(&artifact.path) {
                Ok(bytes) => self.store.put_once(SealedKind::Evidence, &key, bytes).await,
                Err(e) => Err(format!("reading {}: {e}", artifact.path)),
            };
            match uploaded {
                Ok(mut sealed) => {
                    sealed.path = Some(artifact.path.clone());
                    write(Event::Sealed(sealed))?;
                    self.sealed_paths.insert(artifact.path);
                }
                Err(error) => failed(
                    write,
                    &mut report.failures,
                    SealedKind::Evidence,
                    Some(key),
                    error,
                )?,
            }
        }
        Ok(())
    }

    /// Uploads the journal as it stands (whole lines), named by its head. Returns the record
    /// count and head of the sealed copy.
    async fn seal_journal(
        &mut self,
        write: Write<'_>,
        report: &mut SealReport,
    ) -> Result<Option<(u64, String)>, JournalError> {
        let bytes = std::fs::read(&self.journal_path).map_err(|source| JournalError::Read {
            path: self.journal_path.clone(),
            source,
        })?;
        let Some((bytes, records, head)) = whole_lines(bytes) else {
            return Ok(None);
        };
        let key = self.target.journal_key(&self.run_id, records, &head);
        if records <= self.sealed_records {
            report.journal_key = Some(key);
            return Ok(Some((records, head)));
        }
        match self.store.put_once(SealedKind::Journal, &key, bytes).await {
            Ok(mut sealed) => {
                sealed.records = Some(records);
                sealed.head = Some(head.clone());
                write(Event::Sealed(sealed))?;
                self.sealed_records = records;
                report.journal_key = Some(key);
                Ok(Some((records, head)))
            }
            Err(error) => {
                failed(
                    write,
                    &mut report.failures,
                    SealedKind::Journal,
                    Some(key),
                    error,
                )?;
                Ok(None)
            }
        }
    }

    async fn sign(
        &mut self,
        status: &str,
        records: u64,
        head: String,
        write: Write<'_>,
        report: &mut SealReport,
    ) -> Result<(), JournalError> {
        let Some(key_id) = self.sign_key.clone() else {
            if self.custody.sign_key.is_some() {
                report
                    .failures
                    .push("the signing key could not be used".into());
            }
            return Ok(());
        };
        if records <= self.signed_records {
            report.signed = true;
            return Ok(());
        }
        let statement = Statement {
            run_id: self.run_id.clone(),
            records,
            head: head.clone(),
            status: status.to_owned(),
            key_id,
            signed_at: super::now(),
        };
        let key = self.target.statement_key(&self.run_id, records, &head);
        let signed = match statement::sign(&self.kms, statement).await {
            Ok(signed) => signed,
            Err(error) => {
                failed(
                    write,
                    &mut report.failures,
                    SealedKind::Statement,
                    Some(key),
                    error,
                )?;
                return Ok(());
            }
        };
        let body = serde_json::to_vec_pretty(&signed).expect("a signed statement serializes");
        let uploaded = self.store.put_once(SealedKind::Statement, &key, body).await;
        let signed = match uploaded {
            Ok(sealed) => Signed {
                key: Some(sealed.key),
                version_id: sealed.version_id,
                ..signed
            },
            Err(error) => {
                failed(
                    write,
                    &mut report.failures,
                    SealedKind::Statement,
                    Some(key),
                    error,
                )?;
                signed
            }
        };
        let sealed = signed.key.is_some();
        write(Event::Signed(signed))?;
        self.signed_records = records;
        report.signed = sealed;
        Ok(())
    }
}

/// Journals an upload (or check) that failed and adds it to `failures`: the run goes on.
fn failed(
    write: Write<'_>,
    failures: &mut Vec<String>,
    what: SealedKind,
    key: Option<String>,
    error: String,
) -> Result<(), JournalError> {
    write(Event::SealFailed(SealFailed {
        what,
        key,
        error: error.clone(),
    }))?;
    failures.push(error);
    Ok(())
}

/// The journal's bytes up to its last newline, with the last whole record's seq and hash.
pub fn whole_lines(mut bytes: Vec<u8>) -> Option<(Vec<u8>, u64, String)> {
    let end = bytes.iter().rposition(|b| *b == b'\n')? + 1;
    bytes.truncate(end);
    let start = bytes[..end - 1]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let last: serde_json::Value = serde_json::from_slice(&bytes[start..end - 1]).ok()?;
    let seq = last["seq"].as_u64()?;
    let hash = last["hash"].as_str()?.to_owned();
    Some((bytes, seq, hash))
}

/// The seal a journal's run chose last (`run_started`, or a resume's `--seal`).
pub fn chosen(records: &[Record]) -> Option<Custody> {
    records
        .iter()
        .fold(None, |chosen, record| match &record.event {
            Event::RunStarted(e) => e.custody.as_deref().cloned(),
            Event::RunResumed(e) => e.custody.clone().or(chosen),
            _ => chosen,
        })
}

/// How the journal's run ended, for a statement signed afterwards: its last `run_finished`
/// (unless resumed since), else `interrupted` when it says so, else `incomplete` (a crash).
pub fn ended(records: &[Record]) -> &'static str {
    let mut status = "incomplete";
    for record in records {
        match &record.event {
            Event::RunFinished(e) => status = e.status.as_str(),
            Event::RunInterrupted(_) => status = "interrupted",
            Event::RunResumed(_) => status = "incomplete",
            _ => {}
        }
    }
    status
}
