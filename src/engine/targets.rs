//! The resources a run acts on, for locks and the `max_targets` interlock: the values of
//! parameters that steps use and that look like AWS resource ids.

use std::collections::BTreeSet;

use regex::Regex;
use serde_json::Value;

use crate::runbook::Runbook;
use crate::runbook::params::ParamValues;

/// Instance, volume, snapshot, ENI, security group, address, VPC and subnet ids, and access
/// keys. ARNs are left out on purpose: in runbooks they name the tools of a response (a
/// quarantine profile, a KMS key, a topic), not what it acts on.
const RESOURCE_ID: &str = r"^((i|vol|snap|eni|sg|eipalloc|eipassoc|vpc|subnet|ami)-[0-9a-f]{8,17}|(AKIA|ASIA)[A-Z0-9]{16})$";

pub fn target_resources(runbook: &Runbook, params: &ParamValues) -> Vec<String> {
    let id = Regex::new(RESOURCE_ID).expect("static regex");
    let used = runbook.used_parameters();
    let mut targets = BTreeSet::new();
    for name in used {
        // IAM principals are named, not id'd: lock them under a prefixed name.
        if let Some(kind) = match name.as_str() {
            "user_name" => Some("iam-user"),
            "role_name" => Some("iam-role"),
            _ => None,
        } && let Some(Value::String(principal)) = params.get(&name)
            && !principal.is_empty()
        {
            targets.insert(format!("{kind}/{principal}"));
            continue;
        }
        match params.get(&name) {
            Some(Value::String(s)) if id.is_match(s) => {
                targets.insert(s.clone());
            }
            Some(Value::Array(items)) => {
                for item in items.iter().filter_map(Value::as_str) {
                    if id.is_match(item) {
                        targets.insert(item.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    targets.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::from_str;
    use serde_json::json;

    #[test]
    fn only_used_parameters_that_look_like_resources() {
        let runbook = from_str(
            "version: 1\nname: t\nparameters:\n  a: { type: string }\n  ids: { type: list }\n  unused: { type: string }\n  case: { type: string }\nsteps:\n  - id: s\n    action: core.log\n    for_each: \"{{params.ids}}\"\n    with: { message: \"{{params.a}} {{params.case}} {{item}}\" }\n",
        )
        .unwrap();
        let params: ParamValues = [
            ("a".to_string(), json!("i-0123456789abcdef0")),
            (
                "ids".to_string(),
                json!(["vol-0123456789abcdef0", "not-a-resource"]),
            ),
            ("unused".to_string(), json!("i-0fedcba9876543210")),
            ("case".to_string(), json!("case-1")),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            target_resources(&runbook, &params),
            ["i-0123456789abcdef0", "vol-0123456789abcdef0"]
        );
    }
}
