//! Walking a journal's bytes line by line and checking the chain, shared by [`super::verify`]
//! (which reports what it found) and resume (which refuses or repairs).

use serde_json::{Map, Value};

use super::chain::{self, GENESIS};
use super::record;

/// The type of the record that closes a run; without it a journal is incomplete.
pub const RUN_FINISHED: &str = "run_finished";

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

/// Everything known after checking a journal up to its first problem.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// The records that checked out, in order.
    pub records: Vec<Value>,
    /// Byte length of the good prefix: where a torn tail is cut off.
    pub good_len: usize,
    pub run_id: Option<String>,
    pub last_seq: u64,
    /// H(last good line): the `prev` of the next record.
    pub prev: String,
    /// The `hash` field of the last good record.
    pub head: Option<String>,
    pub complete: bool,
    pub problem: Option<Problem>,
}

/// Checks every line in order and stops at the first problem.
pub fn scan(bytes: &[u8], key: Option<&[u8]>) -> Scan {
    let mut scan = Scan {
        prev: GENESIS.to_owned(),
        ..Scan::default()
    };
    if bytes.is_empty() {
        scan.problem = Some(problem(1, None, ProblemKind::Torn, "the journal is empty"));
        return scan;
    }
    let mut number = 0;
    while scan.good_len < bytes.len() {
        let rest = &bytes[scan.good_len..];
        let (line, terminated) = match rest.iter().position(|b| *b == b'\n') {
            Some(end) => (&rest[..end], true),
            None => (rest, false),
        };
        let is_last = line.len() + 1 >= rest.len();
        number += 1;
        if let Err(p) = check(&mut scan, line, number, terminated, is_last, key) {
            scan.problem = Some(p);
            break;
        }
        scan.good_len += line.len() + 1;
    }
    scan
}

/// Checks one line against the chain so far and, when it is good, adds it to `scan`.
fn check(
    scan: &mut Scan,
    line: &[u8],
    number: usize,
    terminated: bool,
    is_last: bool,
    key: Option<&[u8]>,
) -> Result<(), Problem> {
    let parsed = serde_json::from_slice::<Value>(line);
    if !terminated {
        // Appends write the newline in the same write as the line, so a missing one means the
        // write never completed and the caller never went on to act on it.
        let seq = parsed
            .ok()
            .and_then(|v| v.get("seq").and_then(Value::as_u64));
        let message = "the last line has no final newline (a partial write)";
        return Err(problem(number, seq, ProblemKind::Torn, message));
    }
    let map = match parsed {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(tampered(
                number,
                None,
                "the line is not a JSON object".into(),
            ));
        }
        Err(e) if is_last => {
            let message = format!("the last line is not valid JSON (a partial write): {e}");
            return Err(problem(number, None, ProblemKind::Torn, &message));
        }
        Err(e) => return Err(tampered(number, None, format!("invalid JSON: {e}"))),
    };
    let seq = map.get("seq").and_then(Value::as_u64);
    let fields = record::fields(&map).map_err(|m| tampered(number, seq, m))?;
    let seq = Some(fields.seq);
    record::check_hash(line, &fields.hash, key).map_err(|m| {
        let hint = if scan.records.is_empty() {
            key_hint(&map, key)
        } else {
            ""
        };
        tampered(number, seq, format!("{m}{hint}"))
    })?;
    let expected = scan.last_seq + 1;
    if fields.seq != expected {
        let message = format!(
            "seq {} where {expected} was expected (a record was deleted, inserted or reordered)",
            fields.seq
        );
        return Err(tampered(number, seq, message));
    }
    if fields.prev != scan.prev {
        let message = "prev does not match the previous line (a record was deleted, inserted \
                       or reordered)";
        return Err(tampered(number, seq, message.into()));
    }
    match &scan.run_id {
        Some(first) if *first != fields.run_id => {
            let message = format!(
                "run_id {:?} differs from the first record's {first:?}",
                fields.run_id
            );
            return Err(tampered(number, seq, message));
        }
        Some(_) => {}
        None => scan.run_id = Some(fields.run_id),
    }
    scan.last_seq = fields.seq;
    scan.prev = chain::digest(key, line);
    scan.head = Some(fields.hash);
    scan.complete |= fields.kind == RUN_FINISHED;
    scan.records.push(Value::Object(map));
    Ok(())
}

/// Why the first record may fail for reasons other than an edit: the key does not fit the
/// algorithm the run declared.
fn key_hint(first: &Map<String, Value>, key: Option<&[u8]>) -> &'static str {
    match (first.get("chain").and_then(Value::as_str), key) {
        (Some("hmac-sha256"), None) => {
            " (the first record declares hmac-sha256: the journal key is needed)"
        }
        (Some("hmac-sha256"), Some(_)) => {
            " (the first record declares hmac-sha256: the journal key may be wrong)"
        }
        (Some("sha256"), Some(_)) => {
            " (the first record declares sha256, but a journal key was given)"
        }
        _ => "",
    }
}

fn problem(line: usize, seq: Option<u64>, kind: ProblemKind, message: &str) -> Problem {
    Problem {
        line,
        seq,
        kind,
        message: message.to_owned(),
    }
}

fn tampered(line: usize, seq: Option<u64>, message: String) -> Problem {
    Problem {
        line,
        seq,
        kind: ProblemKind::Tampered,
        message,
    }
}
