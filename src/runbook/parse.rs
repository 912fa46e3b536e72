//! YAML text → node tree (serde-saphyr, with positions), bounded so a hostile document (alias
//! bomb, huge input) fails fast. Duplicate keys are rejected by the parser.

use super::node::Node;
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
