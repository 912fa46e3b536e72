//! One queue message's handling, the same for `serve` and the Lambda handler: an event goes to
//! `dispatch`'s code; a decision is checked against its sender and carried into the run it
//! decides; a resume request resumes its run. Each answers what becomes of the message.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::log::{RunLog, Sink};
use super::message::{self, Message};
use super::queue::Queue;
use super::sender;
use crate::check::LoadedRunbook;
use crate::engine::decisions::DecisionRequest;
use crate::engine::{self, EngineError, Mode, RunOutcome, RunStatus, Settings};
use crate::trigger::dispatch::{self, EventReport, Outcome};

/// What becomes of a message once its runs ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Done: every run it started is durable (succeeded, waits for a person, refused), or it
    /// was a duplicate, or nothing matched.
    Delete,
    /// Left to come back (a failed or interrupted run resumes on the next delivery; a
    /// malformed message reaches the dead-letter queue), and why.
    Keep(String),
}

/// What to do with a message from what `dispatch` reported for it.
pub fn disposition(reports: &[EventReport]) -> Disposition {
    for matched in reports.iter().flat_map(|r| &r.matched) {
        let why = match &matched.outcome {
            Outcome::Ran { run } | Outcome::Resumed { run } | Outcome::Rechecked { run, .. } => {
                match run.status {
                    RunStatus::Failed | RunStatus::Interrupted => {
                        format!("run {} {}", run.run_id, run.status.as_str())
                    }
                    _ => continue,
                }
            }
            Outcome::Duplicate { .. } | Outcome::Joined { .. } | Outcome::Refused { .. } => {
                continue;
            }
            Outcome::LeaseLost { run_id, .. } => format!("run {run_id} lost its lease"),
            Outcome::Invalid { .. } => format!("{}: invalid", matched.runbook),
            Outcome::Failed { .. } => format!("{}: dispatch failed", matched.runbook),
        };
        return Disposition::Keep(why);
    }
    Disposition::Delete
}

/// A message as received.
pub struct Incoming<'a> {
    pub id: &'a str,
    pub body: &'a str,
    /// SQS's `SenderId`: the principal that sent the message.
    pub sender_id: Option<&'a str>,
}

/// What became of a message.
pub struct Handled {
    pub disposition: Disposition,
    /// What to log about it (never its body).
    pub outcomes: Value,
    /// Runs that stopped at a step boundary because they were told to (a deadline, a stop)
    /// and nothing else went wrong: a resume request carries each on, and the message itself
    /// is then done. Empty when the message must come back as it is.
    pub carry_on: Vec<String>,
    /// The least delay for those resume requests. A run that lost its lease is carried on only
    /// once that lease has run out in the table: the table's lease outlives the worker's fence
    /// by a margin, so that a journal write sent just before the fence went down still lands
    /// before another worker may take the run up; a request delivered sooner finds the run
    /// live (or its next seq taken by that write) and comes back, spending a receive.
    pub carry_on_after: Duration,
}

impl Handled {
    /// When the resume requests may be delivered, given the worker's own `--resume-delay`.
    pub fn resume_delay(&self, configured: Duration) -> Duration {
        configured.max(self.carry_on_after)
    }
}

/// What to do with the message, and what to log about it (never its body).
pub async fn handle(
    incoming: Incoming<'_>,
    runbooks: &[LoadedRunbook],
    mode: Mode,
    settings: &Settings,
    log: &Sink,
) -> Handled {
    let (disposition, outcomes, carry_on, lease_lost) =
        handled(incoming, runbooks, mode, settings, log).await;
    let lease = settings.shared.as_ref().map(|shared| shared.lease);
    Handled {
        disposition,
        outcomes,
        carry_on,
        carry_on_after: lease.filter(|_| lease_lost).unwrap_or_default(),
    }
}

/// A message's answer: its disposition, what to log, the runs to carry on, and whether one of
/// those lost its lease.
type Answer = (Disposition, Value, Vec<String>, bool);

