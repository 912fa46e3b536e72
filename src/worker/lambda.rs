//! The Lambda handler's logic (the `firebreak-lambda` binary, feature `lambda`, wraps it in
//! `lambda_runtime`): an SQS batch or one EventBridge event in, each message handed to
//! `dispatch`'s code as `serve` does. A run that would outlast the invocation stops at its
//! next step boundary a margin before the deadline (never between an interface's two isolation
//! moves) and journals `run_interrupted`; its message is reported as a batch item failure, so
//! SQS delivers it again and the next invocation resumes the run where it stopped. Waits longer
//! than 15 minutes (snapshots, stacks) so complete across invocations.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::handle::{Disposition, Incoming, handle, send_resumes};
use super::log::Sink;
use super::queue::Queue;
use crate::check::LoadedRunbook;
use crate::engine::{Mode, Settings};

/// What every invocation shares.
#[derive(Clone)]
pub struct Handler {
    pub runbooks: Arc<Vec<LoadedRunbook>>,
    pub settings: Settings,
    pub mode: Mode,
    pub log: Sink,
    /// How long before the deadline runs are told to stop: enough for the step in flight to end
    /// and its records (and seal) to be written.
    pub margin: Duration,
    /// Where a run stopped at the deadline is carried on: a resume request on this queue
    /// (`FIREBREAK_QUEUE_URL`), delivered after `resume_delay`. Without one, the message
    /// itself is retried (a batch item failure; an EventBridge event's invocation fails).
    pub queue: Option<Queue>,
    pub resume_delay: Duration,
}

impl Handler {
    /// Handles one invocation's payload, which must end by `deadline`. An SQS batch answers
    /// `{"batchItemFailures": [...]}` (the messages to deliver again); an EventBridge event
    /// answers `{}`, or an error when its run must be retried.
    pub async fn invoke(&self, payload: Value, deadline: Instant) -> Result<Value, String> {
        // This invocation's runs, and only they, stop a margin before its deadline.
        let stop = Arc::new(AtomicBool::new(false));
        let timer = {
            let stop = stop.clone();
            let at = deadline.checked_sub(self.margin).unwrap_or(deadline);
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                stop.store(true, Ordering::SeqCst);
            })
        };
        let settings = Settings {
            interrupted: stop,
            ..self.settings.clone()
        };
        let answer = match payload["Records"].as_array() {
            Some(records) => {
                let mut failures = Vec::new();
                for record in records {
                    let id = record["messageId"].as_str().unwrap_or_default().to_owned();
                    let incoming = Incoming {
                        id: &id,
                        body: record["body"].as_str().unwrap_or_default(),
                        sender_id: record["attributes"]["SenderId"].as_str(),
                    };
                    if let Disposition::Keep(why) = self.handle(incoming, &settings).await {
                        (self.log)(
                            json!({"log": "message", "message_id": id, "disposition": "retried", "why": why}),
                        );
                        failures.push(json!({"itemIdentifier": id}));
                    } else {
                        (self.log)(
                            json!({"log": "message", "message_id": id, "disposition": "done"}),
                        );
                    }
                }
                Ok(json!({"batchItemFailures": failures}))
            }
            None => {
                let id = payload["id"].as_str().unwrap_or("event").to_owned();
                let body = payload.to_string();
                let incoming = Incoming {
                    id: &id,
                    body: &body,
                    sender_id: None,
                };
                match self.handle(incoming, &settings).await {
                    Disposition::Delete => Ok(json!({})),
                    Disposition::Keep(why) => Err(format!("event {id}: {why}; retry")),
                }
            }
        };
        timer.abort();
        answer
    }

    /// The message's fate; a run stopped at the deadline is handed on as a resume request
    /// when there is a queue, and the message is then done.
    async fn handle(&self, incoming: Incoming<'_>, settings: &Settings) -> Disposition {
        let handled = handle(incoming, &self.runbooks, self.mode, settings, &self.log).await;
        match &self.queue {
            Some(queue)
                if !handled.carry_on.is_empty()
                    && send_resumes(
                        queue,
                        &handled.carry_on,
                        handled.resume_delay(self.resume_delay),
                        &self.log,
                    )
                    .await =>
            {
                Disposition::Delete
            }
            _ => handled.disposition,
        }
    }
}
