//! Reading a journal back into the state a resumed run continues from: the run's header and
//! what each step (and each fan-out item) already finished with. A record this engine cannot
//! read is refused: continuing a run without understanding what it did could do it twice.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::{Mode, RunOutcome, RunStatus, StepStatus, StepSummary};
use crate::check::LoadedRunbook;
use crate::journal::event::{Refusal, RunStarted, VerifyFinding};
use crate::journal::{Event, Record};

/// A step that is done and must not run again.
#[derive(Debug, Clone)]
pub struct Finished {
    pub status: StepStatus,
    pub outputs: Value,
}

#[derive(Debug, Clone)]
pub struct Replay {
    pub run_id: String,
    pub mode: Mode,
    pub runbook_path: String,
    pub runbook_sha256: String,
    /// As journaled: sensitive values are `[redacted]`.
    pub parameters: serde_json::Map<String, Value>,
    pub event: Option<Value>,
    /// Which findings the run re-reads before acting (again on every resume).
    pub verify_finding: Option<VerifyFinding>,
    /// A recheck stays one on resume.
    pub recheck: Option<super::recheck::Recheck>,
    /// A run that updates its finding still does at its end after a resume.
    pub update_finding: bool,
    /// Where the run seals its journal and evidence (the latest choice).
    pub custody: Option<crate::journal::event::Custody>,
    pub started_at: String,
    pub steps: HashMap<String, Finished>,
    /// Fan-out items that succeeded: (step, index) → (item, outputs).
    pub items: HashMap<(String, usize), (Value, Value)>,
    /// A group's inner steps that are done for one item — succeeded, skipped, or failed with
    /// `on_failure: continue`: (`<group>.<inner>`, index) → how.
    pub item_steps: HashMap<(String, usize), Finished>,
    /// `run_finished`'s status, if the run ended.
    pub final_status: Option<RunStatus>,
    /// Its reason and what refused it, if it was refused.
    pub final_reason: Option<String>,
    pub final_refusal: Option<Refusal>,
}

