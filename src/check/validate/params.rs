//! Parameters: names, patterns that compile, defaults of the right type that match their own
//! pattern (a templated default may read `run.*` only).

use regex::Regex;

use super::{Scope, Validator, identifier, last_line};
use crate::runbook::node::{Kind, Node};
use crate::template;

impl Validator<'_> {
    pub(super) fn parameters(&mut self, parameters: &Node) {
        let ident = identifier();
        for (key, param) in parameters.entries() {
            let Some(name) = key.as_str() else { continue };
            if !ident.is_match(name) {
                self.error(
                    key.pos,
                    format!("parameter name `{name}` must start with a letter and contain only letters, digits and `_`"),
                );
            }
            self.params.push(name.to_owned());
            let kind = param.get("type").and_then(Node::as_str);
            let pattern = param.get("pattern").and_then(|node| {
                let text = node.as_str()?;
                match Regex::new(&format!("^(?:{text})$")) {
                    Ok(regex) => Some(regex),
                    Err(e) => {
                        self.error(
                            node.pos,
                            format!(
                                "`pattern` is not a valid regular expression: {}",
                                last_line(&e.to_string())
                            ),
                        );
                        None
                    }
                }
            });
            if let Some(default) = param.get("default") {
                self.parameter_default(name, default, kind, pattern.as_ref());
            }
        }
    }

    pub(super) fn parameter_default(
        &mut self,
        name: &str,
        default: &Node,
        kind: Option<&str>,
        pattern: Option<&Regex>,
    ) {
        if let Some(text) = default.as_str()
            && template::is_template(text)
        {
            let scope = Scope {
                earlier: &[],
                later: &[],
                current: None,
                inner: &[],
                group: None,
                item: false,
                run_only: true,
                event_only: false,
            };
            self.template(default, text, &scope);
            return; // checked against the type and pattern once rendered
        }
        let type_ok = match (kind, &default.kind) {
            (Some("string"), Kind::Str(_))
            | (Some("integer"), Kind::Int(_))
            | (Some("boolean"), Kind::Bool(_)) => true,
            (Some("list"), Kind::Seq(items)) => {
                items.iter().all(|i| matches!(i.kind, Kind::Str(_)))
            }
            (Some(_), _) => false,
            (None, _) => true,
        };
        if !type_ok {
            let kind = kind.unwrap_or_default();
            self.error(
                default.pos,
                format!(
                    "default of `{name}` must be {}, found {}",
                    type_phrase(kind),
                    default.describe()
                ),
            );
            return;
        }
        let Some(pattern) = pattern else { return };
        let values: Vec<&Node> = match &default.kind {
            Kind::Seq(items) => items.iter().collect(),
            _ => vec![default],
        };
        for value in values {
            let text = match &value.kind {
                Kind::Str(s) => s.clone(),
                Kind::Int(i) => i.to_string(),
                _ => continue,
            };
            if !pattern.is_match(&text) {
                self.error(
                    value.pos,
                    format!(
                        "default `{text}` of `{name}` does not match its own pattern `{}`",
                        pattern_source(pattern)
                    ),
                );
            }
        }
    }
}

fn type_phrase(kind: &str) -> &'static str {
    match kind {
        "integer" => "an integer",
        "boolean" => "a boolean",
        "list" => "a list of strings",
        _ => "a string",
    }
}

fn pattern_source(regex: &Regex) -> &str {
    regex
        .as_str()
        .strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .unwrap_or(regex.as_str())
}
