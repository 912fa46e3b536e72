//! Reading a triggering event (an EventBridge event as JSON). The command line reads stdin
//! itself (`--event -`) and hands the text to [`parse`].

use std::path::Path;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("failed to read event {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: invalid event JSON: {message}")]
    Json {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: an event is at most 256 KB (EventBridge's limit); this one is {bytes} bytes")]
    TooLarge { path: String, bytes: usize },
    #[error("{path}: an event must be a JSON object (an EventBridge event), found {found}")]
    NotAnObject { path: String, found: String },
}

/// EventBridge refuses larger events (`PutEvents` entries are at most 256 KB): anything bigger
/// was not delivered by it, and parsing it only costs memory.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Events in one batch (`dispatch` of a list): SQS hands out at most ten messages at once.
pub const MAX_BATCH: usize = 10;

/// Reads an event from a file.
pub fn read(path: &Path) -> Result<Value, EventError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| EventError::Read {
        path: name.clone(),
        source,
    })?;
    parse(&name, &text)
}

/// Parses event JSON; `name` says where it came from in error messages.
pub fn parse(name: &str, text: &str) -> Result<Value, EventError> {
    let too_large = |bytes: usize| EventError::TooLarge {
        path: name.to_owned(),
        bytes,
    };
    // A batch holds at most ten (an SQS receive), each within the limit.
    if text.len() > MAX_BATCH * MAX_EVENT_BYTES {
        return Err(too_large(text.len()));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| EventError::Json {
        path: name.to_owned(),
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })?;
    let largest = match &value {
        Value::Array(items) => items
            .iter()
            .map(|i| serde_json::to_string(i).map_or(0, |t| t.len()))
            .max()
            .unwrap_or(0),
        _ => text.len(),
    };
    if largest > MAX_EVENT_BYTES {
        return Err(too_large(largest));
    }
    // One event, or a list of them (a batch, as `dispatch` takes from a queue).
    let found = match &value {
        Value::Object(_) => return Ok(value),
        Value::Array(items) => match items.iter().position(|i| !i.is_object()) {
            None => return Ok(value),
            Some(at) => format!("{} (item {} of the list)", kind(&items[at]), at + 1),
        },
        other => kind(other).to_owned(),
    };
    Err(EventError::NotAnObject {
        path: name.to_owned(),
        found,
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Object(_) => "an object",
        Value::Array(_) => "a list",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_objects_of_at_most_256_kb_are_events() {
        assert!(parse("e", r#"{"source": "aws.guardduty"}"#).is_ok());
        assert!(
            parse("e", r#"[{"id": "1"}, {"id": "2"}]"#).is_ok(),
            "a batch"
        );
        let list = parse("e", r#"[{"id": "1"}, 2]"#).unwrap_err().to_string();
        assert_eq!(
            list,
            "e: an event must be a JSON object (an EventBridge event), found a number (item 2 of the list)"
        );
        let text = parse("e", r#""text""#).unwrap_err().to_string();
        assert!(text.ends_with("found a string"), "{text}");
        let big = format!(r#"{{"padding": "{}"}}"#, "A".repeat(MAX_EVENT_BYTES));
        assert!(
            parse("e", &big)
                .unwrap_err()
                .to_string()
                .contains("at most 256 KB")
        );
    }
}
