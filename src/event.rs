//! Reading a triggering event (an EventBridge event as JSON) from a file or stdin.

use std::io::Read;
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

/// Reads JSON from `path`, or from stdin when `path` is `-`.
pub fn read(path: &Path) -> Result<Value, EventError> {
    let name = path.display().to_string();
    let text = if name == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| EventError::Read {
                path: name.clone(),
                source,
            })?;
        text
    } else {
        std::fs::read_to_string(path).map_err(|source| EventError::Read {
            path: name.clone(),
            source,
        })?
    };
    serde_json::from_str(&text).map_err(|e| EventError::Json {
        path: name,
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
