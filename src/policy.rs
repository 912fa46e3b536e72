//! The least-privilege IAM policy the engine needs to run given runbooks, derived from what
//! each action declares beside its permissions (`Action::GRANTS`, `Action::SCOPE`) and from the
//! engine's own calls (`actions::ENGINE_CALLS`): no wildcard actions, resources and condition
//! keys scoped where AWS supports it. This file knows no action by name: a new action brings its
//! own scope.
//!
//! A placeholder in a grant's resource (`{user}`, `{role}`, `{document}`, `{stack}`, `{topic}`)
//! becomes one glob per step that uses the action: the step's input field as written when it is
//! literal, the literal prefix of its template, or — for `{{params.x}}` — the literal prefix of
//! the parameter's pattern (`^app-[a-z]+$` → `app-*`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::actions::{self, ActionInfo, RunUses};
use crate::runbook::{Runbook, Step};

/// The policy document (IAM JSON) for the runbooks, run as `uses` says.
/// What the command line adds to the engine's own scope: the role it assumes, the seal's
/// bucket, the signing key.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineScope<'a> {
    pub assume_role: Option<&'a str>,
    pub seal_bucket: Option<&'a str>,
    pub sign_key: Option<&'a str>,
    /// `--worker`: the worker's own calls, on these resources.
    pub worker: Option<WorkerScope<'a>>,
}

/// Parameter Store's path to a Secrets Manager secret (GetParameter with decryption returns the
/// secret's value).
pub const SECRETS_MANAGER_REFERENCE: &str = "/aws/reference/secretsmanager/";

/// What a `serve` worker works on: its queue, and the table and key parameter when it uses
/// them.
#[derive(Debug, Clone, Copy)]
pub struct WorkerScope<'a> {
    pub queue_arn: &'a str,
    pub table: Option<&'a str>,
    pub journal_key_parameter: Option<&'a str>,
}

impl WorkerScope<'_> {
    /// The ARN a worker call's placeholder stands for, or `None` when the worker does not use
    /// that resource.
    fn resource(&self, placeholder: &str) -> Option<String> {
        match placeholder {
            "{queue}" => Some(self.queue_arn.to_owned()),
            "{table}" => self
                .table
                .map(|t| format!("arn:aws:dynamodb:*:*:table/{t}")),
            "{key}" => self
                .journal_key_parameter
                .map(|p| format!("arn:aws:ssm:*:*:parameter/{}", p.trim_start_matches('/'))),
            // A key kept in Secrets Manager is read through Parameter Store's reference path,
            // which needs the secret's own permission too.
            "{secret}" => self
                .journal_key_parameter
                .and_then(|p| p.strip_prefix(SECRETS_MANAGER_REFERENCE))
                .map(|name| format!("arn:aws:secretsmanager:*:*:secret:{name}-*")),
            literal if !literal.starts_with('{') => Some(literal.to_owned()),
            _ => None,
        }
    }
}

