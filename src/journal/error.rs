//! What can go wrong with a journal. Problems *found in* a journal by [`super::verify`] are not
//! errors but findings ([`super::Problem`]); these errors are for failing to do the job at all.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("failed to create journal {}: it already exists (resume the run instead)", .path.display())]
    Exists { path: PathBuf },
    #[error("failed to create journal {}: {source}", .path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read journal {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read journal {}: line {line} is not a JSON object: {message}", .path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("failed to append record seq {seq} to journal {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        seq: u64,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "failed to append to journal {}: an earlier write failed, so its tail is unknown; \
         reopen it for resume",
        .path.display()
    )]
    Broken { path: PathBuf },
    #[error("failed to append a {kind:?} record: payload key {key:?} is reserved")]
    ReservedKey { kind: String, key: String },
    #[error("failed to encode record seq {seq}: {source}")]
    Encode {
        seq: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to format the timestamp of record seq {seq}: {source}")]
    Clock {
        seq: u64,
        #[source]
        source: time::error::Format,
    },
    #[error("failed to resume journal {}: line {line}{}: {message}", .path.display(), at_seq(*.seq))]
    Tampered {
        path: PathBuf,
        line: usize,
        seq: Option<u64>,
        message: String,
    },
    #[error("failed to resume journal {}: it holds no complete record", .path.display())]
    Empty { path: PathBuf },
    #[error("failed to append record seq {seq} to journal {location}: {message}")]
    Store {
        location: String,
        seq: u64,
        message: String,
    },
    #[error(
        "failed to append record seq {seq} to journal {location}: another writer appended it \
         first (the run was taken over); this writer stops"
    )]
    Taken { location: String, seq: u64 },
    #[error("failed to read journal {location}: {message}")]
    StoreRead { location: String, message: String },
    #[error("failed to truncate the torn tail of journal {}: {source}", .path.display())]
    Truncate {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// ` (seq N)` when the record's seq could be read, so messages name the record when they can.
pub(crate) fn at_seq(seq: Option<u64>) -> String {
    seq.map(|s| format!(" (seq {s})")).unwrap_or_default()
}
