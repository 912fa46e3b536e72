//! Starting, resuming and carrying out a run: the step loop, fan-out, retries and timeouts,
//! and the journal records around each of them.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::time::Instant;

use super::context::{Shared, StepContext};
use super::interlocks::{self, Account};
use super::notify;
use super::replay::Replay;
use super::{
    EngineError, Mode, RunOutcome, RunStatus, Settings, StepStatus, StepSummary, fault, identity,
    journal_path, retry, run_id, targets,
};
use crate::actions::{ActionError, ActionInput};
use crate::aws::{Clients, load_sdk_config};
use crate::journal::chain::ChainKey;
use crate::journal::{FileJournal, JournalSink};
use crate::lock::{self, LockOwner, LockSet, TakeoverPolicy};
use crate::plan::base_context;
use crate::redact::{REDACTED, Redactor};
use crate::runbook::model::DEFAULT_CONCURRENCY;
use crate::runbook::model::NotifyEvent;
use crate::runbook::params::{self, ParamValues};
use crate::runbook::{self, LoadedRunbook, OnFailure, Step, duration};
use crate::template::{self, Engine};

/// The journal format this engine writes.
pub const JOURNAL_FORMAT: u32 = 1;
/// A step without `timeout` gets this much.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Starts a new run. Parameter problems are `Invalid` (nothing was done); a held lock is
/// `Refused` (nothing was done).
pub async fn start(
    loaded: LoadedRunbook,
    given: &[(String, String)],
    event: Option<Value>,
    mode: Mode,
    settings: &Settings,
) -> Result<RunOutcome, EngineError> {
    start_with_id(loaded, given, event, mode, settings, None).await
}

/// [`start`] with a run id chosen by the caller (dispatch records it before the run starts, so
/// a crash never leaves a run it cannot find).
pub async fn start_with_id(
    loaded: LoadedRunbook,
    given: &[(String, String)],
    event: Option<Value>,
    mode: Mode,
    settings: &Settings,
    run_id: Option<String>,
) -> Result<RunOutcome, EngineError> {
    let runbook = &loaded.runbook;
    let now = OffsetDateTime::now_utc();
    let run_id = run_id.unwrap_or_else(|| run_id::new_run_id(now));
    let started_at = run_id::rfc3339(now);
    let templates = Engine::new();
    let run = json!({"id": run_id, "mode": mode.as_str(), "started_at": started_at});
    let values = params::resolve(runbook, given, Some(&json!({ "run": run })), &templates)
        .map_err(|errors| EngineError::Invalid(errors.join("\n")))?;
    let redactor = Redactor::for_params(runbook, &values);

    let targets = targets::target_resources(runbook, &values);
    let locks = acquire_locks(settings, &targets, &run_id, mode, None)?;

    let clients = clients_for(settings).await;
    let caller = identity::caller(&clients).await;
    let (clients, assumed_role, account_refusal) =
        match interlocks::account(&clients, &caller, event.as_ref(), settings, &run_id).await {
            Account::Own => (clients, Value::Null, None),
            Account::Assumed {
                clients,
                role_arn,
                account,
            } => (
                clients,
                json!({"role_arn": role_arn, "account": account}),
                None,
            ),
            Account::Refused(reason) => (clients, Value::Null, Some(reason)),
        };
    let path = journal_path(&settings.journal_dir, &run_id);
    let journal = Arc::new(FileJournal::create(
        &path,
        run_id.clone(),
        settings.journal_key.clone().map(ChainKey::from),
    )?);
    let shared = Arc::new(Shared {
        run_id: run_id.clone(),
        mode,
        journal: journal.clone(),
        clients,
        approvals: approvals_for(mode, settings),
        templates,
        journal_dir: settings.journal_dir.clone(),
        runbook_dir: runbook_dir(&loaded.path),
        targets: targets.clone(),
        redactor: std::sync::Mutex::new(redactor),
    });
    eprintln!(
        "firebreak: run {run_id} started ({}), journal {}",
        mode.as_str(),
        path.display()
    );
    record(
        &shared,
        "run_started",
        json!({
            "format_version": JOURNAL_FORMAT,
            "engine_version": env!("CARGO_PKG_VERSION"),
            "chain": if settings.journal_key.is_some() { "hmac-sha256" } else { "sha256" },
            "runbook": {
                "name": runbook.name,
                "path": absolute(&loaded.path),
                "sha256": loaded.sha256,
            },
            "parameters": Redactor::params_for_display(runbook, &values),
            "sensitive_parameters": sensitive_names(runbook),
            "event": event,
            "mode": mode.as_str(),
            "caller": caller,
            "assumed_role": assumed_role,
            "host": identity::host(),
            "user": identity::user(),
            "pid": std::process::id(),
            "targets": targets,
        }),
    )?;
    fault::point("after-run-started");
    record_takeovers(&shared, &locks)?;
    if mode == Mode::DryRun && settings.preflight {
        let report = super::preflight::run(&shared.clients, caller["arn"].as_str(), runbook).await;
        if report["checked"] != true {
            eprintln!(
                "firebreak: permission preflight: {}",
                report["error"].as_str().unwrap_or("not available")
            );
        }
        record(&shared, "preflight", report)?;
    }
    let refusal = match account_refusal {
        Some(reason) => {
            record(
                &shared,
                "interlock",
                json!({"check": "account", "passed": false, "reason": reason}),
            )?;
            Some(reason)
        }
        None => interlocks::check_targets(&shared, runbook, &targets, settings)
            .await
            .map_err(|e| EngineError::Io {
                action: "check the safety interlocks".into(),
                source: std::io::Error::other(e.to_string()),
            })?,
    };
    let context = base_context(&values, event.as_ref(), run);
    if refusal.is_none() {
        notify::send(
            &shared,
            runbook,
            &context,
            NotifyEvent::Started,
            &path.display().to_string(),
        )
        .await;
    }
    finish(
        shared,
        journal,
        &loaded.runbook,
        context,
        None,
        settings,
        Admission { locks, refusal },
    )
    .await
}

