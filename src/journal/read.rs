//! Reading a journal back: leniently for display ([`read`]) and strictly for trust
//! ([`verify`]).

use std::fmt;
use std::path::Path;

use serde_json::{Map, Value};

use super::error::{JournalError, at_seq};
use super::event::Event;
pub use super::scan::Problem;
use super::scan::{ProblemKind, scan};

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
    Ok(verify_bytes(&read_bytes(path)?, key))
}

/// [`verify`] of a journal's bytes (a copy read back from a seal).
pub fn verify_bytes(bytes: &[u8], key: Option<&[u8]>) -> Verification {
    let scan = scan(bytes, key);
    Verification {
        records: scan.records.len(),
        head: scan.head,
        complete: scan.complete,
        problem: scan.problem,
    }
}

/// All records, typed, without checking hashes — for showing a journal, not for trusting it. A
/// torn last line (a crash mid-append) is left out; an unparsable line before it is an error.
/// Kinds this engine does not know come back as [`super::Event::Other`].
pub fn read(path: &Path) -> Result<Vec<Record>, JournalError> {
    read_from_bytes(path, &read_bytes(path)?)
}

/// Every line as a JSON object, exactly as written (envelope and chain fields included): for
/// the journal's own tests. Everything else reads records through [`read`].
#[cfg(test)]
pub(crate) fn read_raw(path: &Path) -> Result<Vec<Value>, JournalError> {
    raw_lines(path, &read_bytes(path)?)
}

/// [`read`] of a journal's bytes; `name` stands for the file in errors.
pub fn read_from_bytes(name: &Path, bytes: &[u8]) -> Result<Vec<Record>, JournalError> {
    raw_lines(name, bytes)?
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            Record::from_value(value).ok_or_else(|| {
                parse_error(
                    name,
                    index + 1,
                    "the record lacks seq, ts, run_id or type".into(),
                )
            })
        })
        .collect()
}

fn raw_lines(path: &Path, bytes: &[u8]) -> Result<Vec<Value>, JournalError> {
    let mut records = Vec::new();
    let mut rest = bytes;
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

/// One record as read back: the envelope and its event.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub seq: u64,
    pub ts: String,
    pub run_id: String,
    pub event: Event,
    /// The chain fields as read (absent for records not read from a file).
    pub prev: Option<String>,
    pub hash: Option<String>,
}

impl Record {
    /// A parsed line (hash fields included or not); `None` when the envelope is not there.
    pub fn from_map(mut map: Map<String, Value>) -> Option<Record> {
        let seq = map.shift_remove("seq")?.as_u64()?;
        let ts = take_string(&mut map, "ts")?;
        let run_id = take_string(&mut map, "run_id")?;
        let kind = take_string(&mut map, "type")?;
        let prev = take_string(&mut map, "prev");
        let hash = take_string(&mut map, "hash");
        Some(Record {
            seq,
            ts,
            run_id,
            event: Event::from_payload(&kind, map),
            prev,
            hash,
        })
    }

    pub fn from_value(value: Value) -> Option<Record> {
        match value {
            Value::Object(map) => Record::from_map(map),
            _ => None,
        }
    }

    /// The record as one JSON object in the format's field order, chain fields last when
    /// known: for `journal show --output json`.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("seq".into(), Value::from(self.seq));
        map.insert("ts".into(), Value::from(self.ts.clone()));
        map.insert("run_id".into(), Value::from(self.run_id.clone()));
        map.insert("type".into(), Value::from(self.event.kind()));
        map.extend(self.event.payload());
        for (key, value) in [("prev", &self.prev), ("hash", &self.hash)] {
            if let Some(value) = value {
                map.insert(key.into(), Value::from(value.clone()));
            }
        }
        Value::Object(map)
    }
}

fn take_string(map: &mut Map<String, Value>, key: &str) -> Option<String> {
    match map.shift_remove(key)? {
        Value::String(s) => Some(s),
        _ => None,
    }
}
