//! Templates: syntax, allowed helpers, and what each reference may read where it stands
//! (earlier steps only, `item` only under `for_each`, `run.*` in defaults, `event.*` in
//! triggers), with positions inside the scalar.

use super::{Scope, Validator, last_line};
use crate::diagnostic::{Diagnostic, Pos, did_you_mean};
use crate::runbook::node::Node;
use crate::template::{
    self, ALLOWED_HELPERS, ROOTS, RUN_FIELDS, RUN_FIELDS_AT_START, Reference, TemplateError,
};

impl Validator<'_> {
    pub(super) fn templates_in(&mut self, node: &Node, scope: &Scope) {
        for string in node.strings() {
            if let Some(text) = string.as_str()
                && template::is_template(text)
            {
                self.template(string, text, scope);
            }
        }
    }

    pub(super) fn template(&mut self, node: &Node, text: &str, scope: &Scope) {
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
    pub(super) fn reference(&self, reference: &Reference, scope: &Scope) -> Option<Diagnostic> {
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
        if scope.run_only
            && (root != "run" || second.is_some_and(|f| !RUN_FIELDS_AT_START.contains(&f)))
        {
            return err(format!(
                "a parameter default can only use `run.*` ({}), not `{}`",
                RUN_FIELDS_AT_START.join(", "),
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
                if scope.group == Some(id) {
                    return err(format!(
                        "step `{id}` is the group this step runs in; its outputs exist once every item is done (this item's earlier steps are `steps.<inner>`)"
                    ));
                }
                if let Some((_, line)) = scope.later.iter().find(|(s, _)| s == id) {
                    return Some(Diagnostic::new(
                        Pos::UNKNOWN,
                        format!(
                            "step `{id}` runs later (line {line}); only earlier steps' outputs can be used"
                        ),
                    ));
                }
                if !scope.earlier.iter().any(|(s, _)| s == id)
                    && let Some((_, group)) = scope.inner.iter().find(|(s, _)| s == id)
                {
                    return err(format!(
                        "step `{id}` runs inside group `{group}`, once per item: read it after the group as `steps.{group}.outputs` (one entry per item, `outputs.{id}` in each)"
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
            "item" => {
                err("`item` is only defined in a step with `for_each` (or inside a group)".into())
            }
            // Only trigger parameters read the event: there each value is checked against its
            // parameter's pattern and, naming a resource, locked and protection-checked as a
            // target. A step reading `event.*` itself would act on what nothing checked.
            "event" if scope.event_only => None,
            "event" => err(format!(
                "steps cannot read the event directly (`{}`): set a parameter from it in the \
                 trigger (`triggers[].parameters`) and use `params.<name>`",
                reference.raw
            )),
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
    pub(super) fn position_in(&self, node: &Node, text: &str, offset: usize, len: usize) -> Pos {
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

/// The parser's own message lists every grammar rule it expected; say it plainly instead.
fn syntax_message(message: &str) -> String {
    if message.contains("expected") && message.len() > 80 {
        "malformed or unclosed `{{ }}` expression here".to_owned()
    } else {
        last_line(message).to_owned()
    }
}
