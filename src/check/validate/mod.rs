//! Everything that makes a well-formed YAML document a valid runbook, checked on the node tree
//! so every error has a position and all of them are reported at once: structure (against the
//! JSON Schema of the model), version, names, actions and their inputs, templates and what they
//! reference, durations, parameter patterns and defaults. One file per concern: `params`,
//! `steps` (the part that needs the action catalogue), `triggers`, `references` (templates).

mod cases;
mod params;
mod references;
mod steps;
mod triggers;

use regex::Regex;

use crate::diagnostic::{Diagnostic, Pos};
use crate::runbook::model::structure_schema;
use crate::runbook::node::{Kind, Node};
use crate::runbook::schema_check::Checker;

/// The format version this firebreak reads.
pub const FORMAT_VERSION: i64 = 1;

/// Validates a parsed document. `source` is the text it came from (to place template errors
/// precisely inside quoted scalars).
pub fn validate(root: &Node, source: &str) -> Vec<Diagnostic> {
    let mut v = Validator {
        source_lines: source.lines().collect(),
        out: Vec::new(),
        params: Vec::new(),
    };
    v.run(root);
    v.out.sort_by_key(|d| d.pos);
    v.out.dedup();
    v.out
}

struct Validator<'s> {
    source_lines: Vec<&'s str>,
    out: Vec<Diagnostic>,
    /// Declared parameter names.
    params: Vec<String>,
}

/// What a template may reference where it stands.
struct Scope<'a> {
    /// Step ids before the current step, with the line they are defined on.
    earlier: &'a [(String, u32)],
    /// Step ids from the current one on.
    later: &'a [(String, u32)],
    current: Option<&'a str>,
    /// Inner steps' ids with their group's: read from outside only through the group.
    inner: &'a [(String, String)],
    /// The group the current step runs in.
    group: Option<&'a str>,
    item: bool,
    /// Parameter defaults may only read `run.*`.
    run_only: bool,
    /// Trigger parameters may only read `event.*`.
    event_only: bool,
}

impl Scope<'static> {
    /// Where trigger templates are checked: they read the event only.
    fn events_only() -> Scope<'static> {
        Scope {
            earlier: &[],
            later: &[],
            current: None,
            inner: &[],
            group: None,
            item: false,
            run_only: false,
            event_only: true,
        }
    }
}

pub(super) fn identifier() -> Regex {
    Regex::new(r"^[A-Za-z][A-Za-z0-9_]*$").expect("static regex")
}

impl Validator<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.out.push(Diagnostic::new(pos, message));
    }

    fn run(&mut self, root: &Node) {
        if !matches!(root.kind, Kind::Map(_)) {
            self.error(
                root.pos,
                format!("a runbook must be a mapping, found {}", root.describe()),
            );
            return;
        }
        let structure = structure_schema();
        Checker::new(&structure, false).check(root, "", &mut self.out);

        if let Some(version) = root.get("version")
            && let Kind::Int(v) = version.kind
            && v != FORMAT_VERSION
        {
            self.out.push(
                Diagnostic::new(
                    version.pos,
                    format!("unsupported runbook version {v}; this firebreak reads version {FORMAT_VERSION}"),
                )
                .with_help("set `version: 1`"),
            );
        }
        if let Some(name) = root.get("name")
            && let Some(text) = name.as_str()
            && !Regex::new(r"^[a-z0-9][a-z0-9-]*$")
                .expect("static regex")
                .is_match(text)
        {
            self.error(
                name.pos,
                format!("runbook name `{text}` must be lowercase letters, digits and dashes"),
            );
        }
        if let Some(parameters) = root.get("parameters") {
            self.parameters(parameters);
        }
        if let Some(steps) = root.get("steps") {
            self.steps(steps);
        }
        if let Some(triggers) = root.get("triggers") {
            self.triggers(triggers, root.get("parameters"));
        }
        if let Some(limits) = root.get("limits") {
            self.limits(limits);
        }
        self.cases(root);
    }

    /// A hard cap below the default limit could never be used.
    fn limits(&mut self, limits: &Node) {
        let int = |key: &str| match limits.get(key).map(|n| &n.kind) {
            Some(Kind::Int(v)) => Some(*v),
            _ => None,
        };
        if let (Some(hard), Some(node)) = (int("max_targets_hard"), limits.get("max_targets_hard"))
        {
            let default = int("max_targets").unwrap_or(10);
            if hard < default {
                self.out.push(
                    Diagnostic::new(
                        node.pos,
                        format!(
                            "limits.max_targets_hard ({hard}) is below limits.max_targets ({default})"
                        ),
                    )
                    .with_help("the hard cap is how far `run --max-targets` may raise the limit"),
                );
            }
        }
    }
}

pub(super) fn last_line(text: &str) -> &str {
    text.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
}
