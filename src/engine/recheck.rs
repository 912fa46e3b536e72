//! A recheck: the short run a finding starts when its case's run already finished. Only the
//! runbook's `recheck` steps run (each idempotent: it changes only what drifted since); every
//! other step is journaled as skipped, and the case's approvals stand as they were decided —
//! a person who denied the stop is not asked again, and is not overruled.

use std::collections::HashMap;
use std::path::Path;

/// What a recheck run is, journaled in its `run_started` so a resume stays a recheck.
pub use crate::journal::event::Recheck;
use crate::journal::event::{Decider, DecisionRecord, Verdict};
use crate::journal::{Event, Record};

/// How a skipped step's record reads.
pub const SKIPPED: &str = "recheck: only the runbook's `recheck` steps run";

/// The case run's decisions, per approval step: the latest decided (not parked) approval, as a
/// decision record the recheck applies. A case run's journal that does not read leaves none
/// (the recheck's approvals then wait for a person).
pub fn standing_decisions(journal_dir: &Path, case_run: &str) -> HashMap<String, DecisionRecord> {
    let path = super::journal_path(journal_dir, case_run);
    let records: Vec<Record> = crate::journal::read(&path).unwrap_or_default();
    let mut decided = HashMap::new();
    for record in &records {
        let Event::Approval(approval) = &record.event else {
            continue;
        };
        if approval.parked == Some(true) {
            continue;
        }
        decided.insert(
            approval.step.clone(),
            DecisionRecord {
                step: approval.step.clone(),
                verdict: if approval.approved {
                    Verdict::Approve
                } else {
                    Verdict::Deny
                },
                reason: format!("decided in the case's run {case_run}: {}", approval.by),
                decided_by: Decider {
                    user: approval.user.clone(),
                    ..Decider::default()
                },
                decided_at: record.ts.clone(),
                channel: "case".into(),
            },
        );
    }
    decided
}

/// What a run changed in AWS, as `service:Operation target,…`: the mutating calls that
/// succeeded (notifications aside). For a recheck, that is the drift it re-contained.
pub fn changes(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::ApiCall(call) => Some(call),
            _ => None,
        })
        .filter(|call| call.outcome == "ok" && call.service != "sns")
        .filter(|call| {
            !["Describe", "Get", "List", "Simulate", "Lookup"]
                .iter()
                .any(|read| call.operation.starts_with(read))
        })
        .map(|call| {
            format!(
                "{}:{} {}",
                call.service,
                call.operation,
                call.targets.join(",")
            )
        })
        .collect()
}
