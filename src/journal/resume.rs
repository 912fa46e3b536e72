//! Reopening a journal after a crash: check it, cut off a torn last line, continue the chain.

use std::fs::OpenOptions;
use std::io::Read;
use std::path::Path;

use super::chain::ChainKey;
use super::error::JournalError;
use super::read::Record;
use super::scan::{ProblemKind, scan};
use super::writer::{FileJournal, State};

/// What [`FileJournal::open_for_resume`] found, for the engine to replay and to journal.
#[derive(Debug, Clone, PartialEq)]
pub struct Resumed {
    /// Every record, in order.
    pub records: Vec<Record>,
    pub run_id: String,
    /// Set when a torn last line was cut off; the engine records the recovery.
    pub truncated: Option<TornTail>,
}

/// A partial last line removed on resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    /// Its 1-based line number.
    pub line: usize,
    /// How many bytes were removed.
    pub bytes: usize,
}

impl FileJournal {
    /// Opens an existing journal to continue it. A torn last line — a crash mid-append, so the
    /// caller never acted on it — is cut off and reported. Anything else wrong (an edit, a gap,
    /// bad JSON before the end) is refused: continuing would hide it.
    pub fn open_for_resume(
        path: impl AsRef<Path>,
        key: Option<ChainKey>,
    ) -> Result<(Self, Resumed), JournalError> {
        let path = path.as_ref().to_owned();
        let read_err = |source| JournalError::Read {
            path: path.clone(),
            source,
        };
        // One handle for reading and appending, so the file checked is the file continued.
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(read_err)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(read_err)?;
        let scan = scan(&bytes, key.as_ref().map(ChainKey::as_bytes));
        let truncated = match scan.problem {
            None => None,
            Some(p) if p.kind == ProblemKind::Tampered => {
                return Err(JournalError::Tampered {
                    path,
                    line: p.line,
                    seq: p.seq,
                    message: p.message,
                });
            }
            Some(p) => Some(TornTail {
                line: p.line,
                bytes: bytes.len() - scan.good_len,
            }),
        };
        let Some(run_id) = scan.run_id else {
            return Err(JournalError::Empty { path });
        };
        if truncated.is_some() {
            let truncate_err = |source| JournalError::Truncate {
                path: path.clone(),
                source,
            };
            file.set_len(scan.good_len as u64).map_err(truncate_err)?;
            file.sync_data().map_err(truncate_err)?;
        }
        let state = State::new(file, scan.last_seq + 1, scan.prev, scan.head);
        let journal = FileJournal::from_parts(path, run_id.clone(), key, state);
        // The scan checked each record's envelope, so every one converts.
        let records = scan
            .records
            .into_iter()
            .filter_map(Record::from_value)
            .collect();
        let resumed = Resumed {
            records,
            run_id,
            truncated,
        };
        Ok((journal, resumed))
    }
}
