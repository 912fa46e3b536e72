//! Triggers: unique names, EventBridge pattern shapes, parameters that exist and are all set,
//! templates that read `event.*` only.

use std::collections::HashMap;

use super::{Scope, Validator};
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::runbook::node::Node;
use crate::runbook::pattern_check::check_pattern;
use crate::template;

impl Validator<'_> {
    pub(super) fn triggers(&mut self, triggers: &Node, parameters: Option<&Node>) {
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
                check_pattern(pattern, &mut self.out);
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
}
