//! One execution of an action — a single step, or one item of a fan-out: render its input,
//! parse it, run it under the step's deadline with retries, and journal its start, each retry
//! and its end.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::state::RunState;
use super::{fault, isolated, retry};
use crate::actions::{self, ActionError, ActionInput, RunContext, StepContext};
use crate::journal::event::{StepFailed, StepRetry, StepStarted, StepSucceeded};
use crate::journal::{Event, Mode};
use crate::runbook::model::{OnFailure, qualified_id};
use crate::runbook::{Step, duration};

/// Whether a failure lets the run go on: `on_failure: continue`, unless refused or the journal
/// failed (nothing may happen that cannot be recorded). A drill always goes on: it changes
/// nothing, and a drill that stopped at the first step a service answered wrongly (DryRun
/// ignored, a permission missing) would never show what the later steps would do.
pub fn continues(step: &Step, error: &ActionError, mode: Mode) -> bool {
    (step.on_failure == OnFailure::Continue || mode == Mode::DryRun)
        && !error.is_refused()
        && !error.is_journal()
}

/// A step without `timeout` gets this much.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The step's `timeout` (validated when the runbook was loaded), or the default.
pub fn step_timeout(step: &Step) -> Duration {
    step.timeout
        .as_deref()
        .and_then(|t| duration::parse(t).ok())
        .unwrap_or(DEFAULT_STEP_TIMEOUT)
}

pub(super) struct Unit {
    state: Arc<RunState>,
    run: Arc<RunContext>,
    step: Step,
    /// The group this is an inner step of: journaled as `<group>.<step>`.
    group: Option<String>,
    item: Option<(usize, Value)>,
    context: Value,
    deadline: Instant,
    timeout: Duration,
}

impl Unit {
    pub fn new(
        state: &Arc<RunState>,
        run: &Arc<RunContext>,
        step: &Step,
        item: Option<(usize, Value)>,
        context: &Value,
        deadline: Instant,
        timeout: Duration,
    ) -> Unit {
        let mut context = context.clone();
        if let Some((_, value)) = &item {
            context["item"] = value.clone();
        }
        Unit {
            state: state.clone(),
            run: run.clone(),
            step: step.clone(),
            group: None,
            item,
            context,
            deadline,
            timeout,
        }
    }

    /// An inner step of `group`, for the item the unit was made for: its context already holds
    /// the item's earlier inner steps.
    pub fn in_group(mut self, group: &str) -> Unit {
        self.group = Some(group.to_owned());
        self
    }

    /// The id its records carry.
    fn id(&self) -> String {
        match &self.group {
            Some(group) => qualified_id(group, &self.step.id),
            None => self.step.id.clone(),
        }
    }

    fn fault(&self, point: &str) {
        match &self.item {
            Some((index, _)) => fault::point(&format!("{point}:{}#{index}", self.id())),
            None => fault::point(&format!("{point}:{}", self.id())),
        }
    }

    fn item_index(&self) -> Option<usize> {
        self.item.as_ref().map(|(i, _)| *i)
    }

    fn item_value(&self) -> Option<Value> {
        self.item.as_ref().map(|(_, v)| v.clone())
    }

    /// `<run>.<step>`, `<run>.<step>.<item>`, or in a group `<run>.<group>.<item>.<inner>`.
    fn key(&self) -> String {
        let run = &self.state.run_id;
        let step = &self.step.id;
        match (&self.group, &self.item) {
            (Some(group), Some((index, _))) => format!("{run}.{group}.{index}.{step}"),
            (_, Some((index, _))) => format!("{run}.{step}.{index}"),
            (_, None) => format!("{run}.{step}"),
        }
    }

    fn render(&self) -> Result<(Value, ActionInput), ActionError> {
        let template = serde_json::to_value(&self.step.input)
            .map_err(|e| ActionError::Input(format!("the step's input is not JSON: {e}")))?;
        let rendered = self
            .state
            .templates
            .render_tree(&template, &self.context)
            .map_err(|e| ActionError::Input(e.to_string()))?;
        let parsed = ActionInput::parse(&self.step.action, rendered.clone())
            .map_err(|e| ActionError::Input(e.to_string()))?;
        Ok((rendered, parsed))
    }

