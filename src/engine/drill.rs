//! The drill verdict: from a dry run's journal, which steps would succeed, which would be
//! denied, and which could not be checked.

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    pub would_succeed: Vec<String>,
    pub would_be_denied: Vec<String>,
    pub could_not_check: Vec<String>,
}

/// Per step: denied when a DryRun call answered `UnauthorizedOperation` or the preflight found a
/// missing permission; would succeed when the preflight allowed all its permissions, or every
/// change it would make was answered `DryRunOperation`; otherwise it could not be checked
/// (calls without DryRun were not sent and no simulation was available).
pub fn verdict(records: &[Value], steps: &[String]) -> Verdict {
    let preflight = records.iter().rev().find(|r| r["type"] == "preflight");
    let checked = preflight.is_some_and(|p| p["checked"] == true);
    let mut verdict = Verdict::default();
    for step in steps {
        let calls: Vec<&Value> = records
            .iter()
            .filter(|r| r["type"] == "api_call" && r["step"] == step.as_str())
            .collect();
        let denied_call = calls
            .iter()
            .any(|c| c["outcome"] == "would-be-denied" || c["class"] == "access-denied");
        let denied_permission = preflight
            .and_then(|p| p["steps"][step]["denied"].as_array())
            .is_some_and(|d| !d.is_empty());
        let not_sent = calls.iter().any(|c| {
            c["outcome"]
                .as_str()
                .is_some_and(|o| o.starts_with("not-sent"))
        });
        if denied_call || denied_permission {
            verdict.would_be_denied.push(step.clone());
        } else if checked || !not_sent {
            verdict.would_succeed.push(step.clone());
        } else {
            verdict.could_not_check.push(step.clone());
        }
    }
    verdict
}