pub fn document(runbooks: &[&Runbook], uses: RunUses, scope: EngineScope<'_>) -> Value {
    // (resources, condition) → permissions
    let mut grants: BTreeMap<(Vec<String>, String), BTreeSet<String>> = BTreeMap::new();
    let mut add = |permission: &str, resources: Vec<String>, condition: Option<&str>| {
        let key = (resources, condition.unwrap_or_default().to_owned());
        grants.entry(key).or_default().insert(permission.to_owned());
    };
    if let Some(worker) = scope.worker {
        for call in actions::WORKER_CALLS {
            if let Some(resource) = worker.resource(call.resource) {
                add(call.permission, vec![resource], None);
            }
        }
    }
    for runbook in runbooks {
        for call in actions::engine_calls(runbook, uses) {
            let resources = call
                .resources
                .iter()
                .flat_map(|r| expand(r, |placeholder| engine_scope(runbook, placeholder, scope)))
                .collect();
            add(call.permission(), resources, None);
        }
        for step in runbook.action_steps() {
            let Some(info) = actions::find(&step.action) else {
                continue;
            };
            for permission in info.permissions {
                match info.grant_for(permission) {
                    Some(grant) => {
                        let resources = grant
                            .resources
                            .iter()
                            .flat_map(|r| {
                                expand(r, |placeholder| {
                                    step_scope(runbook, step, info, placeholder)
                                })
                            })
                            .collect();
                        add(permission, resources, grant.condition);
                    }
                    // Describe/List/Get calls that AWS does not scope to resources.
                    None => add(permission, vec!["*".into()], None),
                }
            }
        }
    }
    let iam_writes: BTreeSet<String> = grants
        .values()
        .flatten()
        .filter(|p| is_iam_write(p))
        .cloned()
        .collect();
    let mut statements: Vec<Value> = grants
        .into_iter()
        .enumerate()
        .map(|(i, ((resources, condition), actions))| {
            let mut statement = json!({
                "Sid": format!("Firebreak{}", i + 1),
                "Effect": "Allow",
                "Action": actions.into_iter().collect::<Vec<_>>(),
                "Resource": resources,
            });
            if !condition.is_empty() {
                statement["Condition"] =
                    serde_json::from_str(&condition).expect("a declared condition is JSON");
            }
            statement
        })
        .collect();
    // IAM cannot condition `Put*Policy` on the policy's name or content, so whatever IAM
    // writes the runbooks need are denied outright on firebreak's own roles and on roles that
    // administer the account: a firebreak whose credentials leak cannot make itself or anyone
    // an administrator through them.
    if !iam_writes.is_empty() {
        statements.push(json!({
            "Sid": "FirebreakNeverWritesItselfOrAdministrators",
            "Effect": "Deny",
            "Action": iam_writes.into_iter().collect::<Vec<_>>(),
            "Resource": PROTECTED_ROLES,
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// Roles no runbook may change through IAM: firebreak's own, the account's administrators'
/// (by the usual names), AWS SSO's, and the organization's access role.
pub const PROTECTED_ROLES: &[&str] = &[
    "arn:aws:iam::*:role/firebreak-*",
    "arn:aws:iam::*:role/*Admin*",
    "arn:aws:iam::*:role/*admin*",
    "arn:aws:iam::*:role/OrganizationAccountAccessRole",
    "arn:aws:iam::*:role/aws-reserved/*",
];

/// An IAM call that changes something (not Get/List/Simulate, not PassRole, which changes
/// nothing by itself and is scoped on its own).
fn is_iam_write(permission: &str) -> bool {
    permission.strip_prefix("iam:").is_some_and(|op| {
        !["Get", "List", "Simulate", "PassRole"]
            .iter()
            .any(|p| op.starts_with(p))
    })
}

/// `pattern` with its placeholder (at most one) replaced by each of `globs(placeholder)`.
fn expand(pattern: &str, globs: impl Fn(&str) -> BTreeSet<String>) -> Vec<String> {
    let Some(start) = pattern.find('{') else {
        return vec![pattern.to_owned()];
    };
    let Some(len) = pattern[start..].find('}') else {
        return vec![pattern.to_owned()];
    };
    let placeholder = &pattern[start + 1..start + len];
    globs(placeholder)
        .into_iter()
        .map(|glob| format!("{}{glob}{}", &pattern[..start], &pattern[start + len + 1..]))
        .collect()
}

/// The globs for a placeholder of one step's grant, from the input field the action names.
fn step_scope(
    runbook: &Runbook,
    step: &Step,
    info: &ActionInfo,
    placeholder: &str,
) -> BTreeSet<String> {
    let Some(field) = info.scope.iter().find(|f| f.placeholder == placeholder) else {
        return ["*".to_owned()].into();
    };
    let glob = match step.input.get(field.field) {
        Some(Value::String(text)) => glob_of(runbook, text),
        Some(_) => "*".to_owned(),
        None => field.default.to_owned(),
    };
    [glob].into()
}

/// The globs for the engine's own calls: the notification topic, the role it assumes.
fn engine_scope(runbook: &Runbook, placeholder: &str, scope: EngineScope<'_>) -> BTreeSet<String> {
    let glob = match placeholder {
        "topic" => runbook
            .notify
            .as_ref()
            .map_or_else(|| "*".to_owned(), |n| glob_of(runbook, &n.topic_arn)),
        "role" => scope
            .assume_role
            .map_or_else(|| "*".to_owned(), template_glob),
        "seal_bucket" => scope.seal_bucket.unwrap_or("*").to_owned(),
        // A key id, ARN or alias: only a full key ARN names the resource IAM checks.
        "sign_key" => scope
            .sign_key
            .filter(|k| k.starts_with("arn:") && k.contains(":key/"))
            .map_or_else(|| "arn:aws:kms:*:*:key/*".to_owned(), str::to_owned),
        _ => "*".to_owned(),
    };
    [glob].into()
}

/// A glob for a value written in a runbook: literal as is; `{{params.x}}` from x's pattern; any
/// other template, its literal prefix.
fn glob_of(runbook: &Runbook, text: &str) -> String {
    let single = text
        .trim()
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .map(str::trim)
        .and_then(|t| t.strip_prefix("params."));
    if let Some(name) = single
        && let Some(param) = runbook.parameters.get(name)
    {
        return param
            .pattern
            .as_deref()
            .map(regex_to_glob)
            .filter(|g| !g.is_empty())
            .unwrap_or_else(|| "*".into());
    }
    template_glob(text)
}

/// Each `{{…}}` of a template as `*`: `firebreak-clean-room-{{params.case_id}}` →
/// `firebreak-clean-room-*`, `arn:aws:iam::{{event.account}}:role/r` → `arn:aws:iam::*:role/r`.
fn template_glob(text: &str) -> String {
    let mut glob = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        glob.push_str(&rest[..start]);
        if !glob.ends_with('*') {
            glob.push('*');
        }
        match rest[start..].find("}}") {
            Some(end) => rest = &rest[start + end + 2..],
            None => return glob,
        }
    }
    glob.push_str(rest);
    glob
}

/// A regular expression's literal prefix as an IAM ARN glob: `^app-[a-z]+$` → `app-*`.
fn regex_to_glob(pattern: &str) -> String {
    let body = pattern.trim_start_matches('^');
    let prefix: String = body
        .chars()
        .take_while(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '=' | ',' | '@' | '/')
        })
        .collect();
    let rest = &body[prefix.len()..];
    if rest == "$" || rest.is_empty() {
        prefix
    } else {
        format!("{prefix}*")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_from_patterns() {
        assert_eq!(regex_to_glob("^app-[a-z]+$"), "app-*");
        assert_eq!(regex_to_glob("^[A-Za-z0-9+=,.@_-]+$"), "*");
        assert_eq!(regex_to_glob("^exact$"), "exact");
        assert_eq!(
            template_glob("firebreak-clean-room-{{params.case_id}}"),
            "firebreak-clean-room-*"
        );
        assert_eq!(
            template_glob("arn:aws:iam::{{event.account}}:role/firebreak-responder"),
            "arn:aws:iam::*:role/firebreak-responder"
        );
    }

    #[test]
    fn placeholders_expand_to_each_glob() {
        let globs = |_: &str| -> BTreeSet<String> { ["a*".to_owned(), "b".to_owned()].into() };
        assert_eq!(
            expand("arn:aws:iam::*:user/{user}", globs),
            ["arn:aws:iam::*:user/a*", "arn:aws:iam::*:user/b"]
        );
        assert_eq!(expand("*", globs), ["*"]);
    }
}
