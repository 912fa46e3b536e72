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
}

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
    serde_json::from_str(text).map_err(|e| EventError::Json {
        path: name.to_owned(),
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}
