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
    /// When it parked last: a resume with nobody to ask, or a reminder, parks it again.
    pub last_parked: String,
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
        last_parked: waiting.last_parked,
        expires_at: waiting.expires_at,
        journal: path.to_path_buf(),
    }))
}

/// Whether a waiting run is due a reminder: its deadline is less than `within` away (and not
/// passed), and it has not parked since the reminder window opened — so `firebreak remind`
/// run every few minutes reminds once per approval.
pub fn due_reminder(run: &WaitingRun, within: std::time::Duration) -> bool {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    let (Some(deadline), false) = (run.expires_at.as_deref(), run.expired) else {
        return false;
    };
    let Ok(deadline) = OffsetDateTime::parse(deadline, &Rfc3339) else {
        return false;
    };
    let opens = deadline - within;
    let now = OffsetDateTime::now_utc();
    let parked = OffsetDateTime::parse(&run.last_parked, &Rfc3339).unwrap_or(now);
    now >= opens && parked < opens
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run(expires_in: i64, parked_ago: i64) -> WaitingRun {
        let now = time::OffsetDateTime::now_utc();
        let at = |t: time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        WaitingRun {
            run_id: "r".into(),
            runbook: "b".into(),
            step: "s".into(),
            prompt: "p".into(),
            targets: vec![],
            since: at(now - time::Duration::seconds(parked_ago)),
            last_parked: at(now - time::Duration::seconds(parked_ago)),
            expires_at: Some(at(now + time::Duration::seconds(expires_in))),
            expired: expires_in <= 0,
            journal: PathBuf::new(),
        }
    }

    #[test]
    fn a_reminder_is_due_once_inside_the_window() {
        let hour = Duration::from_secs(3600);
        // Parked 5 h ago, 30 min left: due.
        assert!(due_reminder(&run(1800, 5 * 3600), hour));
        // 3 h left: not yet.
        assert!(!due_reminder(&run(3 * 3600, 5 * 3600), hour));
        // Parked again 10 min ago (the reminder itself): not again.
        assert!(!due_reminder(&run(1800, 600), hour));
        // Expired: the next touch denies it; no reminder.
        assert!(!due_reminder(&run(-10, 5 * 3600), hour));
    }
}
