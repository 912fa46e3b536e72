//! Reading a journal back: leniently for display ([`read_records`]) and strictly for trust
//! ([`verify`]).

use std::fmt;
use std::path::Path;

use serde_json::Value;

use super::error::{JournalError, at_seq};
use super::scan::scan;

/// What [`verify`] found. `problem` names the first bad line; everything before it checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Records that checked out (all of them when there is no problem).
    pub records: usize,
    /// The `hash` of the last record that checked out.
    pub head: Option<String>,
    /// Whether a `run_finished` record is among them; a journal cut after whole lines is intact
    /// but not complete.
    pub complete: bool,
    pub problem: Option<Problem>,
}

impl Verification {
    /// Intact: no problem found. Says nothing about whether the run finished.
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line number.
    pub line: usize,
    /// The record's seq when it could be read.
    pub seq: Option<u64>,
    pub kind: ProblemKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// A record was edited, deleted, inserted, reordered or forged.
    Tampered,
    /// The last line is a partial write (a crash mid-append), or the file is empty. Resume can
    /// repair it; it is no sign of tampering.
    Torn,
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = self.head.as_deref().unwrap_or("none");
        match &self.problem {
            Some(p) if p.kind == ProblemKind::Tampered => {
                write!(
                    f,
                    "tampered: line {}{}: {}",
                    p.line,
                    at_seq(p.seq),
                    p.message
                )
            }
            Some(p) => write!(f, "torn: line {}: {}", p.line, p.message),
            None if self.complete => write!(f, "ok: {} records, head {head}", self.records),
            None => write!(
                f,
                "incomplete: {} records, head {head}, no run_finished record \
                 (the run crashed or is still running)",
                self.records
            ),
        }
    }
}

/// Checks the whole chain of the journal at `path`. `Err` only when the file cannot be read;
/// whatever is wrong with its content is in [`Verification::problem`].
pub fn verify(path: &Path, key: Option<&[u8]>) -> Result<Verification, JournalError> {
    let bytes = read_bytes(path)?;
    let scan = scan(&bytes, key);
    Ok(Verification {
        records: scan.records.len(),
        head: scan.head,
        complete: scan.complete,
        problem: scan.problem,
    })
}

/// All records, without checking hashes — for showing a journal, not for trusting it. A torn
/// last line (a crash mid-append) is left out; an unparsable line before it is an error.
pub fn read_records(path: &Path) -> Result<Vec<Value>, JournalError> {
    let bytes = read_bytes(path)?;
    let mut records = Vec::new();
    let mut rest = bytes.as_slice();
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            break; // no final newline: torn
        };
        let is_last = end + 1 == rest.len();
        match serde_json::from_slice::<Value>(&rest[..end]) {
            Ok(record @ Value::Object(_)) => records.push(record),
            Err(_) if is_last => break,
            Ok(_) => return Err(parse_error(path, number, "not an object".into())),
            Err(e) => return Err(parse_error(path, number, e.to_string())),
        }
        rest = &rest[end + 1..];
    }
    Ok(records)
}

fn parse_error(path: &Path, line: usize, message: String) -> JournalError {
    JournalError::Parse {
        path: path.to_owned(),
        line,
        message,
    }
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, JournalError> {
    std::fs::read(path).map_err(|source| JournalError::Read {
        path: path.to_owned(),
        source,
    })
}
