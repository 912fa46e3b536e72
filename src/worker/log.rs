//! A worker's structured log: one JSON value per message, per run event and per health tick,
//! handed to a sink (the command line writes each as a line on stderr). Bodies of messages
//! never appear (they may hold secrets); errors are the engine's, already redacted.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::engine::{Observer, Progress};

/// Where log lines go: stderr for `serve`; a test may collect them.
pub type Sink = Arc<dyn Fn(Value) + Send + Sync>;

/// The runs of one message, logged as they happen: each line names the message and the run.
pub struct RunLog {
    sink: Sink,
    message_id: String,
    run_id: Mutex<Option<String>>,
}

impl RunLog {
    pub fn new(sink: Sink, message_id: &str) -> RunLog {
        RunLog {
            sink,
            message_id: message_id.to_owned(),
            run_id: Mutex::new(None),
        }
    }

    fn emit(&self, event: &str, mut fields: Value) {
        let run_id = self.run_id.lock().ok().and_then(|r| r.clone());
        if let Value::Object(map) = &mut fields {
            map.insert("log".into(), json!(event));
            map.insert("message_id".into(), json!(self.message_id));
            map.entry("run_id").or_insert(json!(run_id));
        }
        (self.sink)(fields);
    }
}

impl Observer for RunLog {
    fn on(&self, progress: &Progress<'_>) {
        match progress {
            Progress::RunStarted {
                run_id,
                mode,
                journal,
            }
            | Progress::RunResumed {
                run_id,
                mode,
                journal,
            } => {
                if let Ok(mut current) = self.run_id.lock() {
                    *current = Some((*run_id).to_owned());
                }
                let event = if matches!(progress, Progress::RunStarted { .. }) {
                    "run_started"
                } else {
                    "run_resumed"
                };
                self.emit(event, json!({"mode": mode, "journal": journal}));
            }
            Progress::StepFinished {
                step,
                status,
                elapsed,
                error,
            } => self.emit(
                "step_finished",
                json!({"step": step, "status": status, "ms": elapsed.as_millis() as u64, "error": error}),
            ),
            Progress::Refused { reason } => self.emit("refused", json!({"reason": reason})),
            Progress::Notice { text } => self.emit("notice", json!({"text": text})),
            Progress::RunFinished {
                run_id,
                status,
                journal,
            } => self.emit(
                "run_finished",
                json!({"run_id": run_id, "status": status.as_str(), "journal": journal}),
            ),
            _ => {}
        }
    }
}
