//! Reading a journal back into the state a resumed run continues from: the run's header and
//! what each step (and each fan-out item) already finished with.

use std::collections::HashMap;

use serde_json::Value;

use super::{Mode, StepStatus};

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
    pub started_at: String,
    pub steps: HashMap<String, Finished>,
    /// Fan-out items that succeeded: (step, index) → (item, outputs).
    pub items: HashMap<(String, usize), (Value, Value)>,
    /// `run_finished`'s status, if the run ended.
    pub final_status: Option<String>,
}

impl Replay {
    pub fn from_records(records: &[Value]) -> Result<Replay, String> {
        let first = records.first().ok_or("the journal is empty")?;
        if first["type"] != "run_started" {
            return Err("the journal does not begin with a run_started record".into());
        }
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let mode = match first["mode"].as_str() {
            Some("live") => Mode::Live,
            Some("dry-run") => Mode::DryRun,
            other => return Err(format!("unknown mode {other:?} in run_started")),
        };
        let mut replay = Replay {
            run_id: text(&first["run_id"]),
            mode,
            runbook_path: text(&first["runbook"]["path"]),
            runbook_sha256: text(&first["runbook"]["sha256"]),
            parameters: first["parameters"].as_object().cloned().unwrap_or_default(),
            event: first.get("event").filter(|e| !e.is_null()).cloned(),
            started_at: text(&first["ts"]),
            steps: HashMap::new(),
            items: HashMap::new(),
            final_status: None,
        };
        for record in records {
            let step = text(&record["step"]);
            match record["type"].as_str().unwrap_or_default() {
                "step_succeeded" => {
                    replay.steps.insert(
                        step,
                        Finished {
                            status: StepStatus::Succeeded,
                            outputs: record["outputs"].clone(),
                        },
                    );
                }
                "step_skipped" => {
                    replay.steps.insert(
                        step,
                        Finished {
                            status: StepStatus::Skipped,
                            outputs: Value::Object(Default::default()),
                        },
                    );
                }
                // A failure the runbook chose to continue past stays a failure; an aborting
                // failure is tried again on resume.
                "step_failed" if record["continued"] == true => {
                    replay.steps.insert(
                        step,
                        Finished {
                            status: StepStatus::Failed,
                            outputs: record["outputs"].clone(),
                        },
                    );
                }
                "item_succeeded" => {
                    if let Some(index) = record["item_index"].as_u64() {
                        replay.items.insert(
                            (step, index as usize),
                            (record["item"].clone(), record["outputs"].clone()),
                        );
                    }
                }
                "run_finished" => replay.final_status = Some(text(&record["status"])),
                "run_resumed" => replay.final_status = None,
                _ => {}
            }
        }
        Ok(replay)
    }
}
