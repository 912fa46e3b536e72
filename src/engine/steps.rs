//! The step loop: each step in order (or its outcome replayed from the journal), its `when`,
//! its fan-out over `for_each` with bounded concurrency, what a failure means for the run, and
//! the run's end — notifications, the last record, locks released, the drill verdict.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::group::{self, ItemPipeline};
use super::live::RunHold;
use super::observe::Progress;
use super::replay::Replay;
use super::run_locks::RunLocks;
use super::scope;
use super::state::RunState;
use super::unit::{Unit, continues, step_timeout};
use super::{EngineError, Mode, RunOutcome, RunStatus, StepStatus, StepSummary};
use super::{finding_update, notify, seal};
use crate::actions::{ActionError, RunContext};
use crate::journal::Event;
use crate::journal::event::{
    Refusal, RunFinished, RunInterrupted, StepCounts, StepFailed, StepSkipped, StepStarted,
    StepSucceeded,
};
use crate::runbook::model::{DEFAULT_CONCURRENCY, GROUP_ACTION, NotifyEvent};
use crate::runbook::{Runbook, Step};
use crate::template;

/// One item's end: `None` when the run was interrupted before it finished.
type ItemResult = Option<Result<Value, ActionError>>;

/// Everything a run holds once admitted: what it shares, its lease and locks, and why it may
/// not go on, if it may not.
pub(super) struct Admitted {
    pub state: Arc<RunState>,
    pub run: Arc<RunContext>,
    pub locks: RunLocks,
    /// Refused before any change, and by what.
    pub refusal: Option<(Refusal, String)>,
    /// Could not start (the account could not be confirmed): ends `failed`, resumable.
    pub failure: Option<String>,
    /// The template context the steps start from.
    pub context: Value,
    /// Held until the run ends: no other process acts for this run meanwhile.
    pub lease: Option<RunHold>,
}

/// Runs the steps (unless refused) and ends the run. A run whose lease in the shared table
/// was lost on the way ends in [`EngineError::LeaseLost`], whatever its last refused append or
/// call said: it is not a failure of the run, and its worker hands it on instead of counting
/// its message as failed.
pub(super) async fn finish(
    admitted: Admitted,
    runbook: &Runbook,
    replay: Option<&Replay>,
    interrupted: Arc<AtomicBool>,
) -> Result<RunOutcome, EngineError> {
    let fence = admitted.lease.as_ref().and_then(RunHold::fence);
    let run_id = admitted.state.run_id.clone();
    let ended = run_and_end(admitted, runbook, replay, interrupted).await;
    match ended {
        Err(error) if lost_the_lease(fence.as_ref(), &error) => Err(EngineError::LeaseLost {
            run_id,
            detail: error.to_string(),
        }),
        ended => ended,
    }
}

/// Whether an error ending a run is its lease's loss: the fence down, or a journal append
/// refused because another worker appended that seq first.
fn lost_the_lease(fence: Option<&crate::aws::fence::Fence>, error: &EngineError) -> bool {
    fence.is_some_and(|fence| !fence.holds())
        || matches!(
            error,
            EngineError::Journal(crate::journal::JournalError::Taken { .. })
        )
}