async fn handled(
    incoming: Incoming<'_>,
    runbooks: &[LoadedRunbook],
    mode: Mode,
    settings: &Settings,
    log: &Sink,
) -> Answer {
    let settings = Settings {
        observer: Arc::new(RunLog::new(log.clone(), incoming.id)),
        ..settings.clone()
    };
    match message::parse(incoming.body) {
        Message::Malformed(why) => (
            Disposition::Keep(format!("malformed: {why}")),
            Value::Null,
            Vec::new(),
            false,
        ),
        Message::Event(event) => {
            let reports = dispatch::dispatch(&[event], runbooks, mode, &settings).await;
            let outcomes = serde_json::to_value(&reports).unwrap_or(Value::Null);
            let lease_lost = lost_a_lease(&reports);
            (
                disposition(&reports),
                outcomes,
                carry_on(&reports),
                lease_lost,
            )
        }
        Message::Resume { run_id } => resumed(&run_id, &settings, Request::Resume).await,
        Message::Decision(decision) => {
            let Some(clients) = &settings.clients else {
                return (
                    Disposition::Keep("no AWS clients to check the sender with".into()),
                    Value::Null,
                    Vec::new(),
                    false,
                );
            };
            match sender::verify(&clients.iam, &decision.decider, incoming.sender_id).await {
                // Final: the same message will never come from someone else.
                Err(why) => (
                    Disposition::Delete,
                    json!({"run_id": decision.run_id, "decision_refused": why}),
                    Vec::new(),
                    false,
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
                    resumed(&decision.run_id, &settings, Request::Decision).await
                }
            }
        }
    }
}

/// What a message asks of a run it resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    /// Carry it on: any worker's doing so will do.
    Resume,
    /// Carry a person's decision into it: only this message holds the decision.
    Decision,
}

/// Resumes `run_id` (with the settings' decision, if any) and says what becomes of the
/// message: kept while the run failed, was interrupted or is live (perhaps only the stale
/// lease of the worker that lost it); deleted once it went as far as it can, or when the
/// request can never succeed (refused, invalid). A run stopped at a boundary or by its lease's
/// loss is carried on by a new resume request — unless the message is a decision, which must
/// itself come back: a resume request would carry the run on without it.
async fn resumed(run_id: &str, settings: &Settings, request: Request) -> Answer {
    let result = engine::resume(run_id, &[], None, settings).await;
    let carry_on = match &result {
        Ok(run) if run.status == RunStatus::Interrupted => vec![run_id.to_owned()],
        Err(EngineError::LeaseLost { .. }) if request == Request::Resume => {
            vec![run_id.to_owned()]
        }
        _ => Vec::new(),
    };
    (
        resume_disposition(run_id, &result),
        outcome(run_id, &result),
        carry_on,
        matches!(result, Err(EngineError::LeaseLost { .. })),
    )
}

/// Whether a run the event started or resumed lost its lease on the way.
fn lost_a_lease(reports: &[EventReport]) -> bool {
    reports
        .iter()
        .flat_map(|r| &r.matched)
        .any(|m| matches!(m.outcome, Outcome::LeaseLost { .. }))
}

/// The runs an event's message may hand on as resume requests: those interrupted, provided
/// nothing else about the message needs it to come back.
fn carry_on(reports: &[EventReport]) -> Vec<String> {
    let mut interrupted = Vec::new();
    for matched in reports.iter().flat_map(|r| &r.matched) {
        match &matched.outcome {
            Outcome::Ran { run } | Outcome::Resumed { run } | Outcome::Rechecked { run, .. } => {
                match run.status {
                    RunStatus::Interrupted => interrupted.push(run.run_id.clone()),
                    RunStatus::Failed => return Vec::new(),
                    _ => {}
                }
            }
            // Stopped by its lease, not by anything wrong with it: carried on like an
            // interruption, so a slow table never spends the message's receives.
            Outcome::LeaseLost { run_id, .. } => interrupted.push(run_id.clone()),
            Outcome::Invalid { .. } | Outcome::Failed { .. } => return Vec::new(),
            Outcome::Duplicate { .. } | Outcome::Joined { .. } | Outcome::Refused { .. } => {}
        }
    }
    interrupted
}

