//! One case per resource: a case index per case key (`<journal-dir>/cases/<hash>.jsonl`), a
//! hash-chained journal of its own that records which run contains the case and every later
//! finding that joined it. A run's own journal is never written after its `run_finished`, nor
//! by a second process while the run is live: findings that join go here. Deciding and
//! recording happen under an exclusive lock on the case (`<hash>.lock`), so two findings that
//! arrive together cannot both open it.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::journal::chain::ChainKey;
use crate::journal::event::{CaseOpened, FindingJoined};
use crate::journal::{Event, FileJournal, JournalError, JournalSink, Record};

/// A case index, locked for as long as this value lives.
pub struct CaseIndex {
    path: PathBuf,
    key: Option<Vec<u8>>,
    records: Vec<Record>,
    /// Held: the exclusive lock (released on drop).
    _lock: File,
}

/// The case a finding belongs to, as its index last recorded it.
#[derive(Debug, Clone)]
pub struct OpenCase {
    pub opened: CaseOpened,
    /// When it opened (the record's time).
    pub opened_at: String,
    pub joined: Vec<FindingJoined>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("failed to {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Where the index of `case_key` lives.
pub fn index_path(journal_dir: &Path, case_key: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(case_key.as_bytes()));
    journal_dir
        .join("cases")
        .join(format!("{}.jsonl", &digest[..32]))
}

impl CaseIndex {
    /// Opens (and locks) the index of `case_key`, waiting for another process that holds it.
    pub fn lock(
        journal_dir: &Path,
        case_key: &str,
        key: Option<Vec<u8>>,
    ) -> Result<CaseIndex, CaseError> {
        let path = index_path(journal_dir, case_key);
        let folder = path.parent().expect("indexes live in a folder");
        let io = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| CaseError::Io {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(folder).map_err(io("create the cases folder", folder))?;
        let lock_path = path.with_extension("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("open the case lock", &lock_path))?;
        lock.lock().map_err(io("lock the case", &lock_path))?;
        let records = if path.exists() {
            crate::journal::read(&path)?
        } else {
            Vec::new()
        };
        Ok(CaseIndex {
            path,
            key,
            records,
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The latest case opened under this key, with the findings that joined it since.
    pub fn current(&self) -> Option<OpenCase> {
        let mut case: Option<OpenCase> = None;
        for record in &self.records {
            match &record.event {
                Event::CaseOpened(opened) => {
                    case = Some(OpenCase {
                        opened: opened.clone(),
                        opened_at: record.ts.clone(),
                        joined: Vec::new(),
                    });
                }
                Event::FindingJoined(joined) => {
                    if let Some(case) = case.as_mut() {
                        case.joined.push(joined.clone());
                    }
                }
                _ => {}
            }
        }
        case
    }

    /// Appends one record (durable before it returns).
    pub fn append(&mut self, event: Event) -> Result<(), CaseError> {
        let journal = if self.path.exists() {
            FileJournal::open_for_resume(&self.path, self.key.clone().map(ChainKey::from))?.0
        } else {
            let id = self
                .path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("case")
                .to_owned();
            FileJournal::create(&self.path, id, self.key.clone().map(ChainKey::from))?
        };
        journal.append(&event)?;
        self.records = crate::journal::read(&self.path)?;
        Ok(())
    }
}

/// Every case index in the journal directory, read (not locked: listing changes nothing).
pub fn all(journal_dir: &Path) -> Vec<(PathBuf, Result<Vec<Record>, String>)> {
    let folder = journal_dir.join("cases");
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let records = crate::journal::read(&path).map_err(|e| e.to_string());
            (path, records)
        })
        .collect()
}