impl Replay {
    pub fn from_records(records: &[Record]) -> Result<Replay, String> {
        let first = records.first().ok_or("the journal is empty")?;
        let Event::RunStarted(started) = &first.event else {
            return Err(match &first.event {
                Event::Other(other) if other.kind == "run_started" => format!(
                    "its run_started record does not parse: {}",
                    other.malformed.as_deref().unwrap_or("unknown fields")
                ),
                _ => "the journal does not begin with a run_started record".into(),
            });
        };
        if let Some((record, other)) = records.iter().find_map(|r| match &r.event {
            Event::Other(other) => Some((r, other)),
            _ => None,
        }) {
            return Err(unreadable(record, other));
        }
        let RunStarted {
            mode,
            runbook,
            parameters,
            event,
            verify_finding,
            recheck,
            update_finding,
            custody,
            ..
        } = started;
        let mut replay = Replay {
            run_id: first.run_id.clone(),
            mode: *mode,
            runbook_path: runbook.path.clone(),
            runbook_sha256: runbook.sha256.clone(),
            parameters: parameters.clone(),
            event: event.clone().filter(|e| !e.is_null()),
            verify_finding: *verify_finding,
            recheck: recheck.as_deref().cloned(),
            update_finding: update_finding.unwrap_or(false),
            custody: custody.as_deref().cloned(),
            started_at: first.ts.clone(),
            steps: HashMap::new(),
            items: HashMap::new(),
            item_steps: HashMap::new(),
            final_status: None,
            final_reason: None,
            final_refusal: None,
        };
        for record in records {
            match &record.event {
                Event::StepSucceeded(done) => {
                    replay.steps.insert(
                        done.step.clone(),
                        Finished {
                            status: StepStatus::Succeeded,
                            outputs: done.outputs.clone(),
                        },
                    );
                }
                Event::StepSkipped(skipped) if skipped.item_index.is_some() => {
                    replay.item_steps.insert(
                        (skipped.step.clone(), skipped.item_index.unwrap_or_default()),
                        Finished {
                            status: StepStatus::Skipped,
                            outputs: Value::Object(Default::default()),
                        },
                    );
                }
                Event::StepSkipped(skipped) => {
                    replay.steps.insert(
                        skipped.step.clone(),
                        Finished {
                            status: StepStatus::Skipped,
                            outputs: Value::Object(Default::default()),
                        },
                    );
                }
                // A failure the runbook chose to continue past stays a failure; an aborting
                // failure is tried again on resume.
                Event::StepFailed(failed) if failed.continued == Some(true) => {
                    replay.steps.insert(
                        failed.step.clone(),
                        Finished {
                            status: StepStatus::Failed,
                            outputs: failed.outputs.clone().unwrap_or(Value::Null),
                        },
                    );
                }
                Event::ItemFailed(failed) if failed.continued == Some(true) => {
                    if let Some(index) = failed.item_index {
                        replay.item_steps.insert(
                            (failed.step.clone(), index),
                            Finished {
                                status: StepStatus::Failed,
                                outputs: failed.outputs.clone().unwrap_or(Value::Null),
                            },
                        );
                    }
                }
                Event::ItemSucceeded(done) => {
                    if let Some(index) = done.item_index {
                        replay.item_steps.insert(
                            (done.step.clone(), index),
                            Finished {
                                status: StepStatus::Succeeded,
                                outputs: done.outputs.clone(),
                            },
                        );
                        replay.items.insert(
                            (done.step.clone(), index),
                            (
                                done.item.clone().unwrap_or(Value::Null),
                                done.outputs.clone(),
                            ),
                        );
                    }
                }
                Event::RunFinished(finished) => {
                    replay.final_status = Some(finished.status);
                    replay.final_reason = finished.reason.clone();
                    replay.final_refusal = finished.refused_by;
                }
                Event::RunResumed(resumed) => {
                    if resumed.custody.is_some() {
                        replay.custody = resumed.custody.clone();
                    }
                    replay.final_status = None;
                    replay.final_reason = None;
                    replay.final_refusal = None;
                }
                _ => {}
            }
        }
        Ok(replay)
    }

    /// Why a resume may not go on: a refusal by a policy interlock is final. (Journals of engines
    /// before refusal kinds say only `reason`: an interlock's refusal had one, an approval's
    /// none.)
    pub fn final_refusal(&self) -> Option<String> {
        if self.final_status != Some(RunStatus::Refused) {
            return None;
        }
        let is_final = match self.final_refusal {
            Some(kind) => kind.is_final(),
            None => self.final_reason.is_some(),
        };
        is_final.then(|| self.final_reason.clone().unwrap_or_default())
    }

    /// The outcome of a run that already succeeded, as journaled.
    pub fn outcome(&self, loaded: &LoadedRunbook, path: &Path) -> RunOutcome {
        let steps = loaded
            .runbook
            .steps
            .iter()
            .filter_map(|s| {
                self.steps.get(&s.id).map(|f| StepSummary {
                    id: s.id.clone(),
                    status: f.status,
                    outputs: f.outputs.clone(),
                })
            })
            .collect();
        RunOutcome {
            run_id: self.run_id.clone(),
            status: RunStatus::Succeeded,
            mode: self.mode,
            journal: path.to_path_buf(),
            steps,
            journal_syncs: None,
            drill: None,
            seal: None,
        }
    }
}

/// Why a record stops a resume.
fn unreadable(record: &Record, other: &crate::journal::event::OtherEvent) -> String {
    match &other.malformed {
        Some(problem) => format!(
            "record seq {} (`{}`) does not parse: {problem}",
            record.seq, other.kind
        ),
        None => format!(
            "record seq {} is of kind `{}`, which this firebreak ({}) does not know; \
             resume it with the firebreak that wrote it",
            record.seq,
            other.kind,
            env!("CARGO_PKG_VERSION")
        ),
    }
}
