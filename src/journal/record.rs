//! One journal line: building it (with its hash) and checking one that was read back.
//!
//! The hash covers the exact bytes written, not a re-serialization, so verification does not
//! depend on how a JSON library happens to format numbers or escapes.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::macros::format_description;

use super::chain::{self, HEX_LEN};
use super::error::JournalError;

/// Keys the format owns; a payload using one would make records ambiguous.
pub const RESERVED: [&str; 6] = ["seq", "ts", "run_id", "type", "prev", "hash"];

/// The envelope fields every record starts with, in order.
const HEAD_KEYS: [&str; 4] = ["seq", "ts", "run_id", "type"];

/// `,"hash":"` + hex + `"}`: how every line ends.
const HASH_PREFIX: &[u8] = b",\"hash\":\"";
const HASH_TAIL_LEN: usize = HASH_PREFIX.len() + HEX_LEN + 2;

/// A line ready to write (newline included) and the hash it carries.
pub struct Encoded {
    pub line: Vec<u8>,
    pub hash: String,
}

pub struct Envelope<'a> {
    pub seq: u64,
    pub ts: &'a str,
    pub run_id: &'a str,
    pub kind: &'a str,
    pub prev: &'a str,
}

/// Serializes a record: envelope, payload in the caller's order, `prev`, and `hash` last.
pub fn encode(
    env: &Envelope<'_>,
    payload: Map<String, Value>,
    key: Option<&[u8]>,
) -> Result<Encoded, JournalError> {
    if let Some(k) = payload.keys().find(|k| RESERVED.contains(&k.as_str())) {
        return Err(JournalError::ReservedKey {
            kind: env.kind.to_owned(),
            key: k.clone(),
        });
    }
    let mut record = Map::with_capacity(payload.len() + 5);
    record.insert("seq".into(), Value::from(env.seq));
    record.insert("ts".into(), Value::from(env.ts));
    record.insert("run_id".into(), Value::from(env.run_id));
    record.insert("type".into(), Value::from(env.kind));
    record.extend(payload);
    record.insert("prev".into(), Value::from(env.prev));
    let body = serde_json::to_vec(&record).map_err(|source| JournalError::Encode {
        seq: env.seq,
        source,
    })?;
    Ok(seal(body, key))
}

/// Appends the hash of `body` (a compact JSON object without `hash`) inside its closing brace.
pub fn seal(mut body: Vec<u8>, key: Option<&[u8]>) -> Encoded {
    let hash = chain::digest(key, &body);
    body.pop(); // the closing brace; re-added after the hash
    body.extend_from_slice(HASH_PREFIX);
    body.extend_from_slice(hash.as_bytes());
    body.extend_from_slice(b"\"}\n");
    Encoded { line: body, hash }
}

/// The current time as RFC 3339 UTC with milliseconds, e.g. `2026-11-28T10:01:27.123Z`.
pub fn now_ts(seq: u64) -> Result<String, JournalError> {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::now_utc()
        .format(format)
        .map_err(|source| JournalError::Clock { seq, source })
}

/// The envelope of a parsed record, once its shape has been checked.
#[derive(Debug)]
pub struct Fields {
    pub seq: u64,
    pub run_id: String,
    pub kind: String,
    pub prev: String,
    pub hash: String,
}

/// Checks that `record` has the shape the writer produces: the envelope first, `prev` and
/// `hash` last, digests in lowercase hex. Returns why not, for the verification message.
pub fn fields(record: &Map<String, Value>) -> Result<Fields, String> {
    let keys: Vec<&str> = record.keys().map(String::as_str).collect();
    let n = keys.len();
    if n < 6 || keys[..4] != HEAD_KEYS || keys[n - 2..] != ["prev", "hash"] {
        return Err(format!(
            "malformed record: fields must start with seq, ts, run_id, type and end with \
             prev, hash (found {})",
            keys.join(", ")
        ));
    }
    let text = |name: &str| match record.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(format!("malformed record: {name} is not a string")),
    };
    let seq = record
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or_else(|| "malformed record: seq is not an unsigned integer".to_owned())?;
    text("ts")?;
    let (prev, hash) = (text("prev")?, text("hash")?);
    for (name, value) in [("prev", &prev), ("hash", &hash)] {
        if !chain::is_digest(value) {
            return Err(format!(
                "malformed record: {name} is not a hex SHA-256 digest"
            ));
        }
    }
    Ok(Fields {
        seq,
        run_id: text("run_id")?,
        kind: text("type")?,
        prev,
        hash,
    })
}

/// Recomputes the hash of a line (without its newline) and compares it with the one it carries.
pub fn check_hash(line: &[u8], hash: &str, key: Option<&[u8]>) -> Result<(), String> {
    let tail_at = line.len().saturating_sub(HASH_TAIL_LEN);
    let tail = &line[tail_at..];
    let canonical = tail.len() == HASH_TAIL_LEN
        && tail.starts_with(HASH_PREFIX)
        && &tail[HASH_PREFIX.len()..HASH_PREFIX.len() + HEX_LEN] == hash.as_bytes()
        && tail.ends_with(b"\"}");
    if !canonical {
        return Err(
            "malformed record: the line does not end with its hash field as written".to_owned(),
        );
    }
    let mut body = line[..tail_at].to_vec();
    body.push(b'}');
    let actual = chain::digest(key, &body);
    if actual == hash {
        Ok(())
    } else {
        Err(format!(
            "hash mismatch: the record says {hash}, its content hashes to {actual} \
             (the record was edited)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn env() -> Envelope<'static> {
        Envelope {
            seq: 1,
            ts: "2026-11-28T10:01:27.123Z",
            run_id: "r1",
            kind: "run_started",
            prev: chain::GENESIS,
        }
    }

    fn payload(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn line_has_the_documented_field_order_and_hash() {
        let enc = encode(&env(), payload(json!({"z": 1, "a": [true]})), None).unwrap();
        let text = std::str::from_utf8(&enc.line).unwrap();
        let body = format!(
            r#"{{"seq":1,"ts":"2026-11-28T10:01:27.123Z","run_id":"r1","type":"run_started","z":1,"a":[true],"prev":"{}"}}"#,
            chain::GENESIS
        );
        let hash = chain::digest(None, body.as_bytes());
        assert_eq!(
            text,
            format!("{},\"hash\":\"{hash}\"}}\n", &body[..body.len() - 1])
        );
        assert_eq!(enc.hash, hash);
        let line = &enc.line[..enc.line.len() - 1];
        assert_eq!(check_hash(line, &hash, None), Ok(()));
        assert!(check_hash(line, &hash, Some(b"k")).is_err());
    }

    #[test]
    fn reserved_payload_keys_are_rejected() {
        for key in RESERVED {
            let err = encode(&env(), payload(json!({ key: 1 })), None)
                .err()
                .unwrap();
            assert!(matches!(err, JournalError::ReservedKey { .. }), "{key}");
            assert!(err.to_string().contains("is reserved"));
        }
    }

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        let ts = now_ts(1).unwrap();
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
    }

    #[test]
    fn malformed_shapes_are_described() {
        let m = payload(json!({"seq": 1, "ts": "t", "run_id": "r", "type": "x", "hash": "h"}));
        assert!(fields(&m).unwrap_err().contains("malformed record"));
        assert!(check_hash(b"{}", chain::GENESIS, None).is_err());
    }
}