async fn run_and_end(
    admitted: Admitted,
    runbook: &Runbook,
    replay: Option<&Replay>,
    interrupted: Arc<AtomicBool>,
) -> Result<RunOutcome, EngineError> {
    let Admitted {
        state,
        run,
        locks,
        refusal,
        failure,
        context,
        lease,
    } = admitted;
    let mut execution = Execution {
        state: state.clone(),
        run: run.clone(),
        context,
        replay,
        interrupted,
        summaries: Vec::new(),
        waiting: None,
        failures: Default::default(),
    };
    let status = match (&refusal, &failure) {
        (Some((_, reason)), _) => {
            state.observe(Progress::Refused { reason });
            RunStatus::Refused
        }
        (None, Some(reason)) => {
            state.observe(Progress::Notice {
                text: &format!("the run could not start: {reason}"),
            });
            RunStatus::Failed
        }
        (None, None) => {
            if state.update_finding && replay.is_none() {
                let event = execution.context["event"].clone();
                let case = execution.context["params"]["case_id"]
                    .as_str()
                    .map(str::to_owned);
                let moment = finding_update::Moment::Started {
                    runbook: &runbook.name,
                    case: case.as_deref(),
                };
                finding_update::update(&state, &event, moment).await;
            }
            execution.steps(runbook).await?
        }
    };
    // A change a timed-out step left in flight finishes (and is journaled) before the run does.
    run.settle().await;
    let path = state
        .journal
        .path()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let journal_text = path.display().to_string();
    let event = match status {
        RunStatus::Succeeded => Some(NotifyEvent::Succeeded),
        RunStatus::Failed => Some(NotifyEvent::Failed),
        RunStatus::Refused => Some(NotifyEvent::Refused),
        RunStatus::Interrupted => Some(NotifyEvent::Interrupted),
        RunStatus::AwaitingApproval => Some(NotifyEvent::AwaitingApproval),
    };
    let (refused_by, reason) = match (refusal, failure, &execution.waiting) {
        (Some((kind, reason)), _, _) => (Some(kind), Some(reason)),
        (None, Some(reason), _) => (None, Some(reason)),
        (None, None, Some(waiting)) => (None, Some(waiting.clone())),
        (None, None, None) if status == RunStatus::Failed => {
            let failures = execution.failures.lock().expect("failures").join("; ");
            (None, Some(failures).filter(|f| !f.is_empty()))
        }
        (None, None, None) => (None, None),
    };
    if let Some(event) = event {
        let why = notify::Why {
            reason: reason.as_deref(),
            refused_by,
        };
        notify::send(
            &state,
            runbook,
            &execution.context,
            event,
            &journal_text,
            why,
        )
        .await;
    }
    // The finding's note comes before `run_finished` (nothing follows that record): it names
    // the head as of the note, a record the chain still holds after the run ends.
    // A refused run did nothing the finding should show (a forged or resolved finding, a
    // protected resource): it is left as it is.
    if state.update_finding && !matches!(status, RunStatus::Interrupted | RunStatus::Refused) {
        let event = execution.context["event"].clone();
        let head = state.journal.head();
        let moment = finding_update::Moment::Ended {
            status,
            head: head.as_deref(),
            journal: &journal_text,
            reason: reason.as_deref(),
        };
        finding_update::update(&state, &event, moment).await;
    }
    if status == RunStatus::Interrupted {
        state.write(Event::RunInterrupted(RunInterrupted {
            steps_done: execution.summaries.len(),
        }))?;
    } else {
        let counts = |s: StepStatus| execution.summaries.iter().filter(|x| x.status == s).count();
        state.write(Event::RunFinished(RunFinished {
            status,
            steps: StepCounts {
                succeeded: counts(StepStatus::Succeeded),
                failed: counts(StepStatus::Failed),
                skipped: counts(StepStatus::Skipped),
            },
            head: state.journal.head(),
            reason,
            refused_by,
        }))?;
    }
    // After the last record: the seal holds the run's end, signed.
    let sealed = seal::run_end(&state, status).await?;
    state.observe(Progress::RunFinished {
        run_id: &state.run_id,
        status,
        journal: &journal_text,
    });
    // A run that waits for a person keeps its locks (parked) until it is resumed.
    let released = if status == RunStatus::AwaitingApproval {
        locks.park().await
    } else {
        locks.release().await
    };
    if let Err(e) = released {
        tracing::warn!("failed to release or park locks: {e}");
    }
    // Last: the run is ended and sealed, so another worker may take it up at once.
    if let Some(lease) = lease {
        lease.release().await;
    }
    let drill = (state.mode == Mode::DryRun).then(|| {
        let records = crate::journal::read(&path).unwrap_or_default();
        let ids: Vec<String> = runbook
            .qualified_action_steps()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        super::drill::verdict(&records, &ids)
    });
    // What is printed (`--output json`) is redacted like the journal: action outputs can echo
    // a secret back.
    let steps = execution
        .summaries
        .into_iter()
        .map(|summary| StepSummary {
            outputs: state.redact_value(&summary.outputs),
            ..summary
        })
        .collect();
    Ok(RunOutcome {
        run_id: state.run_id.clone(),
        status,
        mode: state.mode,
        journal: path,
        steps,
        journal_syncs: state.journal.syncs(),
        drill,
        seal: sealed,
    })
}

