//! One queue message's handling, the same for `serve` and the Lambda handler: an event goes to
//! `dispatch`'s code; a decision is checked against its sender and carried into the run it
//! decides; a resume request resumes its run. Each answers what becomes of the message.

use std::sync::Arc;

use serde_json::{Value, json};

use super::log::{RunLog, Sink};
use super::message::{self, Message};
use super::sender;
use super::serve::{Disposition, disposition};
use crate::check::LoadedRunbook;
use crate::engine::decisions::DecisionRequest;
use crate::engine::{self, EngineError, Mode, RunOutcome, RunStatus, Settings};
use crate::trigger::dispatch;

/// A message as received.
pub struct Incoming<'a> {
    pub id: &'a str,
    pub body: &'a str,
    /// SQS's `SenderId`: the principal that sent the message.
    pub sender_id: Option<&'a str>,
}

/// What to do with the message, and what to log about it (never its body).
pub async fn handle(
    incoming: Incoming<'_>,
    runbooks: &[LoadedRunbook],
    mode: Mode,
    settings: &Settings,
    log: &Sink,
) -> (Disposition, Value) {
    let settings = Settings {
        observer: Arc::new(RunLog::new(log.clone(), incoming.id)),
        ..settings.clone()
    };
    match message::parse(incoming.body) {
        Message::Malformed(why) => (Disposition::Keep(format!("malformed: {why}")), Value::Null),
        Message::Event(event) => {
            let reports = dispatch::dispatch(&[event], runbooks, mode, &settings).await;
            let outcomes = serde_json::to_value(&reports).unwrap_or(Value::Null);
            (disposition(&reports), outcomes)
        }
        Message::Resume { run_id } => resumed(&run_id, &settings).await,
        Message::Decision(decision) => {
            let Some(clients) = &settings.clients else {
                return (
                    Disposition::Keep("no AWS clients to check the sender with".into()),
                    Value::Null,
                );
            };
            match sender::verify(&clients.iam, &decision.decider, incoming.sender_id).await {
                // Final: the same message will never come from someone else.
                Err(why) => (
                    Disposition::Delete,
                    json!({"run_id": decision.run_id, "decision_refused": why}),
                ),
                Ok(decider) => {
                    let settings = Settings {
                        decision: Some(DecisionRequest {
                            step: decision.step.clone(),
                            verdict: decision.verdict,
                            reason: decision.reason.clone(),
                            channel: "queue".into(),
                            sender: Some(decider),
                        }),
                        ..settings
                    };
                    resumed(&decision.run_id, &settings).await
                }
            }
        }
    }
}

/// Resumes `run_id` (with the settings' decision, if any) and says what becomes of the
/// message: kept while the run failed, was interrupted or is live elsewhere; deleted once it
/// went as far as it can, or when the request can never succeed (refused, invalid).
async fn resumed(run_id: &str, settings: &Settings) -> (Disposition, Value) {
    let result = engine::resume(run_id, &[], None, settings).await;
    (
        resume_disposition(run_id, &result),
        outcome(run_id, &result),
    )
}

fn resume_disposition(run_id: &str, result: &Result<RunOutcome, EngineError>) -> Disposition {
    match result {
        Ok(run) if matches!(run.status, RunStatus::Failed | RunStatus::Interrupted) => {
            Disposition::Keep(format!("run {run_id} {}", run.status.as_str()))
        }
        Ok(_) => Disposition::Delete,
        Err(EngineError::Invalid(_) | EngineError::Refused(_)) => Disposition::Delete,
        Err(error) => Disposition::Keep(format!("run {run_id}: {error}")),
    }
}

fn outcome(run_id: &str, result: &Result<RunOutcome, EngineError>) -> Value {
    match result {
        Ok(run) => json!({"run_id": run_id, "status": run.status.as_str()}),
        Err(error) => json!({"run_id": run_id, "error": error.to_string()}),
    }
}
