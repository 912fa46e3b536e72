//! Numbering and chaining records into lines: the one place a record gets its `seq`, `ts`,
//! `prev` and `hash`, whichever backend then makes the lines durable (the file writer, the
//! DynamoDB table).

use serde_json::{Map, Value};

use super::chain;
use super::error::JournalError;
use super::record::{self, Envelope};
use super::{AppendedRecord, Clock};

/// Where a journal's chain stands: the next record's `seq` and `prev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    pub next_seq: u64,
    /// H(last line): the next record's `prev` (the genesis value before the first record).
    pub prev: String,
}

impl Tail {
    /// The tail of an empty journal.
    pub fn genesis() -> Tail {
        Tail {
            next_seq: 1,
            prev: chain::GENESIS.to_owned(),
        }
    }
}

/// Records encoded after a tail: each line (newline included), what each record is, and the
/// tail after them. Nothing is durable yet.
pub struct Chained {
    pub lines: Vec<Vec<u8>>,
    pub appended: Vec<AppendedRecord>,
    pub tail: Tail,
}

/// Numbers and chains `records` after `tail` (all or none: an encoding error gives nothing).
pub fn chain_records(
    run_id: &str,
    key: Option<&[u8]>,
    clock: Option<&Clock>,
    tail: &Tail,
    records: Vec<(&str, Map<String, Value>)>,
) -> Result<Chained, JournalError> {
    let mut seq = tail.next_seq;
    let mut prev = tail.prev.clone();
    let mut lines = Vec::with_capacity(records.len());
    let mut appended = Vec::with_capacity(records.len());
    for (kind, payload) in records {
        let ts = match clock {
            Some(clock) => clock(),
            None => record::now_ts(seq)?,
        };
        let env = Envelope {
            seq,
            ts: &ts,
            run_id,
            kind,
            prev: &prev,
        };
        let encoded = record::encode(&env, payload, key)?;
        prev = chain::digest(key, &encoded.line[..encoded.line.len() - 1]);
        lines.push(encoded.line);
        appended.push(AppendedRecord {
            seq,
            ts,
            hash: encoded.hash,
        });
        seq += 1;
    }
    Ok(Chained {
        lines,
        appended,
        tail: Tail {
            next_seq: seq,
            prev,
        },
    })
}
