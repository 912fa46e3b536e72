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
    NotAnObject { path: String, found: &'static str },
}

/// EventBridge refuses larger events (`PutEvents` entries are at most 256 KB): anything bigger
/// was not delivered by it, and parsing it only costs memory.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

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
    if text.len() > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge {
            path: name.to_owned(),
            bytes: text.len(),
        });
    }
    let value: Value = serde_json::from_str(text).map_err(|e| EventError::Json {
        path: name.to_owned(),
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })?;
    let found = match &value {
        Value::Object(_) => return Ok(value),
        Value::Array(_) => "a list",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    };
    Err(EventError::NotAnObject {
        path: name.to_owned(),
        found,
    })
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
    fn only_an_object_of_at_most_256_kb_is_an_event() {
        assert!(parse("e", r#"{"source": "aws.guardduty"}"#).is_ok());
        let list = parse("e", "[1]").unwrap_err().to_string();
        assert_eq!(
            list,
            "e: an event must be a JSON object (an EventBridge event), found a list"
        );
        let big = format!(r#"{{"padding": "{}"}}"#, "A".repeat(MAX_EVENT_BYTES));
        assert!(
            parse("e", &big)
                .unwrap_err()
                .to_string()
                .contains("at most 256 KB")
        );
    }
}
