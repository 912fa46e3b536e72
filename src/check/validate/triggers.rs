//! Triggers: unique names, EventBridge pattern shapes, parameters that exist and are all set,
//! templates that read `event.*` only.

use std::collections::HashMap;

use super::{Scope, Validator};
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::runbook::node::Node;
use crate::runbook::pattern_check::check_pattern;
use crate::template;

/// Security Hub findings a trigger may start containment on must be named by product: a
/// pattern on `aws.securityhub` that does not pin `detail.findings.ProductArn` fires on
/// standards-control findings (posture, not threats: "keys should be rotated") and on findings
/// anyone in the account can import with `BatchImportFindings`. `ProductName` and
/// `CompanyName` are not identities; only the ARN is. An AWS or partner product is pinned by
/// its exact ARN or by `suffix: "::product/<company>/<product>"` (no account in it); a custom
/// product only by its exact ARN.
fn threats_only(pattern: &Node, out: &mut Vec<Diagnostic>) {
    let Some(source) = pattern.get("source") else {
        // Without a source a pattern answers any event on the bus, whoever sent it.
        out.push(
            Diagnostic::new(pattern.pos, "a trigger's pattern must name its event `source`")
                .with_help("e.g. source: [\"aws.guardduty\"]: sources starting `aws.` can only be sent by AWS services"),
        );
        return;
    };
    let from_security_hub = source
        .items()
        .iter()
        .any(|v| v.as_str() == Some("aws.securityhub"));
    if !from_security_hub {
        return;
    }
    if custom_action(pattern, out) {
        return;
    }
    let findings = pattern.get("detail").and_then(|d| d.get("findings"));
    for name in ["ProductName", "CompanyName"] {
        if let Some(key) = findings.and_then(|f| f.key(name)) {
            out.push(
                Diagnostic::new(
                    key.pos,
                    format!("`{name}` does not identify who wrote a finding"),
                )
                .with_help(
                    "anyone can import findings with any product or company name \
                     (securityhub:BatchImportFindings); match `ProductArn` instead",
                ),
            );
        }
    }
    let Some(arns) = findings.and_then(|f| f.get("ProductArn")) else {
        let at = pattern.key("source").map_or(pattern.pos, |k| k.pos);
        out.push(
            Diagnostic::new(
                at,
                "a Security Hub trigger must name the products it trusts with `detail.findings.ProductArn`",
            )
            .with_help(
                "without it, standards-control findings (posture, e.g. IAM.3 \"rotate keys\") and \
                 imported custom findings start containment; for GuardDuty: \
                 ProductArn: [{ suffix: \"::product/aws/guardduty\" }]",
            ),
        );
        return;
    };
    let items: Vec<&Node> = match &arns.kind {
        crate::runbook::node::Kind::Seq(items) => items.iter().collect(),
        _ => vec![arns],
    };
    for item in items {
        let trusted = match &item.kind {
            crate::runbook::node::Kind::Str(arn) => arn.starts_with("arn:"),
            crate::runbook::node::Kind::Map(entries) => {
                entries.len() == 1
                    && item
                        .get("suffix")
                        .and_then(Node::as_str)
                        .is_some_and(|s| s.starts_with("::product/") && s.matches('/').count() == 2)
            }
            _ => false,
        };
        if !trusted {
            out.push(
                Diagnostic::new(
                    item.pos,
                    "`ProductArn` must name products exactly: an ARN, or `suffix: \"::product/<company>/<product>\"`",
                )
                .with_help(
                    "a prefix, wildcard or anything-but on ProductArn also admits findings \
                     imported by custom products in any account",
                ),
            );
        }
    }
}

/// A Security Hub custom action is a person choosing findings in the console and sending them
/// to firebreak: their decision to start containment (not an approval of later steps), so any
/// product's finding may be sent. The pattern must pin the action by its ARN in `resources`
/// (names are not unique); then `ProductArn` is not required. Returns whether the pattern is a
/// custom action's.
fn custom_action(pattern: &Node, out: &mut Vec<Diagnostic>) -> bool {
    const CUSTOM: &str = "Security Hub Findings - Custom Action";
    let kinds = pattern
        .get("detail-type")
        .map(Node::items)
        .unwrap_or_default();
    if kinds.is_empty() || !kinds.iter().all(|k| k.as_str() == Some(CUSTOM)) {
        return false;
    }
    let pinned = pattern.get("resources").is_some_and(|resources| {
        let items = resources.items();
        !items.is_empty()
            && items.iter().all(|item| match &item.kind {
                crate::runbook::node::Kind::Str(arn) => {
                    arn.starts_with("arn:") && arn.contains(":action/custom/")
                }
                crate::runbook::node::Kind::Map(entries) => {
                    entries.len() == 1
                        && item.get("suffix").and_then(Node::as_str).is_some_and(|s| {
                            s.starts_with(":action/custom/") && s.len() > ":action/custom/".len()
                        })
                }
                _ => false,
            })
    });
    if !pinned {
        let at = pattern.key("detail-type").map_or(pattern.pos, |k| k.pos);
        out.push(
            Diagnostic::new(
                at,
                "a custom-action trigger must name its action target in `resources`",
            )
            .with_help(
                "action names are not unique: match the target's ARN, e.g. \
                 resources: [{ suffix: \":action/custom/FirebreakContain\" }]",
            ),
        );
    }
    true
}

impl Validator<'_> {
    pub(super) fn triggers(&mut self, triggers: &Node, parameters: Option<&Node>) {
        let scope = Scope::events_only();
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
                threats_only(pattern, &mut self.out);
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
