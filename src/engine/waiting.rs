//! The runs that wait for a person (`firebreak approvals`): read from the journals in a
//! directory, never written — listing decides nothing, not even an expiry.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::RunStatus;
use super::decisions::{self, Ledger};
use super::replay::Replay;
use crate::journal::Event;

/// One run parked at an approval.
#[derive(Debug, Clone, Serialize)]
pub struct WaitingRun {
    pub run_id: String,
    pub runbook: String,
    pub step: String,
    pub prompt: String,
    pub targets: Vec<String>,
    /// When it began to wait (RFC 3339, UTC).
    pub since: String,
    /// When the decision becomes deny, if the step has a `timeout`.
    pub expires_at: Option<String>,
    /// The deadline passed: the next `approve`, `deny` or `resume` denies it.
    pub expired: bool,
    pub journal: PathBuf,
}

/// Every run in `dir` whose journal ends waiting for a decision, oldest first. A journal that
/// cannot be read is reported beside the list, not hidden.
pub fn list(dir: &Path) -> Result<(Vec<WaitingRun>, Vec<String>), std::io::Error> {
    let mut runs = Vec::new();
    let mut unreadable = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((runs, unreadable)),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        match waiting_in(&path) {
            Ok(Some(run)) => runs.push(run),
            Ok(None) => {}
            Err(e) => unreadable.push(format!("{}: {e}", path.display())),
        }
    }
    runs.sort_by(|a, b| a.since.cmp(&b.since).then(a.run_id.cmp(&b.run_id)));
    Ok((runs, unreadable))
}

/// The approval a journal's run waits at, if it does.
pub fn waiting_in(path: &Path) -> Result<Option<WaitingRun>, String> {
    let records = crate::journal::read(path).map_err(|e| e.to_string())?;
    let replay = Replay::from_records(&records)?;
    if replay.final_status != Some(RunStatus::AwaitingApproval) {
        return Ok(None);
    }
    let Some(waiting) = Ledger::from_records(&records).waiting else {
        return Ok(None);
    };
    let (runbook, targets) = match records.first().map(|r| &r.event) {
        Some(Event::RunStarted(started)) => (started.runbook.name.clone(), started.targets.clone()),
        _ => Default::default(),
    };
    Ok(Some(WaitingRun {
        run_id: replay.run_id,
        runbook,
        expired: waiting
            .expires_at
            .as_deref()
            .is_some_and(decisions::has_passed),
        step: waiting.step,
        prompt: waiting.prompt,
        targets,
        since: waiting.since,
        expires_at: waiting.expires_at,
        journal: path.to_path_buf(),
    }))
}
