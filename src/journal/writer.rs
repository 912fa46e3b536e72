//! [`FileJournal`]: the journal as a local file. Records are numbered and chained under a mutex
//! in the order they arrive, then made durable by group commit: whoever finds no sync running
//! writes every record waiting (one `write`, one `fdatasync`), and each caller returns only once
//! its own records are on disk. Concurrent branches share a sync; none gets ahead of its record.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use serde_json::{Map, Value};

use super::chain::{self, ChainKey, GENESIS};
use super::error::JournalError;
use super::lines::{Tail, chain_records};
use super::{AppendedRecord, Clock, JournalSink};

/// A second home for every line, written before the file: the shared table a worker's local
/// journal mirrors (`--journal dynamodb://TABLE`). The lines are stored first so that the file
/// never holds a record the shared copy refused — a refusal (another worker took the run over)
/// breaks this journal before anything it describes is done.
pub trait Replica: Send + Sync {
    /// Stores `lines` (whole lines, newlines included) as records `first_seq..`.
    fn store(&self, first_seq: u64, lines: &[u8]) -> Result<(), JournalError>;
}

/// A journal file. Appends from several threads are serialized, so seqs stay consecutive and
/// every record chains to the one written just before it.
pub struct FileJournal {
    path: PathBuf,
    run_id: String,
    key: Option<ChainKey>,
    /// Stamps each record's `ts`; the wall clock unless a test fixes it.
    clock: Option<Clock>,
    /// Where each line goes before the file, if anywhere.
    replica: Option<Arc<dyn Replica>>,
    state: Mutex<State>,
    /// Signalled when a group commit ends.
    synced: Condvar,
}

#[derive(Debug)]
pub(super) struct State {
    file: Arc<File>,
    next_seq: u64,
    /// H(last line): the next record's `prev`.
    prev: String,
    /// The last record's `hash`.
    head: Option<String>,
    /// Lines numbered and chained but not yet written.
    pending: Vec<u8>,
    /// The last seq on disk.
    durable: u64,
    /// A caller is writing and syncing `pending` now.
    syncing: bool,
    /// Syncs made since the journal was opened (the benchmark reports them).
    syncs: u64,
    /// Set when a write or sync failed: the file's tail is then unknown, and appending more
    /// would chain onto something that may not be there.
    broken: bool,
}

impl State {
    /// The state of a journal whose last durable record is `next_seq - 1`.
    pub(super) fn new(file: File, next_seq: u64, prev: String, head: Option<String>) -> State {
        State {
            file: Arc::new(file),
            next_seq,
            prev,
            head,
            pending: Vec::new(),
            durable: next_seq - 1,
            syncing: false,
            syncs: 0,
            broken: false,
        }
    }
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
        let state = State::new(file, 1, GENESIS.to_owned(), None);
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
            replica: None,
            state: Mutex::new(state),
            synced: Condvar::new(),
        }
    }

    /// Stamps records with `clock` instead of the wall clock (tests that compare bytes).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Stores every line in `replica` before the file (see [`Replica`]).
    pub fn with_replica(mut self, replica: Arc<dyn Replica>) -> Self {
        self.replica = Some(replica);
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

    /// Numbers, chains and queues `records` (all or none: an encoding error queues nothing),
    /// then waits until the last of them is durable.
    fn append_all(
        &self,
        records: Vec<(&str, Map<String, Value>)>,
    ) -> Result<Vec<AppendedRecord>, JournalError> {
        let mut state = self.lock()?;
        if state.broken {
            return Err(JournalError::Broken {
                path: self.path.clone(),
            });
        }
        let tail = Tail {
            next_seq: state.next_seq,
            prev: state.prev.clone(),
        };
        let chained = chain_records(
            &self.run_id,
            self.key_bytes(),
            self.clock.as_ref(),
            &tail,
            records,
        )?;
        let Some(last) = chained.appended.last() else {
            return Ok(chained.appended);
        };
        for line in &chained.lines {
            state.pending.extend_from_slice(line);
        }
        state.next_seq = chained.tail.next_seq;
        state.prev = chained.tail.prev;
        state.head = Some(last.hash.clone());
        let last = last.seq;
        self.wait_durable(state, last)?;
        Ok(chained.appended)
    }

    /// Returns once record `seq` is on disk: writes and syncs everything pending itself when
    /// no other caller is doing so, else waits for that caller's sync.
    fn wait_durable<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        seq: u64,
    ) -> Result<(), JournalError> {
        loop {
            if state.durable >= seq {
                return Ok(());
            }
            if state.broken {
                return Err(JournalError::Broken {
                    path: self.path.clone(),
                });
            }
            if state.syncing {
                state = self.synced.wait(state).map_err(|_| JournalError::Broken {
                    path: self.path.clone(),
                })?;
                continue;
            }
            state.syncing = true;
            let lines = std::mem::take(&mut state.pending);
            let upto = state.next_seq - 1;
            let first = state.durable + 1;
            let file = state.file.clone();
            drop(state);
            if let Some(replica) = &self.replica
                && let Err(refused) = replica.store(first, &lines)
            {
                state = self.lock()?;
                state.syncing = false;
                state.broken = true;
                self.synced.notify_all();
                return Err(refused);
            }
            let written = (&*file).write_all(&lines).and_then(|()| file.sync_data());
            state = self.lock()?;
            state.syncing = false;
            state.syncs += 1;
            match written {
                Ok(()) => state.durable = upto,
                Err(source) => {
                    state.broken = true;
                    self.synced.notify_all();
                    return Err(JournalError::Write {
                        path: self.path.clone(),
                        seq: first,
                        source,
                    });
                }
            }
            self.synced.notify_all();
        }
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
    /// Durable before it returns (shared with concurrent appends: group commit).
    fn append_fields(
        &self,
        kind: &str,
        payload: Map<String, Value>,
    ) -> Result<AppendedRecord, JournalError> {
        let mut appended = self.append_all(vec![(kind, payload)])?;
        Ok(appended.remove(0))
    }

    /// One write and one sync for all of them.
    fn append_batch(
        &self,
        records: Vec<(&str, Map<String, Value>)>,
    ) -> Result<Vec<AppendedRecord>, JournalError> {
        self.append_all(records)
    }

    /// How many syncs made the records appended so far durable (fewer than records when
    /// concurrent appends shared them).
    fn syncs(&self) -> Option<u64> {
        self.lock().ok().map(|s| s.syncs)
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn head(&self) -> Option<String> {
        self.lock().ok().and_then(|s| s.head.clone())
    }
}