struct Execution<'a> {
    state: Arc<RunState>,
    run: Arc<RunContext>,
    /// The template context; grows with each step's outputs.
    context: Value,
    replay: Option<&'a Replay>,
    interrupted: Arc<AtomicBool>,
    summaries: Vec<StepSummary>,
    /// The decision the run waits for, when it parks.
    waiting: Option<String>,
    /// Why steps failed, for the run's reason (and its notification: unattended, nobody reads
    /// the terminal — an interface left OPEN must reach a person).
    failures: std::sync::Mutex<Vec<String>>,
}

/// How one step ended, before the run decides what that means.
enum StepEnd {
    Done(StepStatus, Value),
    Refused,
    /// Failed and the run stops; what the step did (a fan-out's per-item outcomes).
    Aborted(Value),
    Interrupted,
    /// A person's decision is needed: the run parks, its step to be run again on resume.
    Parked(String),
}

impl Execution<'_> {
    async fn steps(&mut self, runbook: &Runbook) -> Result<RunStatus, EngineError> {
        let mut any_failed = false;
        for step in &runbook.steps {
            if let Some(done) = self.replay.and_then(|r| r.steps.get(&step.id)) {
                self.state.observe(Progress::StepReplayed {
                    step: &step.id,
                    status: done.status,
                });
                self.done(step, done.status, done.outputs.clone());
                any_failed |= done.status == StepStatus::Failed;
                continue;
            }
            if self.interrupted.load(Ordering::SeqCst) {
                return Ok(RunStatus::Interrupted);
            }
            let began = Instant::now();
            match self.step(step).await? {
                StepEnd::Done(status, outputs) => {
                    any_failed |= status == StepStatus::Failed;
                    self.finished(step, status, began, &outputs);
                    self.done(step, status, outputs);
                    // A skipped step changed nothing: the next step end seals its record.
                    if status != StepStatus::Skipped {
                        seal::step_end(&self.state).await?;
                    }
                }
                end @ (StepEnd::Refused | StepEnd::Aborted(_)) => {
                    self.finished(step, StepStatus::Failed, began, &Value::Null);
                    let (status, outputs) = match end {
                        StepEnd::Aborted(outputs) => (RunStatus::Failed, outputs),
                        _ => (RunStatus::Refused, json!({})),
                    };
                    self.summaries.push(StepSummary {
                        id: step.id.clone(),
                        status: StepStatus::Failed,
                        outputs,
                    });
                    return Ok(status);
                }
                StepEnd::Interrupted => return Ok(RunStatus::Interrupted),
                StepEnd::Parked(waiting) => {
                    self.waiting =
                        Some(format!("step `{}` waits for a person: {waiting}", step.id));
                    return Ok(RunStatus::AwaitingApproval);
                }
            }
        }
        Ok(if any_failed {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        })
    }

    fn finished(&self, step: &Step, status: StepStatus, began: Instant, _outputs: &Value) {
        self.state.observe(Progress::StepFinished {
            step: &step.id,
            status,
            elapsed: began.elapsed(),
            error: None,
        });
    }

    fn done(&mut self, step: &Step, status: StepStatus, outputs: Value) {
        self.context["steps"][&step.id] = json!({"status": status, "outputs": outputs});
        self.summaries.push(StepSummary {
            id: step.id.clone(),
            status,
            outputs,
        });
    }

    async fn step(&mut self, step: &Step) -> Result<StepEnd, EngineError> {
        if let Some(recheck) = &self.state.recheck
            && !recheck.runs(&step.id)
        {
            self.state.write(Event::StepSkipped(StepSkipped {
                step: step.id.clone(),
                item_index: None,
                condition: super::recheck::SKIPPED.into(),
                rendered: Value::Bool(false),
            }))?;
            return Ok(StepEnd::Done(StepStatus::Skipped, json!({})));
        }
        if let Some(condition) = &step.when {
            match self.state.templates.render_value(condition, &self.context) {
                Ok(value) if !template::truthy(&value) => {
                    self.state.write(Event::StepSkipped(StepSkipped {
                        step: step.id.clone(),
                        item_index: None,
                        condition: condition.clone(),
                        rendered: value,
                    }))?;
                    return Ok(StepEnd::Done(StepStatus::Skipped, json!({})));
                }
                Ok(_) => {}
                Err(e) => {
                    return self.step_failed(step, ActionError::Input(e.to_string()), json!({}));
                }
            }
        }
        let timeout = step_timeout(step);
        let deadline = Instant::now() + timeout;
        let Some(for_each) = &step.for_each else {
            if step.is_group() {
                let message = "a group step needs `for_each`".to_owned();
                return self.step_failed(step, ActionError::Input(message), json!({}));
            }
            self.state.observe(Progress::StepStarted {
                step: &step.id,
                action: &step.action,
                items: None,
            });
            let unit = Unit::new(
                &self.state,
                &self.run,
                step,
                None,
                &self.context,
                deadline,
                timeout,
            );
            return match unit.run().await {
                Ok(outputs) => Ok(StepEnd::Done(StepStatus::Succeeded, outputs)),
                Err(error) => self.after_failure(step, error),
            };
        };
        let items = match self.state.templates.render_tree(for_each, &self.context) {
            // An item listed twice is one resource: acting on it twice at once would race
            // (two isolations of one instance), so each runs once, in first-seen order.
            Ok(Value::Array(items)) => {
                let mut unique: Vec<Value> = Vec::with_capacity(items.len());
                for item in items {
                    if !unique.contains(&item) {
                        unique.push(item);
                    }
                }
                unique
            }
            Ok(other) => {
                let message = format!("`for_each` must render to a list, got {}", kind_of(&other));
                return self.step_failed(step, ActionError::Input(message), json!({}));
            }
            Err(e) => {
                return self.step_failed(step, ActionError::Input(e.to_string()), json!({}));
            }
        };
        self.fan_out(step, items, deadline, timeout).await
    }

    async fn fan_out(
        &mut self,
        step: &Step,
        items: Vec<Value>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<StepEnd, EngineError> {
        let concurrency = step.concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1) as usize;
        let action = if step.is_group() {
            GROUP_ACTION
        } else {
            &step.action
        };
        self.state.observe(Progress::StepStarted {
            step: &step.id,
            action,
            items: Some(items.len()),
        });
        self.state.write(Event::StepStarted(StepStarted {
            step: step.id.clone(),
            item_index: None,
            item: None,
            action: action.to_owned(),
            for_each: Some(items.clone()),
            concurrency: Some(concurrency),
            idempotency_key: format!("{}.{}", self.state.run_id, step.id),
            attempts: None,
            timeout: None,
            input: None,
        }))?;
        let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let shared_step = Arc::new(step.clone());
        // Each item copies this, not the whole run's context (see `scope`).
        let item_context = scope::for_items(&self.context, step);
        let mut results: Vec<Option<Result<Value, ActionError>>> = Vec::with_capacity(items.len());
        let mut tasks = tokio::task::JoinSet::new();
        for (index, item) in items.iter().enumerate() {
            if let Some((_, outputs)) = self
                .replay
                .and_then(|r| r.items.get(&(step.id.clone(), index)))
            {
                results.push(Some(Ok(outputs.clone())));
                continue;
            }
            results.push(None);
            let permit = semaphore
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore open");
            if self.interrupted.load(Ordering::SeqCst) {
                break;
            }
            let work: Pin<Box<dyn Future<Output = ItemResult> + Send>> = if step.is_group() {
                Box::pin(
                    ItemPipeline {
                        state: self.state.clone(),
                        run: self.run.clone(),
                        group: shared_step.clone(),
                        index,
                        item: item.clone(),
                        context: item_context.clone(),
                        deadline,
                        done: group::done_for(self.replay, step, index),
                        interrupted: self.interrupted.clone(),
                    }
                    .run(),
                )
            } else {
                let unit = Unit::new(
                    &self.state,
                    &self.run,
                    step,
                    Some((index, item.clone())),
                    &item_context,
                    deadline,
                    timeout,
                );
                Box::pin(async move { Some(unit.run().await) })
            };
            tasks.spawn(async move {
                let result = work.await;
                drop(permit);
                (index, result)
            });
        }
        let total = items.len();
        let mut done = results.iter().filter(|r| r.is_some()).count();
        let mut failed = 0;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                // An item the interruption stopped half-way has no result: the step is
                // interrupted once every item in flight has come back.
                Ok((_, None)) => {}
                Ok((index, Some(result))) => {
                    done += 1;
                    failed += usize::from(result.is_err());
                    self.state.observe(Progress::ItemFinished {
                        step: &step.id,
                        done,
                        total,
                        failed,
                    });
                    results[index] = Some(result);
                }
                Err(e) => {
                    return Err(EngineError::Internal(format!(
                        "a fan-out item of step `{}` panicked: {e}",
                        step.id
                    )));
                }
            }
        }
        if results.iter().any(Option::is_none) || results.len() < items.len() {
            return Ok(StepEnd::Interrupted);
        }
        let mut outputs = Vec::with_capacity(items.len());
        let mut failures = Vec::new();
        let mut refused = false;
        let mut parked = None;
        for (item, result) in items.iter().zip(results.into_iter().flatten()) {
            match result {
                Ok(value) => {
                    outputs.push(json!({"item": item, "status": "succeeded", "outputs": value}))
                }
                Err(ActionError::Journal(e)) => return Err(EngineError::Journal(e)),
                Err(ActionError::Parked(waiting)) => {
                    parked.get_or_insert(waiting);
                }
                // Stopped by Ctrl-C without an outcome: the step is interrupted.
                Err(error) if error.is_interrupted() => return Ok(StepEnd::Interrupted),
                Err(error) => {
                    refused |= error.is_refused();
                    let mut entry =
                        json!({"item": item, "status": "failed", "error": error.to_string()});
                    // A group item's inner steps that were done before it failed.
                    if step.is_group()
                        && let Some(done) = error.outputs()
                    {
                        entry["outputs"] = done.clone();
                    }
                    outputs.push(entry);
                    failures.push(error);
                }
            }
        }
        // An item that waits for a person parks the whole step: the others are journaled done,
        // and the step runs again (those items replayed) when a person resumes the run.
        if let Some(waiting) = parked {
            return Ok(StepEnd::Parked(waiting));
        }
        let outputs = Value::Array(outputs);
        if failures.is_empty() {
            self.state.write(Event::StepSucceeded(StepSucceeded {
                step: step.id.clone(),
                item_index: None,
                item: None,
                outputs: outputs.clone(),
                isolated: None,
            }))?;
            return Ok(StepEnd::Done(StepStatus::Succeeded, outputs));
        }
        let summary = format!(
            "{} of {} items failed; first: {}",
            failures.len(),
            items.len(),
            failures[0]
        );
        let error = if refused {
            ActionError::Refused(summary)
        } else {
            ActionError::Failed(summary)
        };
        self.step_failed(step, error, outputs)
    }

    /// Journals a step-level failure (for failures outside a unit: `when`, `for_each`,
    /// aggregated fan-out) and decides what it means for the run.
    fn step_failed(
        &self,
        step: &Step,
        error: ActionError,
        outputs: Value,
    ) -> Result<StepEnd, EngineError> {
        self.state.write(Event::StepFailed(StepFailed {
            step: step.id.clone(),
            item_index: None,
            item: None,
            class: error.class().to_owned(),
            code: error.code().map(str::to_owned),
            request_id: None,
            message: error.to_string(),
            outputs: Some(outputs.clone()),
            continued: Some(continues(step, &error, self.state.mode)),
        }))?;
        Ok(self.decide(step, &error, outputs))
    }

    /// A unit's failure (already journaled by the unit): the journal failing ends the run.
    fn after_failure(&self, step: &Step, error: ActionError) -> Result<StepEnd, EngineError> {
        let error = match error {
            ActionError::Journal(e) => return Err(EngineError::Journal(e)),
            ActionError::Parked(waiting) => return Ok(StepEnd::Parked(waiting)),
            error if error.is_interrupted() => return Ok(StepEnd::Interrupted),
            other => other,
        };
        let outputs = error.outputs().cloned().unwrap_or_else(|| json!({}));
        Ok(self.decide(step, &error, outputs))
    }

    fn decide(&self, step: &Step, error: &ActionError, outputs: Value) -> StepEnd {
        let message = self.state.redact(&error.to_string());
        let note = format!("step `{}` failed: {message}", step.id);
        self.state.observe(Progress::Notice { text: &note });
        self.failures.lock().expect("failures").push(note);
        if error.is_refused() {
            StepEnd::Refused
        } else if continues(step, error, self.state.mode) {
            StepEnd::Done(StepStatus::Failed, outputs)
        } else {
            StepEnd::Aborted(outputs)
        }
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
