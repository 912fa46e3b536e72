//! The drill verdict: from a dry run's journal, which steps would succeed, which would be
//! denied, and which could not be checked.

use serde::Serialize;

use crate::journal::event::ApiCall;
use crate::journal::{Event, Record};

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
pub fn verdict(records: &[Record], steps: &[String]) -> Verdict {
    let preflight = records.iter().rev().find_map(|r| match &r.event {
        Event::Preflight(p) => Some(p),
        _ => None,
    });
    let checked = preflight.is_some_and(|p| p.checked);
    let mut verdict = Verdict::default();
    for step in steps {
        let calls: Vec<&ApiCall> = records
            .iter()
            .filter_map(|r| match &r.event {
                Event::ApiCall(call) if call.step == *step => Some(call),
                _ => None,
            })
            .collect();
        let denied_call = calls
            .iter()
            .any(|c| c.outcome == "would-be-denied" || c.class.as_deref() == Some("access-denied"));
        let denied_permission = preflight
            .and_then(|p| p.steps.as_ref())
            .and_then(|steps| steps.get(step))
            .and_then(|s| s["denied"].as_array())
            .is_some_and(|d| !d.is_empty());
        let not_sent = calls.iter().any(|c| !c.sent());
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
