//! One item of a group step: its inner steps in order, each under its own `when`, `timeout`,
//! `retry` and `on_failure`, independently of the other items. An instance is isolated as soon
//! as its own describe is done, not when the whole fleet's is; one item failing stops only
//! that item. Each inner step is journaled under `<group>.<inner>` with the item's index, the
//! item's end under the group's id — so a resumed run replays what each item finished and goes
//! on at its next inner step.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::StepStatus;
use super::replay::{Finished, Replay};
use super::state::RunState;
use super::unit::{Unit, continues, step_timeout};
use crate::actions::{ActionError, RunContext};
use crate::journal::Event;
use crate::journal::event::{StepFailed, StepSkipped, StepSucceeded};
use crate::runbook::Step;
use crate::runbook::model::qualified_id;
use crate::template;

pub(super) struct ItemPipeline {
    pub state: Arc<RunState>,
    pub run: Arc<RunContext>,
    pub group: Arc<Step>,
    pub index: usize,
    pub item: Value,
    /// The run's context when the group started; gains `item` and the item's inner steps.
    pub context: Value,
    /// The group's deadline: no inner step runs past it.
    pub deadline: Instant,
    /// Inner steps this item already finished in an earlier attempt of the run.
    pub done: HashMap<String, Finished>,
    pub interrupted: Arc<AtomicBool>,
}

/// The inner steps `replay` says are done for item `index` of `group`.
pub(super) fn done_for(
    replay: Option<&Replay>,
    group: &Step,
    index: usize,
) -> HashMap<String, Finished> {
    let Some(replay) = replay else {
        return HashMap::new();
    };
    group
        .steps
        .iter()
        .flatten()
        .filter_map(|inner| {
            let key = (qualified_id(&group.id, &inner.id), index);
            replay
                .item_steps
                .get(&key)
                .map(|finished| (inner.id.clone(), finished.clone()))
        })
        .collect()
}

impl ItemPipeline {
    /// The item's outputs (`{<inner>: outputs}`), its first failure (with those outputs), or
    /// `None` when the run was interrupted before the item finished.
    pub async fn run(mut self) -> Option<Result<Value, ActionError>> {
        self.context["item"] = self.item.clone();
        let mut outputs = Map::new();
        let mut first_failure: Option<(String, ActionError)> = None;
        let inner_steps = self.group.steps.clone().unwrap_or_default();
        for inner in &inner_steps {
            let (status, value) = match self.done.remove(&inner.id) {
                Some(finished) => (finished.status, finished.outputs),
                None => {
                    if self.interrupted.load(Ordering::SeqCst) {
                        return None;
                    }
                    match self.inner(inner).await {
                        Ok(InnerEnd::Done(status, value)) => (status, value),
                        Ok(InnerEnd::Failed(error, goes_on)) => {
                            let value = error.outputs().cloned().unwrap_or_else(|| json!({}));
                            first_failure.get_or_insert((inner.id.clone(), error));
                            if !goes_on {
                                self.remember(inner, StepStatus::Failed, &value, &mut outputs);
                                break;
                            }
                            (StepStatus::Failed, value)
                        }
                        Ok(InnerEnd::Interrupted) => return None,
                        Err(journal) => return Some(Err(journal)),
                    }
                }
            };
            if status == StepStatus::Failed && first_failure.is_none() {
                // Failed in an earlier attempt with `on_failure: continue`.
                first_failure = Some((
                    inner.id.clone(),
                    ActionError::Failed("failed in an earlier attempt of this run".into()),
                ));
            }
            self.remember(inner, status, &value, &mut outputs);
        }
        Some(self.finish(Value::Object(outputs), first_failure))
    }

    /// Makes an inner step's end visible to the item's later inner steps and to its outputs.
    fn remember(
        &mut self,
        inner: &Step,
        status: StepStatus,
        value: &Value,
        outputs: &mut Map<String, Value>,
    ) {
        self.context["steps"][&inner.id] = json!({"status": status, "outputs": value});
        outputs.insert(inner.id.clone(), value.clone());
    }

    async fn inner(&self, inner: &Step) -> Result<InnerEnd, ActionError> {
        let id = qualified_id(&self.group.id, &inner.id);
        if let Some(condition) = &inner.when {
            match self.state.templates.render_value(condition, &self.context) {
                Ok(value) if !template::truthy(&value) => {
                    self.state.write_step(Event::StepSkipped(StepSkipped {
                        step: id,
                        item_index: Some(self.index),
                        condition: condition.clone(),
                        rendered: value,
                    }))?;
                    return Ok(InnerEnd::Done(StepStatus::Skipped, json!({})));
                }
                Ok(_) => {}
                Err(e) => {
                    let error = ActionError::Input(e.to_string());
                    self.state.write_step(Event::ItemFailed(StepFailed {
                        step: id,
                        item_index: Some(self.index),
                        item: Some(self.item.clone()),
                        class: error.class().to_owned(),
                        code: None,
                        request_id: None,
                        message: error.to_string(),
                        outputs: None,
                        continued: Some(continues(inner, &error, self.state.mode)),
                    }))?;
                    let goes_on = continues(inner, &error, self.state.mode);
                    return Ok(InnerEnd::Failed(error, goes_on));
                }
            }
        }
        let timeout = step_timeout(inner);
        let deadline = (Instant::now() + timeout).min(self.deadline);
        let unit = Unit::new(
            &self.state,
            &self.run,
            inner,
            Some((self.index, self.item.clone())),
            &self.context,
            deadline,
            timeout,
        )
        .in_group(&self.group.id);
        match unit.run().await {
            Ok(outputs) => Ok(InnerEnd::Done(StepStatus::Succeeded, outputs)),
            Err(error) if error.is_journal() => Err(error),
            Err(error) if error.is_interrupted() => Ok(InnerEnd::Interrupted),
            Err(error) => {
                let goes_on = continues(inner, &error, self.state.mode);
                Ok(InnerEnd::Failed(error, goes_on))
            }
        }
    }

    /// Journals the item's end under the group's id and says how it ended.
    fn finish(
        &self,
        outputs: Value,
        failure: Option<(String, ActionError)>,
    ) -> Result<Value, ActionError> {
        let Some((inner, error)) = failure else {
            self.state.write_step(Event::ItemSucceeded(StepSucceeded {
                step: self.group.id.clone(),
                item_index: Some(self.index),
                item: Some(self.item.clone()),
                outputs: outputs.clone(),
                isolated: None,
            }))?;
            return Ok(outputs);
        };
        self.state.write_step(Event::ItemFailed(StepFailed {
            step: self.group.id.clone(),
            item_index: Some(self.index),
            item: Some(self.item.clone()),
            class: error.class().to_owned(),
            code: error.code().map(str::to_owned),
            request_id: None,
            message: format!("at `{inner}`: {error}"),
            outputs: Some(outputs.clone()),
            continued: None,
        }))?;
        let at = match error.root() {
            ActionError::Refused(why) => ActionError::Refused(format!("at `{inner}`: {why}")),
            _ => ActionError::Failed(format!("at `{inner}`: {error}")),
        };
        Err(ActionError::Partial {
            error: Box::new(at),
            outputs,
        })
    }
}

enum InnerEnd {
    Done(StepStatus, Value),
    /// The failure (journaled), and whether the item goes on past it.
    Failed(ActionError, bool),
    /// Ctrl-C stopped it without an outcome: the item is interrupted.
    Interrupted,
}
