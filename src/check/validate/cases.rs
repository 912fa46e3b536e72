//! The SOC loop's rules on triggers: a `case_key` needs the runbook's `recheck` steps and a
//! window that parses; `recheck` names top-level steps; `update_finding` only on Security Hub
//! triggers that match `Workflow.Status: NEW` alone — firebreak's own update emits a new
//! "Findings - Imported" event, which must not start it again.

use super::{Scope, Validator};
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::runbook::duration;
use crate::runbook::node::{Kind, Node};
use crate::template;

impl Validator<'_> {
    pub(super) fn cases(&mut self, root: &Node) {
        let step_ids: Vec<String> = root
            .get("steps")
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.get("id").and_then(Node::as_str).map(str::to_owned))
            .collect();
        let recheck = root.get("recheck");
        for id in recheck.map(Node::items).unwrap_or_default() {
            let Some(text) = id.as_str() else { continue };
            if !step_ids.iter().any(|s| s == text) {
                let mut diagnostic =
                    Diagnostic::new(id.pos, format!("`recheck` names unknown step `{text}`"));
                if let Some(help) = did_you_mean(text, step_ids.iter().map(String::as_str)) {
                    diagnostic = diagnostic.with_help(help);
                }
                self.out.push(diagnostic);
            }
        }
        let scope = Scope::events_only();
        for trigger in root.get("triggers").map(Node::items).unwrap_or_default() {
            if let Some(key) = trigger.get("case_key")
                && let Some(text) = key.as_str()
            {
                if template::is_template(text) {
                    self.template(key, text, &scope);
                }
                if recheck.is_none_or(|r| r.items().is_empty()) {
                    self.out.push(
                        Diagnostic::new(
                            key.pos,
                            "a trigger with `case_key` needs the runbook's `recheck` steps",
                        )
                        .with_help(
                            "`recheck:` lists the steps that re-verify the containment when a \
                             finding comes after the case's run finished, e.g. [isolate, profile]",
                        ),
                    );
                }
            }
            if let Some(window) = trigger.get("case_window")
                && let Some(text) = window.as_str()
                && let Err(message) = duration::parse(text)
            {
                self.error(window.pos, format!("`case_window`: {message}"));
            }
            if let Some(flag) = trigger.get("update_finding")
                && matches!(flag.kind, Kind::Bool(true))
                && let Some(pattern) = trigger.get("pattern")
            {
                self.updates_only_new(flag, pattern);
            }
        }
    }

    /// `update_finding` needs a Security Hub pattern whose `Workflow.Status` is exactly `NEW`.
    fn updates_only_new(&mut self, flag: &Node, pattern: &Node) {
        let from_security_hub = pattern
            .get("source")
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .any(|s| s.as_str() == Some("aws.securityhub"));
        if !from_security_hub {
            self.error(
                flag.pos,
                "`update_finding` works on Security Hub findings: the pattern's source must be aws.securityhub",
            );
            return;
        }
        // A custom action's event is not re-sent by a finding update; an import is.
        let custom_only = pattern
            .get("detail-type")
            .map(Node::items)
            .is_some_and(|kinds| {
                !kinds.is_empty()
                    && kinds
                        .iter()
                        .all(|k| k.as_str() == Some("Security Hub Findings - Custom Action"))
            });
        if custom_only {
            return;
        }
        let status = pattern
            .get("detail")
            .and_then(|d| d.get("findings"))
            .and_then(|f| f.get("Workflow"))
            .and_then(|w| w.get("Status"));
        let only_new = status.is_some_and(|s| {
            let items = s.items();
            items.len() == 1 && items[0].as_str() == Some("NEW")
        });
        if !only_new {
            self.out.push(
                Diagnostic::new(
                    status.map_or(flag.pos, |s| s.pos),
                    "a trigger with `update_finding` must match `Workflow: { Status: [\"NEW\"] }` only",
                )
                .with_help(
                    "firebreak sets the finding NOTIFIED and adds notes; each update is a new \
                     \"Findings - Imported\" event, which would start the runbook again",
                ),
            );
        }
    }
}
