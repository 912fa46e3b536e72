//! Everything that makes a well-formed YAML document a valid runbook, checked on the node tree
//! so every error has a position and all of them are reported at once: structure (against the
//! JSON Schema of the model), version, names, actions and their inputs, templates and what they
//! reference, durations, parameter patterns and defaults.

use std::collections::HashMap;

use regex::Regex;
use serde_json::Value;

use super::duration;
use super::node::{Kind, Node};
use super::schema_check::Checker;
use crate::actions;
use crate::diagnostic::{Diagnostic, Pos, did_you_mean};
use crate::schema;
use crate::template::{self, ALLOWED_HELPERS, ROOTS, RUN_FIELDS, Reference, TemplateError};

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
    item: bool,
    /// Parameter defaults may only read `run.*`.
    run_only: bool,
    /// Trigger parameters may only read `event.*`.
    event_only: bool,
}

fn identifier() -> Regex {
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
        let structure = schema::structure_schema();
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
    }

    fn triggers(&mut self, triggers: &Node, parameters: Option<&Node>) {
        let scope = Scope {
            earlier: &[],
            later: &[],
            current: None,
            item: false,
            run_only: false,
            event_only: true,
        };
        let required: Vec<String> = parameters
            .map(|p| {
                p.entries()
                    .iter()
                    .filter(|(_, param)| param.get("default").is_none())
                    .filter_map(|(k, _)| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut names: HashMap<String, u32> = HashMap::new();
        for trigger in triggers.items() {
            if let Some(name) = trigger.get("name")
                && let Some(text) = name.as_str()
            {
                if let Some(line) = names.get(text) {
                    self.out.push(
                        Diagnostic::new(name.pos, format!("duplicate trigger name `{text}`"))
                            .with_help(format!("`{text}` is first used on line {line}")),
                    );
                } else {
                    names.insert(text.to_owned(), name.pos.line);
                }
            }
            if let Some(pattern) = trigger.get("pattern") {
                crate::trigger::check::check_pattern(pattern, &mut self.out);
            }
            let given = trigger.get("parameters");
            for (key, value) in given.map(Node::entries).unwrap_or_default() {
                let Some(name) = key.as_str() else { continue };
                if !self.params.iter().any(|p| p == name) {
                    let mut diagnostic = Diagnostic::new(
                        key.pos,
                        format!("trigger sets unknown parameter `{name}`"),
                    );
                    if let Some(help) = did_you_mean(name, self.params.iter().map(String::as_str)) {
                        diagnostic = diagnostic.with_help(help);
                    }
                    self.out.push(diagnostic);
                }
                if let Some(text) = value.as_str()
                    && template::is_template(text)
                {
                    self.template(value, text, &scope);
                }
            }
            if let Some(key) = trigger.get("dedupe_key")
                && let Some(text) = key.as_str()
                && template::is_template(text)
            {
                self.template(key, text, &scope);
            }
            for name in &required {
                if given.and_then(|g| g.get(name)).is_none() {
                    let at = trigger.get("name").map_or(trigger.pos, |n| n.pos);
                    self.out.push(Diagnostic::new(
                        at,
                        format!("trigger does not set required parameter `{name}`"),
                    ));
                }
            }
        }
    }

    fn parameters(&mut self, parameters: &Node) {
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

    fn parameter_default(
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

    fn steps(&mut self, steps: &Node) {
        let ident = identifier();
        // Every id with its line, so references to later steps can say where they are.
        let all: Vec<(String, u32)> = steps
            .items()
            .iter()
            .filter_map(|s| {
                s.get("id")
                    .and_then(|id| Some((id.as_str()?.to_owned(), id.pos.line)))
            })
            .collect();
        let mut first_seen: HashMap<String, u32> = HashMap::new();
        let mut index_in_all = 0;
        for step in steps.items() {
            let id_node = step.get("id");
            let id = id_node.and_then(Node::as_str);
            if let (Some(node), Some(id)) = (id_node, id) {
                if !ident.is_match(id) {
                    self.error(node.pos, format!("step id `{id}` must start with a letter and contain only letters, digits and `_`"));
                }
                if let Some(line) = first_seen.get(id) {
                    self.out.push(
                        Diagnostic::new(node.pos, format!("duplicate step id `{id}`"))
                            .with_help(format!("`{id}` is first used on line {line}")),
                    );
                } else {
                    first_seen.insert(id.to_owned(), node.pos.line);
                }
            }
            let position = if id.is_some() {
                index_in_all
            } else {
                index_in_all.min(all.len())
            };
            let scope_item = step.get("for_each").is_some();
            let scope = Scope {
                earlier: &all[..position.min(all.len())],
                later: &all[position.min(all.len())..],
                current: id,
                item: scope_item,
                run_only: false,
                event_only: false,
            };
            self.step(step, &scope);
            if id.is_some() {
                index_in_all += 1;
            }
        }
    }

    fn step(&mut self, step: &Node, scope: &Scope) {
        if let Some(action) = step.get("action")
            && let Some(name) = action.as_str()
        {
            match actions::find(name) {
                Some(info) => {
                    let input_schema =
                        serde_json::to_value((info.input_schema)()).unwrap_or(Value::Bool(true));
                    let empty = Node {
                        pos: action.pos,
                        kind: Kind::Map(Vec::new()),
                    };
                    let with = step.get("with").unwrap_or(&empty);
                    if matches!(with.kind, Kind::Map(_)) {
                        Checker::new(&input_schema, true).check(with, "with", &mut self.out);
                    }
                }
                None => {
                    let mut diagnostic =
                        Diagnostic::new(action.pos, format!("unknown action `{name}`"));
                    diagnostic = match did_you_mean(name, actions::names()) {
                        Some(help) => diagnostic.with_help(help),
                        None => diagnostic.with_help("`firebreak schema` lists every action"),
                    };
                    self.out.push(diagnostic);
                }
            }
        }
        if let Some(timeout) = step.get("timeout")
            && let Some(text) = timeout.as_str()
            && let Err(message) = duration::parse(text)
        {
            self.error(timeout.pos, message);
        }
        if let Some(concurrency) = step.get("concurrency")
            && step.get("for_each").is_none()
        {
            self.error(
                concurrency.pos,
                "`concurrency` only applies to a step with `for_each`",
            );
        }
        if let Some(for_each) = step.get("for_each") {
            let outer = Scope {
                item: false,
                ..*scope
            };
            match &for_each.kind {
                Kind::Str(text) if template::is_template(text) => {
                    self.template(for_each, text, &outer)
                }
                Kind::Seq(_) => self.templates_in(for_each, &outer),
                _ => self.out.push(
                    Diagnostic::new(
                        for_each.pos,
                        format!(
                            "`for_each` must be a template or a list, found {}",
                            for_each.describe()
                        ),
                    )
                    .with_help("for example `for_each: \"{{params.instance_ids}}\"`"),
                ),
            }
        }
        if let Some(when) = step.get("when") {
            self.templates_in(when, scope);
        }
        if let Some(with) = step.get("with") {
            self.templates_in(with, scope);
        }
    }

    fn templates_in(&mut self, node: &Node, scope: &Scope) {
        for string in node.strings() {
            if let Some(text) = string.as_str()
                && template::is_template(text)
            {
                self.template(string, text, scope);
            }
        }
    }

    fn template(&mut self, node: &Node, text: &str, scope: &Scope) {
        let analysis = match template::analyze(text) {
            Ok(analysis) => analysis,
            Err(TemplateError::Syntax { message, line, col }) => {
                let pos = if line <= 1 {
                    let offset = char_to_byte(text, col.saturating_sub(1));
                    self.position_in(node, text, offset, 1)
                } else {
                    node.pos
                };
                self.error(
                    pos,
                    format!("template syntax error: {}", syntax_message(&message)),
                );
                return;
            }
            Err(other) => {
                self.error(node.pos, other.to_string());
                return;
            }
        };
        for (what, offset) in &analysis.unsupported {
            let pos = self.position_in(node, text, *offset, 3);
            self.error(pos, format!("{what} in templates"));
        }
        for (helper, offset) in &analysis.helpers {
            if !ALLOWED_HELPERS.contains(&helper.as_str()) {
                let pos = self.position_in(node, text, *offset, helper.chars().count());
                let mut diagnostic =
                    Diagnostic::new(pos, format!("unknown template helper `{helper}`"));
                diagnostic = match did_you_mean(helper, ALLOWED_HELPERS.iter().copied()) {
                    Some(help) => diagnostic.with_help(help),
                    None => diagnostic
                        .with_help(format!("available helpers: {}", ALLOWED_HELPERS.join(", "))),
                };
                self.out.push(diagnostic);
            }
        }
        for reference in &analysis.references {
            if let Some(diagnostic) = self.reference(reference, scope) {
                let pos =
                    self.position_in(node, text, reference.offset, reference.raw.chars().count());
                self.out.push(Diagnostic { pos, ..diagnostic });
            }
        }
    }

    /// The problem with one reference, if any (position filled in by the caller).
    fn reference(&self, reference: &Reference, scope: &Scope) -> Option<Diagnostic> {
        let segments = &reference.segments;
        let root = reference.root();
        let second = segments.get(1).map(String::as_str);
        let err = |message: String| Some(Diagnostic::new(Pos::UNKNOWN, message));
        if scope.event_only && root != "event" {
            return err(format!(
                "trigger parameters can only use `event.*`, not `{}`",
                reference.raw
            ));
        }
        if scope.run_only && root != "run" {
            return err(format!(
                "a parameter default can only use `run.*` ({}), not `{}`",
                RUN_FIELDS.join(", "),
                reference.raw
            ));
        }
        match root {
            "params" => {
                let name = second?;
                if self.params.iter().any(|p| p == name) {
                    return None;
                }
                let diagnostic =
                    Diagnostic::new(Pos::UNKNOWN, format!("unknown parameter `{name}`"));
                Some(
                    match did_you_mean(name, self.params.iter().map(String::as_str)) {
                        Some(help) => diagnostic.with_help(help),
                        None => diagnostic.with_help("declare it under `parameters:`"),
                    },
                )
            }
            "steps" => {
                let Some(id) = second else {
                    return err("`steps` needs a step id, e.g. `steps.isolate.outputs`".into());
                };
                if scope.current == Some(id) {
                    return err(format!("step `{id}` cannot use its own outputs"));
                }
                if let Some((_, line)) = scope.later.iter().find(|(s, _)| s == id) {
                    return Some(Diagnostic::new(
                        Pos::UNKNOWN,
                        format!(
                            "step `{id}` runs later (line {line}); only earlier steps' outputs can be used"
                        ),
                    ));
                }
                if !scope.earlier.iter().any(|(s, _)| s == id) {
                    let diagnostic = Diagnostic::new(Pos::UNKNOWN, format!("unknown step `{id}`"));
                    return Some(
                        match did_you_mean(id, scope.earlier.iter().map(|(s, _)| s.as_str())) {
                            Some(help) => diagnostic.with_help(help),
                            None => diagnostic,
                        },
                    );
                }
                match segments.get(2).map(String::as_str) {
                    None | Some("outputs" | "status") => None,
                    Some(other) => err(format!(
                        "`steps.{id}.{other}` is not available; use `steps.{id}.outputs.<name>` or `steps.{id}.status`"
                    )),
                }
            }
            "run" => match second {
                Some(field) if RUN_FIELDS.contains(&field) => None,
                Some(field) => err(format!(
                    "unknown field `run.{field}`; `run` has {}",
                    RUN_FIELDS.join(", ")
                )),
                None => None,
            },
            "item" if scope.item => None,
            "item" => err("`item` is only defined in a step with `for_each`".into()),
            "event" => None,
            other => {
                let diagnostic = Diagnostic::new(
                    Pos::UNKNOWN,
                    format!(
                        "unknown template variable `{other}`; templates read params.*, steps.<id>.outputs.*, event.*, run.* and item"
                    ),
                );
                Some(match did_you_mean(other, ROOTS.iter().copied()) {
                    Some(help) => diagnostic.with_help(help),
                    None => diagnostic,
                })
            }
        }
    }

    /// Where byte `offset` of a template string is in the source file. Exact for one-line
    /// plain and quoted scalars; the scalar's own position otherwise.
    fn position_in(&self, node: &Node, text: &str, offset: usize, len: usize) -> Pos {
        let offset = offset.min(text.len());
        if text[..offset].contains('\n') || node.pos.line == 0 {
            return node.pos;
        }
        let line = self
            .source_lines
            .get(node.pos.line as usize - 1)
            .copied()
            .unwrap_or("");
        let start = node.pos.col.saturating_sub(1) as usize;
        let opening = line.chars().nth(start);
        let quote = match opening {
            Some('"' | '\'') => 1,
            Some('|' | '>') => return node.pos,
            _ => 0,
        };
        let before = text[..offset].chars().count() as u32;
        node.pos.shifted(quote + before, len as u32)
    }
}

fn char_to_byte(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
}

/// The parser's own message lists every grammar rule it expected; say it plainly instead.
fn syntax_message(message: &str) -> String {
    if message.contains("expected") && message.len() > 80 {
        "malformed or unclosed `{{ }}` expression here".to_owned()
    } else {
        last_line(message).to_owned()
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
