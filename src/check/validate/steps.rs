//! Steps: ids, actions known to the catalogue and their `with:` inputs against the action's
//! schema, durations, `for_each` and `concurrency`, and the templates of each field.

use std::collections::HashMap;

use serde_json::Value;

use super::{Scope, Validator, identifier};
use crate::actions;
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::runbook::duration;
use crate::runbook::node::{Kind, Node};
use crate::runbook::schema_check::Checker;
use crate::template;

impl Validator<'_> {
    pub(super) fn steps(&mut self, steps: &Node) {
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

    pub(super) fn step(&mut self, step: &Node, scope: &Scope) {
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
}
