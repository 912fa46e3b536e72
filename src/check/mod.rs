//! A runbook held against the catalogue (like `just`'s analyzer above its parser): reading a
//! runbook file, YAML → node tree (with positions) → validation (structure, actions and their
//! inputs, templates, triggers) → the typed model. The format itself lives in
//! [`crate::runbook`]; this layer knows the actions it may name.

mod validate;
#[cfg(test)]
mod validate_cases;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::diagnostic::{Diagnostic, Pos};
use crate::runbook::model::Runbook;
use crate::runbook::parse::parse_yaml;

pub use validate::FORMAT_VERSION;

/// Parses and validates runbook text.
pub fn from_str(text: &str) -> Result<Runbook, Vec<Diagnostic>> {
    let root = parse_yaml(text).map_err(|d| vec![d])?;
    let diagnostics = validate::validate(&root, text);
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    serde_json::from_value(root.to_json()).map_err(|e| {
        // Validation should have caught this; report it rather than panic.
        vec![Diagnostic::new(root.pos, format!("invalid runbook: {e}"))]
    })
}

/// A runbook file, read and validated.
#[derive(Debug, Clone)]
pub struct LoadedRunbook {
    pub path: PathBuf,
    pub text: String,
    /// Hex SHA-256 of the file's bytes, for the journal and reports.
    pub sha256: String,
    pub runbook: Runbook,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("failed to read runbook {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render(path, text, diagnostics))]
    Invalid {
        path: PathBuf,
        text: String,
        diagnostics: Vec<Diagnostic>,
    },
}

impl LoadError {
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            LoadError::Invalid { diagnostics, .. } => diagnostics,
            LoadError::Read { .. } => &[],
        }
    }
}

/// All diagnostics of a file, rendered one after the other.
pub fn render(path: &Path, text: &str, diagnostics: &[Diagnostic]) -> String {
    let file = path.display().to_string();
    let mut out: String = diagnostics.iter().map(|d| d.render(&file, text)).collect();
    while out.ends_with('\n') {
        out.pop();
    }
    out
}

pub fn load(path: &Path) -> Result<LoadedRunbook, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let invalid = |text: String, diagnostics| LoadError::Invalid {
        path: path.to_owned(),
        text,
        diagnostics,
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        invalid(
            String::new(),
            vec![Diagnostic::new(
                Pos::UNKNOWN,
                format!(
                    "runbook is not UTF-8 text (byte {})",
                    e.utf8_error().valid_up_to()
                ),
            )],
        )
    })?;
    match from_str(&text) {
        Ok(runbook) => Ok(LoadedRunbook {
            path: path.to_owned(),
            text,
            sha256,
            runbook,
        }),
        Err(diagnostics) => Err(invalid(text, diagnostics)),
    }
}
