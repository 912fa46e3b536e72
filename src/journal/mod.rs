//! The run journal: an append-only, hash-chained JSON Lines file, the durable record of what a
//! run did and the basis for resuming it after a crash.
//!
//! Each line is one record with its fields in a fixed order: `seq` (1, 2, …), `ts` (RFC 3339
//! UTC, milliseconds), `run_id`, `type`, the caller's payload fields, `prev`, and `hash` last.
//! `prev` is H(the previous line's bytes) — 64 zeros for the first record — and `hash` is H(the
//! line's bytes as written without `hash`), so any edit, deletion, insertion or reordering
//! breaks the chain at the first affected line. H is SHA-256, or HMAC-SHA-256 with a key
//! ([`ChainKey`]) so that only key holders can write records that verify; the caller declares
//! which in the first record's payload (`"chain": "sha256" | "hmac-sha256"`).
//!
//! The engine writes through [`JournalSink`] only, so a non-file backend can replace
//! [`FileJournal`] later.
//!
//! Files: [`chain`] (the hash), [`event`] (the typed vocabulary of record kinds), `record` (one
//! line), `writer` (appending), `resume` (reopening after a crash), `scan` (walking the chain),
//! `read` (reading and verifying), `lines` (numbering and chaining, for every backend).

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

pub mod chain;
pub mod custody;
mod error;
pub mod event;
pub mod evidence;
pub mod lines;
mod read;
mod record;
mod resume;
mod scan;
pub mod throughput;
mod writer;

#[cfg(test)]
mod tests;

pub use chain::ChainKey;
pub use error::JournalError;
pub use event::{Event, Mode, RunStatus, StepStatus};
pub use evidence::{Artifact, ArtifactProblem, ArtifactProblemKind, check_artifacts};
pub use read::{Problem, Record, Verification, read, read_from_bytes, verify, verify_bytes};
pub use record::RESERVED;
pub use resume::{Resumed, TornTail};
pub use scan::{ProblemKind, RUN_FINISHED};
pub use writer::{FileJournal, Replica};

/// Where each record's `ts` comes from: RFC 3339 UTC with milliseconds.
pub type Clock = Arc<dyn Fn() -> String + Send + Sync>;

/// Where the engine writes its records. Implementations must make a record durable before
/// `append` returns: the engine performs the side effect it describes right after.
pub trait JournalSink: Send + Sync {
    /// Appends one record of the journal's vocabulary.
    fn append(&self, event: &Event) -> Result<AppendedRecord, JournalError> {
        self.append_fields(event.kind(), event.payload())
    }

    /// Appends a record of type `kind` with these payload fields, in this order: the engine
    /// uses it to write an [`Event`] whose payload it has redacted. Payload keys named like the
    /// envelope fields ([`RESERVED`]) are rejected.
    fn append_fields(
        &self,
        kind: &str,
        payload: Map<String, Value>,
    ) -> Result<AppendedRecord, JournalError>;

    /// Appends several records in order as one unit where the backend can (the file: one
    /// write and one sync; a table: one transaction), all durable before it returns. Either all
    /// are journaled or, when one is refused before anything is written, none.
    fn append_batch(
        &self,
        records: Vec<(&str, Map<String, Value>)>,
    ) -> Result<Vec<AppendedRecord>, JournalError> {
        records
            .into_iter()
            .map(|(kind, payload)| self.append_fields(kind, payload))
            .collect()
    }

    /// Syncs made so far, where the backend counts them (the benchmark reports them).
    fn syncs(&self) -> Option<u64> {
        None
    }

    /// The file behind the journal, when there is one (for messages and `verify`).
    fn path(&self) -> Option<&Path>;

    /// The `hash` of the last record written, or `None` before the first.
    fn head(&self) -> Option<String>;
}

/// What was written, so the caller can refer to the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendedRecord {
    pub seq: u64,
    pub ts: String,
    pub hash: String,
}
