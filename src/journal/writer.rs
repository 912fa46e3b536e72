//! [`FileJournal`]: the journal as a local file, appended to under a mutex and synced per record.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde_json::{Map, Value};

use super::chain::{self, ChainKey, GENESIS};
use super::error::JournalError;
use super::record::{self, Envelope};
use super::{AppendedRecord, Clock, JournalSink};

/// A journal file. Appends from several threads are serialized, so seqs stay consecutive and
/// every record chains to the one written just before it.
pub struct FileJournal {
    path: PathBuf,
    run_id: String,
    key: Option<ChainKey>,
    /// Stamps each record's `ts`; the wall clock unless a test fixes it.
    clock: Option<Clock>,
    state: Mutex<State>,
}

#[derive(Debug)]
pub(super) struct State {
    pub file: File,
    pub next_seq: u64,
    /// H(last line): the next record's `prev`.
    pub prev: String,
    /// The last record's `hash`.
    pub head: Option<String>,
    /// Set when a write or sync failed: the file's tail is then unknown, and appending more
    /// would chain onto something that may not be there.
    pub broken: bool,
}

impl FileJournal {
    /// Starts a new journal. Refuses to touch an existing file, so a run can never overwrite
    /// another run's record.
    pub fn create(
        path: impl AsRef<Path>,
        run_id: impl Into<String>,
        key: Option<ChainKey>,
    ) -> Result<Self, JournalError> {
        let path = path.as_ref().to_owned();
        let create_err = |source| JournalError::Create {
            path: path.clone(),
            source,
        };
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = parent {
            std::fs::create_dir_all(dir).map_err(create_err)?;
        }
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| match source.kind() {
                ErrorKind::AlreadyExists => JournalError::Exists { path: path.clone() },
                _ => create_err(source),
            })?;
        // The file's directory entry must be durable too, or the first record could vanish.
        File::open(parent.unwrap_or(Path::new(".")))
            .and_then(|dir| dir.sync_all())
            .map_err(create_err)?;
        let state = State {
            file,
            next_seq: 1,
            prev: GENESIS.to_owned(),
            head: None,
            broken: false,
        };
        Ok(Self::from_parts(path, run_id.into(), key, state))
    }

    pub(super) fn from_parts(
        path: PathBuf,
        run_id: String,
        key: Option<ChainKey>,
        state: State,
    ) -> Self {
        FileJournal {
            path,
            run_id,
            key,
            clock: None,
            state: Mutex::new(state),
        }
    }

    /// Stamps records with `clock` instead of the wall clock (tests that compare bytes).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// What the first record's `chain` field must say: `sha256` or `hmac-sha256`.
    pub fn chain(&self) -> &'static str {
        chain::algorithm(self.key_bytes())
    }

    fn key_bytes(&self) -> Option<&[u8]> {
        self.key.as_ref().map(ChainKey::as_bytes)
    }

    /// A poisoned mutex means a thread panicked mid-append; treat it like a failed write.
    fn lock(&self) -> Result<MutexGuard<'_, State>, JournalError> {
        self.state.lock().map_err(|_| JournalError::Broken {
            path: self.path.clone(),
        })
    }
}

impl std::fmt::Debug for FileJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileJournal")
            .field("path", &self.path)
            .field("run_id", &self.run_id)
            .field("chain", &self.chain())
            .finish_non_exhaustive()
    }
}

impl JournalSink for FileJournal {
    /// Writes the whole line with one `write_all` and syncs it before returning: the record is
    /// on disk before the caller's next side effect.
    fn append_fields(
        &self,
        kind: &str,
        payload: Map<String, Value>,
    ) -> Result<AppendedRecord, JournalError> {
        let mut state = self.lock()?;
        if state.broken {
            return Err(JournalError::Broken {
                path: self.path.clone(),
            });
        }
        let seq = state.next_seq;
        let ts = match &self.clock {
            Some(clock) => clock(),
            None => record::now_ts(seq)?,
        };
        let env = Envelope {
            seq,
            ts: &ts,
            run_id: &self.run_id,
            kind,
            prev: &state.prev,
        };
        let encoded = record::encode(&env, payload, self.key_bytes())?;
        let written = state
            .file
            .write_all(&encoded.line)
            .and_then(|()| state.file.sync_data());
        if let Err(source) = written {
            state.broken = true;
            return Err(JournalError::Write {
                path: self.path.clone(),
                seq,
                source,
            });
        }
        let line = &encoded.line[..encoded.line.len() - 1];
        state.prev = chain::digest(self.key_bytes(), line);
        state.head = Some(encoded.hash.clone());
        state.next_seq = seq + 1;
        Ok(AppendedRecord {
            seq,
            ts,
            hash: encoded.hash,
        })
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn head(&self) -> Option<String> {
        self.lock().ok().and_then(|s| s.head.clone())
    }
}