/// Resumes a run from its journal (by run id in the journal directory, or by path).
pub async fn resume(
    target: &str,
    given: &[(String, String)],
    settings: &Settings,
) -> Result<RunOutcome, EngineError> {
    let path = if Path::new(target).exists() {
        Path::new(target).to_path_buf()
    } else {
        journal_path(&settings.journal_dir, target)
    };
    if !path.exists() {
        return Err(EngineError::Invalid(format!(
            "no journal for `{target}`: {} does not exist (use --journal-dir or give the journal's path)",
            path.display()
        )));
    }
    let (journal, resumed) =
        FileJournal::open_for_resume(&path, settings.journal_key.clone().map(ChainKey::from))?;
    let replay = Replay::from_records(&resumed.records)
        .map_err(|e| EngineError::Invalid(format!("cannot resume {}: {e}", path.display())))?;
    let loaded = runbook::load(Path::new(&replay.runbook_path)).map_err(|e| {
        EngineError::Invalid(format!(
            "cannot resume: the run's runbook does not load: {e}"
        ))
    })?;
    if loaded.sha256 != replay.runbook_sha256 {
        return Err(EngineError::Invalid(format!(
            "cannot resume: {} changed since the run started (sha256 {} then, {} now); \
             restore it or start a new run",
            replay.runbook_path, replay.runbook_sha256, loaded.sha256
        )));
    }
    let values = resumed_params(&loaded, &replay, given)?;
    let redactor = Redactor::for_params(&loaded.runbook, &values);
    let run_id = replay.run_id.clone();
    if replay.final_status.as_deref() == Some("succeeded") {
        eprintln!("firebreak: run {run_id} already succeeded; nothing to resume");
        return Ok(outcome_from_replay(&loaded, &replay, &path));
    }
    let targets = targets::target_resources(&loaded.runbook, &values);
    let locks = acquire_locks(settings, &targets, &run_id, replay.mode, Some(&run_id))?;
    let clients = clients_for(settings).await;
    // A member-account run needs its assumed role again.
    let caller = identity::caller(&clients).await;
    let clients = match interlocks::account(
        &clients,
        &caller,
        replay.event.as_ref(),
        settings,
        &run_id,
    )
    .await
    {
        Account::Own => clients,
        Account::Assumed { clients, .. } => clients,
        Account::Refused(reason) => return Err(EngineError::Refused(format!("refused: {reason}"))),
    };
    let journal = Arc::new(journal);
    let shared = Arc::new(Shared {
        run_id: run_id.clone(),
        mode: replay.mode,
        journal: journal.clone(),
        clients,
        approvals: approvals_for(replay.mode, settings),
        templates: Engine::new(),
        journal_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        runbook_dir: runbook_dir(&loaded.path),
        targets: targets.clone(),
        redactor: std::sync::Mutex::new(redactor),
    });
    eprintln!(
        "firebreak: resuming run {run_id} ({}), journal {}",
        replay.mode.as_str(),
        path.display()
    );
    if let Some(torn) = &resumed.truncated {
        record(
            &shared,
            "journal_recovered",
            json!({"torn_line": torn.line, "truncated_bytes": torn.bytes}),
        )?;
    }
    record(
        &shared,
        "run_resumed",
        json!({
            "previous_status": replay.final_status,
            "host": identity::host(),
            "user": identity::user(),
            "pid": std::process::id(),
        }),
    )?;
    record_takeovers(&shared, &locks)?;
    let run = json!({"id": run_id, "mode": replay.mode.as_str(), "started_at": replay.started_at});
    let context = base_context(&values, replay.event.as_ref(), run);
    finish(
        shared,
        journal,
        &loaded.runbook,
        context,
        Some(&replay),
        settings,
        Admission {
            locks,
            refusal: None,
        },
    )
    .await
}