    pub async fn run(self) -> Result<Value, ActionError> {
        let key = self.key();
        let input = self.render();
        let started = StepStarted {
            step: self.id(),
            item_index: self.item_index(),
            item: self.item_value(),
            action: self.step.action.clone(),
            for_each: None,
            concurrency: None,
            idempotency_key: key.clone(),
            attempts: Some(self.attempts()),
            timeout: Some(duration::format(self.timeout)),
            input: input.as_ref().ok().map(|(rendered, _)| rendered.clone()),
        };
        self.state.write_step(match self.item {
            Some(_) => Event::ItemStarted(started),
            None => Event::StepStarted(started),
        })?;
        self.fault("after-step-started");
        let result = match input {
            Ok((_, parsed)) => {
                match tokio::time::timeout_at(self.deadline, self.attempts_loop(&parsed, &key))
                    .await
                {
                    Ok(result) => result,
                    Err(_) => Err(ActionError::TimedOut(format!(
                        "step `{}` timed out after {} (its `timeout`)",
                        self.id(),
                        duration::format(self.timeout)
                    ))),
                }
            }
            Err(error) => Err(error),
        };
        self.fault("before-step-finished");
        match &result {
            Ok(outputs) => {
                let done = StepSucceeded {
                    step: self.id(),
                    item_index: self.item_index(),
                    item: self.item_value(),
                    outputs: outputs.clone(),
                    // A drill cuts nothing off: no time to isolation.
                    isolated: (self.state.mode == Mode::Live
                        && actions::find(&self.step.action).is_some_and(|info| info.isolates))
                    .then(|| isolated::since_start(&self.context)),
                };
                self.state.write_step(match self.item {
                    Some(_) => Event::ItemSucceeded(done),
                    None => Event::StepSucceeded(done),
                })?;
            }
            // Waiting for a person is not a failure: the step has no outcome yet and runs again
            // when a person resumes the run.
            Err(error) if error.is_parked() => {}
            // Nor is an interruption: the step runs again on resume.
            Err(error) if error.is_interrupted() => {}
            Err(error) => {
                let failed = StepFailed {
                    step: self.id(),
                    item_index: self.item_index(),
                    item: self.item_value(),
                    class: error.class().to_owned(),
                    code: error.code().map(str::to_owned),
                    request_id: Some(error.request_id().map(str::to_owned)),
                    message: error.to_string(),
                    outputs: error.outputs().cloned(),
                    // A fan-out item's failure is the step's to decide; a group's inner
                    // step decides for its item.
                    continued: (self.item.is_none() || self.group.is_some())
                        .then(|| continues(&self.step, error, self.state.mode)),
                };
                self.state.write_step(match self.item {
                    Some(_) => Event::ItemFailed(failed),
                    None => Event::StepFailed(failed),
                })?;
            }
        }
        self.fault("after-step-finished");
        result
    }

    fn attempts(&self) -> u32 {
        self.step.retry.as_ref().map_or(1, |r| r.attempts.max(1))
    }

    async fn attempts_loop(&self, input: &ActionInput, key: &str) -> Result<Value, ActionError> {
        let attempts = self.attempts();
        let mut attempt = 1;
        loop {
            let ctx = StepContext::new(
                self.run.clone(),
                self.state.run_id.clone(),
                self.id(),
                self.item_index(),
                key,
                self.state.mode,
                attempt,
            )
            .with_deadline(self.deadline);
            match input.execute(&ctx).await {
                Ok(outputs) => return Ok(outputs),
                Err(error) if error.is_retryable() && attempt < attempts => {
                    let delay = retry::backoff(attempt);
                    self.state.write_step(Event::StepRetry(StepRetry {
                        step: self.id(),
                        item_index: self.item_index(),
                        item: self.item_value(),
                        attempt,
                        class: error.class().to_owned(),
                        code: error.code().map(str::to_owned),
                        message: error.to_string(),
                        retry_in_ms: delay.as_millis() as u64,
                    }))?;
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}