/// Sends a resume request for each run, delivered after `delay`; whether all were sent (only
/// then may the message that started them go).
pub async fn send_resumes(queue: &Queue, runs: &[String], delay: Duration, log: &Sink) -> bool {
    let mut all = true;
    for run_id in runs {
        match queue.send(&message::resume_body(run_id), delay).await {
            Ok(message_id) => log(json!({
                "log": "carried_on", "run_id": run_id, "resume_message_id": message_id,
                "delay_seconds": delay.min(Queue::MAX_DELAY).as_secs(),
            })),
            Err(error) => {
                all = false;
                log(json!({"log": "carry_on_failed", "run_id": run_id, "error": error}));
            }
        }
    }
    all
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::dispatch::Matched;

    fn report(outcomes: Vec<Outcome>) -> Vec<EventReport> {
        vec![EventReport {
            event_id: Some("e-1".into()),
            source: Some("aws.guardduty".into()),
            detail_type: Some("GuardDuty Finding".into()),
            matched: outcomes
                .into_iter()
                .map(|outcome| Matched {
                    runbook: "ec2-instance-compromise".into(),
                    trigger: "guardduty-ec2".into(),
                    dedupe_key: Some("f-1".into()),
                    outcome,
                })
                .collect(),
        }]
    }

    fn lease_lost(run_id: &str) -> Outcome {
        Outcome::LeaseLost {
            run_id: run_id.into(),
            reason: "the lease r is no longer this worker's".into(),
        }
    }

    #[test]
    fn a_run_that_lost_its_lease_is_carried_on_not_failed() {
        let reports = report(vec![lease_lost("r-1")]);
        // Kept unless its resume request is sent (then the message is done)...
        assert_eq!(
            disposition(&reports),
            Disposition::Keep("run r-1 lost its lease".into())
        );
        // ...and handed on like an interrupted run, once its lease has run out.
        assert_eq!(carry_on(&reports), ["r-1"]);
        assert!(lost_a_lease(&reports));
    }

    #[test]
    fn a_lost_lease_is_carried_on_no_sooner_than_the_lease_lasts() {
        let handled = |carry_on_after| Handled {
            disposition: Disposition::Delete,
            outcomes: Value::Null,
            carry_on: vec!["r-1".into()],
            carry_on_after,
        };
        let (second, lease) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(handled(lease).resume_delay(second), lease);
        assert_eq!(handled(Duration::ZERO).resume_delay(second), second);
        let failed = report(vec![Outcome::Failed {
            reason: "journal".into(),
        }]);
        assert!(!lost_a_lease(&failed));
    }

    #[test]
    fn a_failure_beside_a_lost_lease_keeps_the_message_as_it_is() {
        let reports = report(vec![
            lease_lost("r-1"),
            Outcome::Failed {
                reason: "journal".into(),
            },
        ]);
        assert!(carry_on(&reports).is_empty());
    }

    #[test]
    fn a_request_for_a_run_live_elsewhere_comes_back() {
        // Live may be the stale lease of the worker that lost it and sent this request: the
        // request comes back rather than be dropped with the run unfinished.
        let live = Err(EngineError::Live("held by worker 2".into()));
        assert!(matches!(
            resume_disposition("r-1", &live),
            Disposition::Keep(_)
        ));
        let lost = Err(EngineError::LeaseLost {
            run_id: "r-1".into(),
            detail: "fence".into(),
        });
        assert!(matches!(
            resume_disposition("r-1", &lost),
            Disposition::Keep(_)
        ));
    }
}