/// What a run holds before its steps: its locks, and the interlocks' refusal if any.
struct Admission {
    locks: LockSet,
    refusal: Option<String>,
}

async fn finish(
    shared: Arc<Shared>,
    journal: Arc<FileJournal>,
    runbook: &runbook::Runbook,
    context: Value,
    replay: Option<&Replay>,
    settings: &Settings,
    admission: Admission,
) -> Result<RunOutcome, EngineError> {
    let Admission { locks, refusal } = admission;
    let mut execution = Execution {
        shared: shared.clone(),
        context,
        replay,
        interrupted: settings.interrupted.clone(),
        summaries: Vec::new(),
    };
    let status = match &refusal {
        Some(reason) => {
            eprintln!(
                "firebreak: run {} refused before any change: {reason}",
                shared.run_id
            );
            RunStatus::Refused
        }
        None => execution.steps(runbook).await?,
    };
    let path = journal.path().map(Path::to_path_buf).unwrap_or_default();
    let event = match status {
        RunStatus::Succeeded => NotifyEvent::Succeeded,
        RunStatus::Failed => NotifyEvent::Failed,
        RunStatus::Refused => NotifyEvent::Refused,
        RunStatus::Interrupted => NotifyEvent::Interrupted,
    };
    notify::send(
        &shared,
        runbook,
        &execution.context,
        event,
        &path.display().to_string(),
    )
    .await;
    if status == RunStatus::Interrupted {
        record(
            &shared,
            "run_interrupted",
            json!({"steps_done": execution.summaries.len()}),
        )?;
        eprintln!(
            "firebreak: run {} interrupted; carry on with `firebreak resume {}`",
            shared.run_id, shared.run_id
        );
    } else {
        let counts = |s: StepStatus| execution.summaries.iter().filter(|x| x.status == s).count();
        record(
            &shared,
            "run_finished",
            json!({
                "status": status.as_str(),
                "steps": {
                    "succeeded": counts(StepStatus::Succeeded),
                    "failed": counts(StepStatus::Failed),
                    "skipped": counts(StepStatus::Skipped),
                },
                "head": journal.head(),
                "reason": refusal,
            }),
        )?;
        eprintln!(
            "firebreak: run {} {}, journal {}",
            shared.run_id,
            status.as_str(),
            path.display()
        );
    }
    if let Err(e) = locks.release() {
        tracing::warn!("failed to release locks: {e}");
    }
    let drill = (shared.mode == Mode::DryRun).then(|| {
        let records = crate::journal::read_records(&path).unwrap_or_default();
        let ids: Vec<String> = runbook.steps.iter().map(|s| s.id.clone()).collect();
        super::drill::verdict(&records, &ids)
    });
    Ok(RunOutcome {
        run_id: shared.run_id.clone(),
        status,
        mode: shared.mode,
        journal: path,
        steps: execution.summaries,
        drill,
    })
}

