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
        // Every id with its line, so references to later steps can say where they are.
        let all = ids_of(steps.items());
        let inner: Vec<(String, String)> = steps
            .items()
            .iter()
            .filter_map(|s| Some((s.get("id")?.as_str()?.to_owned(), s.get("steps")?)))
            .flat_map(|(group, inner)| {
                ids_of(inner.items())
                    .into_iter()
                    .map(move |(id, _)| (id, group.clone()))
            })
            .collect();
        let mut first_seen: HashMap<String, u32> = HashMap::new();
        let mut index_in_all = 0;
        for step in steps.items() {
            let id = self.step_id(step, &mut first_seen);
            let position = index_in_all.min(all.len());
            let scope = Scope {
                earlier: &all[..position],
                later: &all[position..],
                current: id,
                inner: &inner,
                group: None,
                item: step.get("for_each").is_some() && step.get("steps").is_none(),
                run_only: false,
                event_only: false,
            };
            self.step(step, &scope);
            match step.get("steps") {
                Some(group) => self.group(step, group, &scope, &mut first_seen),
                None if step.get("action").is_none() => self.error(
                    step.pos,
                    "a step needs `action` (or, to run several steps per item, `steps` with `for_each`)",
                ),
                None => {}
            }
            if id.is_some() {
                index_in_all += 1;
            }
        }
    }

    /// Checks a step's id (its form, that no step before had it) and returns it.
    fn step_id<'n>(
        &mut self,
        step: &'n Node,
        first_seen: &mut HashMap<String, u32>,
    ) -> Option<&'n str> {
        let node = step.get("id")?;
        let id = node.as_str()?;
        if !identifier().is_match(id) {
            self.error(node.pos, format!("step id `{id}` must start with a letter and contain only letters, digits and `_`"));
        }
        if actions::ENGINE_STEPS.contains(&id) {
            self.out.push(
                Diagnostic::new(node.pos, format!("step id `{id}` is the engine's own"))
                    .with_help(format!(
                        "the engine journals its calls under `{}`; name the step something else (e.g. `{id}_step`)",
                        actions::ENGINE_STEPS.join("`, `")
                    )),
            );
        }
        if let Some(line) = first_seen.get(id) {
            self.out.push(
                Diagnostic::new(node.pos, format!("duplicate step id `{id}`"))
                    .with_help(format!("`{id}` is first used on line {line}")),
            );
        } else {
            first_seen.insert(id.to_owned(), node.pos.line);
        }
        Some(id)
    }

    /// A group step: `for_each` and inner steps, and none of what belongs on those.
    fn group(
        &mut self,
        step: &Node,
        group: &Node,
        outer: &Scope,
        first_seen: &mut HashMap<String, u32>,
    ) {
        if step.get("for_each").is_none() {
            self.out.push(
                Diagnostic::new(step.pos, "a group step (with `steps`) needs `for_each`")
                    .with_help(
                        "its steps run once per item: `for_each: \"{{params.instance_ids}}\"`",
                    ),
            );
        }
        for key in ["action", "with", "retry"] {
            if let Some(node) = step.get(key) {
                self.error(
                    node.pos,
                    format!("a group step runs its inner `steps`; `{key}` belongs on them"),
                );
            }
        }
        if group.items().is_empty() {
            self.error(group.pos, "a group step needs at least one inner step");
        }
        let own = ids_of(group.items());
        let mut index_in_own = 0;
        for inner in group.items() {
            let id = self.step_id(inner, first_seen);
            for key in ["steps", "for_each", "concurrency"] {
                if let Some(node) = inner.get(key) {
                    let message = match key {
                        "steps" => "groups cannot be nested".to_owned(),
                        _ => format!(
                            "an inner step runs once per item of its group; `{key}` belongs on the group"
                        ),
                    };
                    self.error(node.pos, message);
                }
            }
            if let Some(action) = inner.get("action")
                && let Some(info) = action.as_str().and_then(actions::find)
                && info.decision
            {
                self.out.push(
                    Diagnostic::new(
                        action.pos,
                        format!("`{}` cannot run inside a group: a person's decision per item holds every item back", info.name),
                    )
                    .with_help("ask once for the whole fleet in a step after the group"),
                );
            }
            if inner.get("action").is_none() && inner.get("steps").is_none() {
                self.error(inner.pos, "an inner step needs `action`");
            }
            let position = index_in_own.min(own.len());
            let earlier: Vec<(String, u32)> = outer
                .earlier
                .iter()
                .chain(&own[..position])
                .cloned()
                .collect();
            let later: Vec<(String, u32)> = own[position..]
                .iter()
                .chain(
                    outer
                        .later
                        .iter()
                        .filter(|(s, _)| Some(s.as_str()) != outer.current),
                )
                .cloned()
                .collect();
            let scope = Scope {
                earlier: &earlier,
                later: &later,
                current: id,
                group: outer.current,
                item: true,
                ..*outer
            };
            self.step(inner, &scope);
            if id.is_some() {
                index_in_own += 1;
            }
        }
    }

    /// `core.approve`: a deadline that parses, and approvers written out (an approver list
    /// rendered from an event could let the event choose who decides).
    fn approval(&mut self, with: &Node) {
        if let Some(timeout) = with.get("timeout")
            && let Some(text) = timeout.as_str()
            && let Err(message) = duration::parse(text)
        {
            self.error(timeout.pos, format!("`timeout`: {message}"));
        }
        for approver in with.get("approvers").map(Node::items).unwrap_or_default() {
            let Some(pattern) = approver.as_str() else {
                continue;
            };
            if pattern.contains("{{") {
                self.error(
                    approver.pos,
                    "`approvers` are written out, not templates: who may decide must not come \
                     from an event or a parameter",
                );
            } else if !pattern.starts_with("arn:") {
                self.error(
                    approver.pos,
                    format!(
                        "`{pattern}` is not an ARN pattern (e.g. `arn:aws:sts::*:assumed-role/IR-Lead/*`)"
                    ),
                );
            }
        }
    }

    pub(super) fn step(&mut self, step: &Node, scope: &Scope) {
        if let Some(action) = step.get("action")
            && let Some(name) = action.as_str()
            && step.get("steps").is_none()
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
                    if name == "core.approve" {
                        self.approval(with);
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
            && scope.group.is_none()
        {
            self.error(
                concurrency.pos,
                "`concurrency` only applies to a step with `for_each`",
            );
        }
        if let Some(for_each) = step.get("for_each")
            && scope.group.is_none()
        {
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

/// The ids of these steps with the line each is on.
fn ids_of(steps: &[Node]) -> Vec<(String, u32)> {
    steps
        .iter()
        .filter_map(|s| {
            s.get("id")
                .and_then(|id| Some((id.as_str()?.to_owned(), id.pos.line)))
        })
        .collect()
}
