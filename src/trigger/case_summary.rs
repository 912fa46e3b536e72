//! `firebreak cases`: each case as its index records it — key, resources, the runs that
//! contained and rechecked it with their status now, the findings that joined, the decisions it
//! waits for — and whether the index's hash chain is intact. Reads; never writes.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::case_index;
use super::dedupe::{self, RunState};
use crate::engine::{self, waiting};
use crate::journal::Event;

#[derive(Debug, Clone, Serialize)]
pub struct CaseSummary {
    pub case_key: String,
    pub runbook: String,
    pub opened_at: String,
    pub window_ends: String,
    /// Targets of the case's run.
    pub resources: Vec<String>,
    /// The case's run first, then its rechecks.
    pub runs: Vec<CaseRun>,
    pub findings: Vec<JoinedFinding>,
    /// Approvals the case's runs wait for.
    pub waiting: Vec<waiting::WaitingRun>,
    pub index: PathBuf,
    /// The index's hash chain checks out.
    pub intact: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseRun {
    pub run_id: String,
    /// `case` or `recheck`.
    pub role: &'static str,
    pub status: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct JoinedFinding {
    pub finding: String,
    pub at: String,
    /// `opened`, `joined`, `rechecked` or `resumed`.
    pub action: String,
}

/// Every case in the journal directory, newest first; indexes that do not read are reported
/// beside them.
pub fn cases(journal_dir: &Path, key: Option<&[u8]>) -> (Vec<CaseSummary>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (path, records) in case_index::all(journal_dir) {
        let records = match records {
            Ok(records) => records,
            Err(e) => {
                problems.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let intact = crate::journal::verify(&path, key).is_ok_and(|v| v.is_intact());
        // Only the latest case of a key: earlier ones are history in the same file.
        let start = records
            .iter()
            .rposition(|r| matches!(r.event, Event::CaseOpened(_)));
        let Some(start) = start else { continue };
        let Event::CaseOpened(opened) = &records[start].event else {
            continue;
        };
        let mut runs = vec![run(journal_dir, &opened.case_run, "case")];
        let mut findings = vec![JoinedFinding {
            finding: opened.finding.clone(),
            at: records[start].ts.clone(),
            action: "opened".into(),
        }];
        for record in &records[start + 1..] {
            if let Event::FindingJoined(joined) = &record.event {
                findings.push(JoinedFinding {
                    finding: joined.finding.clone(),
                    at: record.ts.clone(),
                    action: joined.action.clone(),
                });
                if let Some(recheck) = &joined.recheck_run {
                    runs.push(run(journal_dir, recheck, "recheck"));
                }
            }
        }
        let waiting = runs
            .iter()
            .filter_map(|r| {
                waiting::waiting_in(&engine::journal_path(journal_dir, &r.run_id))
                    .ok()
                    .flatten()
            })
            .collect();
        let resources = crate::journal::read(&engine::journal_path(journal_dir, &opened.case_run))
            .ok()
            .and_then(|records| match records.first().map(|r| r.event.clone()) {
                Some(Event::RunStarted(started)) => Some(started.targets),
                _ => None,
            })
            .unwrap_or_default();
        out.push(CaseSummary {
            case_key: opened.case_key.clone(),
            runbook: opened.runbook.clone(),
            opened_at: records[start].ts.clone(),
            window_ends: opened.window_ends.clone(),
            resources,
            runs,
            findings,
            waiting,
            index: path,
            intact,
        });
    }
    out.sort_by(|a, b| b.opened_at.cmp(&a.opened_at));
    (out, problems)
}

fn run(journal_dir: &Path, run_id: &str, role: &'static str) -> CaseRun {
    let status = match dedupe::run_state_of(journal_dir, run_id) {
        RunState::Settled(status) => status,
        RunState::Unfinished => "unfinished (failed, interrupted or crashed)".into(),
        RunState::NotBegun => "not begun".into(),
        RunState::Unreadable(kind) => format!("unreadable (`{kind}` record)"),
    };
    CaseRun {
        run_id: run_id.to_owned(),
        role,
        status,
    }
}
