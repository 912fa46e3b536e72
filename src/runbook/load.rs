//! Reading a runbook file: YAML → node tree (serde-saphyr, with positions) → validation →
//! the typed model.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::model::Runbook;
use super::node::Node;
use super::validate;
use crate::diagnostic::{Diagnostic, Pos};

/// Bounds on YAML parsing, so a hostile runbook (alias bomb, huge document) fails fast.
fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    // `yes`/`no`/`on`/`off` stay strings: a runbook says `true` or `false`.
    options.strict_booleans = true;
    options.with_snippet = false;
    options.alias_limits.max_total_replayed_events = 10_000;
    options.alias_limits.max_alias_expansions_per_anchor = 100;
    options
}

/// Parses YAML text into a node tree; a syntax error, duplicate key or exceeded budget is a
/// single diagnostic (the parser cannot go on after it).
pub fn parse_yaml(text: &str) -> Result<Node, Diagnostic> {
    serde_saphyr::from_str_with_options::<Node>(text, yaml_options()).map_err(|e| {
        let pos = e
            .location()
            .map(|l| {
                Pos::new(
                    u32::try_from(l.line()).unwrap_or(0),
                    u32::try_from(l.column()).unwrap_or(0),
                    1,
                )
            })
            .unwrap_or(Pos::UNKNOWN);
        Diagnostic::new(pos, yaml_message(&e))
    })
}

/// The parser's message without its own location suffix (we print ours in front).
fn yaml_message(error: &serde_saphyr::Error) -> String {
    let text = error.without_snippet().to_string();
    let text = text.lines().next().unwrap_or_default().trim();
    let text = match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => text,
    };
    let text = text.trim_start_matches("error: ").trim_end_matches(':');
    if text.is_empty() {
        "invalid YAML".to_owned()
    } else {
        format!("invalid YAML: {text}")
    }
}

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