struct Execution<'a> {
    shared: Arc<Shared>,
    /// The template context; grows with each step's outputs.
    context: Value,
    replay: Option<&'a Replay>,
    interrupted: Arc<std::sync::atomic::AtomicBool>,
    summaries: Vec<StepSummary>,
}

/// How one step ended, before the run decides what that means.
enum StepEnd {
    Done(StepStatus, Value),
    Refused,
    Aborted,
    Interrupted,
}

impl Execution<'_> {
    async fn steps(&mut self, runbook: &runbook::Runbook) -> Result<RunStatus, EngineError> {
        let mut any_failed = false;
        for step in &runbook.steps {
            if let Some(done) = self.replay.and_then(|r| r.steps.get(&step.id)) {
                self.done(step, done.status, done.outputs.clone());
                any_failed |= done.status == StepStatus::Failed;
                continue;
            }
            if self.interrupted.load(Ordering::SeqCst) {
                return Ok(RunStatus::Interrupted);
            }
            match self.step(step).await? {
                StepEnd::Done(status, outputs) => {
                    any_failed |= status == StepStatus::Failed;
                    self.done(step, status, outputs);
                }
                end @ (StepEnd::Refused | StepEnd::Aborted) => {
                    self.summaries.push(StepSummary {
                        id: step.id.clone(),
                        status: StepStatus::Failed,
                        outputs: json!({}),
                    });
                    return Ok(match end {
                        StepEnd::Refused => RunStatus::Refused,
                        _ => RunStatus::Failed,
                    });
                }
                StepEnd::Interrupted => return Ok(RunStatus::Interrupted),
            }
        }
        Ok(if any_failed {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        })
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
        let shared = &self.shared;
        if let Some(condition) = &step.when {
            match shared.templates.render_value(condition, &self.context) {
                Ok(value) if !template::truthy(&value) => {
                    record(
                        shared,
                        "step_skipped",
                        json!({"step": step.id, "condition": condition, "rendered": value}),
                    )?;
                    return Ok(StepEnd::Done(StepStatus::Skipped, json!({})));
                }
                Ok(_) => {}
                Err(e) => {
                    return self.step_failed(step, &ActionError::Failed(e.to_string()), json!({}));
                }
            }
        }
        let timeout = step
            .timeout
            .as_deref()
            .and_then(|t| duration::parse(t).ok())
            .unwrap_or(DEFAULT_STEP_TIMEOUT);
        let deadline = Instant::now() + timeout;
        let Some(for_each) = &step.for_each else {
            let unit = Unit::new(shared, step, None, &self.context, deadline, timeout);
            return Ok(match unit.run().await {
                Ok(outputs) => StepEnd::Done(StepStatus::Succeeded, outputs),
                Err(error) => self.after_failure(step, &error),
            });
        };
        let items = match shared.templates.render_tree(for_each, &self.context) {
            Ok(Value::Array(items)) => items,
            Ok(other) => {
                let message = format!("`for_each` must render to a list, got {}", kind_of(&other));
                return self.step_failed(step, &ActionError::Failed(message), json!({}));
            }
            Err(e) => {
                return self.step_failed(step, &ActionError::Failed(e.to_string()), json!({}));
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
        record(
            &self.shared,
            "step_started",
            json!({"step": step.id, "action": step.action, "for_each": items, "concurrency": concurrency,
                   "idempotency_key": format!("{}.{}", self.shared.run_id, step.id)}),
        )?;
        let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
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
            let unit = Unit::new(
                &self.shared,
                step,
                Some((index, item.clone())),
                &self.context,
                deadline,
                timeout,
            );
            tasks.spawn(async move {
                let result = unit.run().await;
                drop(permit);
                (index, result)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((index, result)) => results[index] = Some(result),
                Err(e) => {
                    return Err(EngineError::Invalid(format!(
                        "a fan-out item panicked: {e}"
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
        for (item, result) in items.iter().zip(results.into_iter().flatten()) {
            match result {
                Ok(value) => {
                    outputs.push(json!({"item": item, "status": "succeeded", "outputs": value}))
                }
                Err(error) => {
                    refused |= error.is_refused();
                    outputs.push(
                        json!({"item": item, "status": "failed", "error": error.to_string()}),
                    );
                    failures.push(error);
                }
            }
        }
        let outputs = Value::Array(outputs);
        if failures.is_empty() {
            record(
                &self.shared,
                "step_succeeded",
                json!({"step": step.id, "outputs": outputs}),
            )?;
            return Ok(StepEnd::Done(StepStatus::Succeeded, outputs));
        }
        let summary = ActionError::Failed(format!(
            "{} of {} items failed; first: {}",
            failures.len(),
            items.len(),
            failures[0]
        ));
        if refused {
            let error = ActionError::Refused(summary.to_string());
            return self.step_failed(step, &error, outputs);
        }
        self.step_failed(step, &summary, outputs)
    }

    /// Journals a step-level failure (for failures outside a unit: `when`, `for_each`,
    /// aggregated fan-out) and decides what it means for the run.
    fn step_failed(
        &self,
        step: &Step,
        error: &ActionError,
        outputs: Value,
    ) -> Result<StepEnd, EngineError> {
        record(
            &self.shared,
            "step_failed",
            json!({"step": step.id, "class": error.class(), "code": error.code(), "message": error.to_string(),
                   "outputs": outputs, "continued": continues(step, error)}),
        )?;
        Ok(self.after_failure_with(step, error, outputs))
    }

    fn after_failure(&self, step: &Step, error: &ActionError) -> StepEnd {
        let outputs = error.outputs().cloned().unwrap_or_else(|| json!({}));
        self.after_failure_with(step, error, outputs)
    }

    fn after_failure_with(&self, step: &Step, error: &ActionError, outputs: Value) -> StepEnd {
        eprintln!(
            "firebreak: step `{}` failed: {}",
            step.id,
            self.shared.redact(&error.to_string())
        );
        if error.is_refused() {
            StepEnd::Refused
        } else if continues(step, error) {
            StepEnd::Done(StepStatus::Failed, outputs)
        } else {
            StepEnd::Aborted
        }
    }
}

fn continues(step: &Step, error: &ActionError) -> bool {
    step.on_failure == OnFailure::Continue && !error.is_refused()
}

/// One execution of an action: a single step, or one item of a fan-out.
struct Unit {
    shared: Arc<Shared>,
    step: Step,
    item: Option<(usize, Value)>,
    context: Value,
    deadline: Instant,
    timeout: Duration,
}

impl Unit {
    fn new(
        shared: &Arc<Shared>,
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
            shared: shared.clone(),
            step: step.clone(),
            item,
            context,
            deadline,
            timeout,
        }
    }

    fn kind(&self, what: &str) -> String {
        let unit = if self.item.is_some() { "item" } else { "step" };
        format!("{unit}_{what}")
    }

    fn fault(&self, point: &str) {
        match &self.item {
            Some((index, _)) => fault::point(&format!("{point}:{}#{index}", self.step.id)),
            None => fault::point(&format!("{point}:{}", self.step.id)),
        }
    }

    fn base(&self) -> serde_json::Map<String, Value> {
        let mut map = serde_json::Map::new();
        map.insert("step".into(), json!(self.step.id));
        if let Some((index, item)) = &self.item {
            map.insert("item_index".into(), json!(index));
            map.insert("item".into(), item.clone());
        }
        map
    }

    async fn run(self) -> Result<Value, ActionError> {
        let key = match &self.item {
            Some((index, _)) => format!("{}.{}.{index}", self.shared.run_id, self.step.id),
            None => format!("{}.{}", self.shared.run_id, self.step.id),
        };
        let input = self
            .shared
            .templates
            .render_tree(
                &serde_json::to_value(&self.step.input).unwrap_or_default(),
                &self.context,
            )
            .map_err(|e| ActionError::Failed(e.to_string()))
            .and_then(|input| {
                ActionInput::parse(&self.step.action, input.clone())
                    .map(|parsed| (input, parsed))
                    .map_err(|e| ActionError::Failed(e.to_string()))
            });
        let mut started = self.base();
        started.insert("action".into(), json!(self.step.action));
        started.insert("idempotency_key".into(), json!(key));
        started.insert("attempts".into(), json!(self.attempts()));
        started.insert("timeout".into(), json!(duration::format(self.timeout)));
        if let Ok((rendered, _)) = &input {
            started.insert("input".into(), rendered.clone());
        }
        self.shared
            .record(&self.kind("started"), Value::Object(started))?;
        self.fault("after-step-started");
        let result = match input {
            Ok((_, parsed)) => {
                match tokio::time::timeout_at(self.deadline, self.attempts_loop(&parsed, &key))
                    .await
                {
                    Ok(result) => result,
                    Err(_) => Err(ActionError::TimedOut(format!(
                        "step `{}` timed out after {} (its `timeout`)",
                        self.step.id,
                        duration::format(self.timeout)
                    ))),
                }
            }
            Err(error) => Err(error),
        };
        self.fault("before-step-finished");
        let mut finished = self.base();
        match &result {
            Ok(outputs) => {
                finished.insert("outputs".into(), outputs.clone());
                self.shared
                    .record(&self.kind("succeeded"), Value::Object(finished))?;
            }
            Err(error) => {
                finished.insert("class".into(), json!(error.class()));
                finished.insert("code".into(), json!(error.code()));
                finished.insert("request_id".into(), json!(error.request_id()));
                finished.insert("message".into(), json!(error.to_string()));
                if let Some(outputs) = error.outputs() {
                    finished.insert("outputs".into(), outputs.clone());
                }
                if self.item.is_none() {
                    finished.insert("continued".into(), json!(continues(&self.step, error)));
                }
                self.shared
                    .record(&self.kind("failed"), Value::Object(finished))?;
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
            let ctx = StepContext {
                run_id: self.shared.run_id.clone(),
                step_id: self.step.id.clone(),
                item_index: self.item.as_ref().map(|(i, _)| *i),
                idempotency_key: key.to_owned(),
                mode: self.shared.mode,
                attempt,
                shared: self.shared.clone(),
            };
            match input.execute(&ctx).await {
                Ok(outputs) => return Ok(outputs),
                Err(error) if error.is_retryable() && attempt < attempts => {
                    let delay = retry::backoff(attempt);
                    let mut record_payload = self.base();
                    record_payload.insert("attempt".into(), json!(attempt));
                    record_payload.insert("class".into(), json!(error.class()));
                    record_payload.insert("code".into(), json!(error.code()));
                    record_payload.insert("message".into(), json!(error.to_string()));
                    record_payload.insert("retry_in_ms".into(), json!(delay.as_millis() as u64));
                    self.shared
                        .record("step_retry", Value::Object(record_payload))?;
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

fn record(shared: &Shared, kind: &str, payload: Value) -> Result<(), EngineError> {
    shared.record(kind, payload).map_err(|e| EngineError::Io {
        action: format!("journal {kind}"),
        source: std::io::Error::other(e.to_string()),
    })
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

async fn clients_for(settings: &Settings) -> Clients {
    match &settings.clients {
        Some(clients) => clients.clone(),
        None => Clients::new(&load_sdk_config(&settings.aws).await),
    }
}

fn approvals_for(mode: Mode, settings: &Settings) -> super::Approvals {
    match mode {
        Mode::DryRun => super::Approvals::Drill,
        Mode::Live => settings.approvals.clone(),
    }
}

fn sensitive_names(runbook: &runbook::Runbook) -> Vec<&str> {
    runbook
        .parameters
        .iter()
        .filter(|(_, p)| p.sensitive)
        .map(|(n, _)| n.as_str())
        .collect()
}

fn runbook_dir(path: &Path) -> std::path::PathBuf {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

fn acquire_locks(
    settings: &Settings,
    targets: &[String],
    run_id: &str,
    mode: Mode,
    resume_of: Option<&str>,
) -> Result<LockSet, EngineError> {
    let owner = LockOwner {
        run_id: run_id.to_owned(),
        pid: std::process::id(),
        host: identity::host(),
        mode: match mode {
            Mode::Live => lock::LockMode::Live,
            Mode::DryRun => lock::LockMode::DryRun,
        },
    };
    let policy = TakeoverPolicy {
        resume_of: resume_of.map(str::to_owned),
        force: settings.force_unlock,
    };
    lock::acquire(&settings.journal_dir, targets, &owner, policy)
        .map_err(|e| EngineError::Refused(format!("refused: {e}")))
}

fn record_takeovers(shared: &Shared, locks: &LockSet) -> Result<(), EngineError> {
    for taken in locks.taken_over() {
        record(
            shared,
            "lock_taken_over",
            json!({"resource": taken.resource, "previous": taken.previous}),
        )?;
    }
    Ok(())
}

/// Parameters of a resumed run: as journaled, with sensitive ones given again.
fn resumed_params(
    loaded: &LoadedRunbook,
    replay: &Replay,
    given: &[(String, String)],
) -> Result<ParamValues, EngineError> {
    let mut values = ParamValues::new();
    let mut errors = Vec::new();
    for (name, value) in &replay.parameters {
        let Some(param) = loaded.runbook.parameters.get(name) else {
            continue;
        };
        let supplied = given.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        match (param.sensitive, supplied) {
            (true, Some(raw)) => match params::coerce(name, param, raw) {
                Ok(v) => {
                    values.insert(name.clone(), v);
                }
                Err(e) => errors.push(e),
            },
            (true, None) if value == REDACTED => errors.push(format!(
                "parameter `{name}` is sensitive and was not journaled; give it again with -p {name}=..."
            )),
            (false, Some(_)) => errors.push(format!(
                "parameter `{name}` is fixed by the journal and cannot be changed on resume"
            )),
            _ => {
                values.insert(name.clone(), value.clone());
            }
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(EngineError::Invalid(errors.join("\n")))
    }
}

fn outcome_from_replay(loaded: &LoadedRunbook, replay: &Replay, path: &Path) -> RunOutcome {
    let steps = loaded
        .runbook
        .steps
        .iter()
        .filter_map(|s| {
            replay.steps.get(&s.id).map(|f| StepSummary {
                id: s.id.clone(),
                status: f.status,
                outputs: f.outputs.clone(),
            })
        })
        .collect();
    RunOutcome {
        run_id: replay.run_id.clone(),
        status: RunStatus::Succeeded,
        mode: replay.mode,
        journal: path.to_path_buf(),
        steps,
        drill: None,
    }
}
