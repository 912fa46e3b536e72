//! What every step of a run shares — its id and mode, the journal, the redactor, approvals,
//! the observer, the templates — and the hooks through which actions report to it: records are
//! redacted and journaled, approvals decided, progress passed to the observer.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::approvals::{self, Approvals};
use super::decisions::Ledger;
use super::observe::{Observer, Progress};
use super::{EngineError, Mode};
use crate::actions::{ActionError, ApprovalRequest, Decision, RunContext, RunHooks, StepContext};
use crate::aws::Clients;
use crate::journal::event::Decider;
use crate::journal::{Event, JournalError, JournalSink};
use crate::redact::Redactor;
use crate::template::Templates;

pub(crate) struct RunState {
    pub run_id: String,
    pub mode: Mode,
    pub journal: Arc<dyn JournalSink>,
    pub approvals: Approvals,
    pub observer: Arc<dyn Observer>,
    pub templates: Templates,
    /// The resources the run acts on (for notifications and reports).
    pub targets: Vec<String>,
    /// Grows when actions meet secrets (e.g. a created access key), so nothing later prints them.
    pub redactor: Mutex<Redactor>,
    /// The caller's own clients (not an assumed role's): notifications go from the home account.
    pub home: Clients,
    /// Set by the first Ctrl-C.
    pub interrupted: Arc<std::sync::atomic::AtomicBool>,
    /// What the journal already holds about approvals (decisions, deadlines).
    pub ledger: Ledger,
    /// Who runs this process, for approvals: `approvers` and decision records.
    pub decider: Decider,
    /// The approval the run parked at, and its deadline (for the notification).
    pub parked: Mutex<Option<(String, Option<String>)>>,
    /// A recheck runs only the runbook's `recheck` steps.
    pub recheck: Option<super::recheck::Recheck>,
    /// Note the run on its Security Hub finding.
    pub update_finding: bool,
    /// This resume only reminds people of the approval it waits at.
    pub reminder: bool,
    /// Seals the journal and evidence as the run goes (`--seal`).
    pub sealer: tokio::sync::Mutex<Option<crate::custody::Sealer>>,
}

impl RunState {
    pub fn redact(&self, text: &str) -> String {
        self.redactor.lock().expect("redactor lock").redact(text)
    }

    pub fn redact_value(&self, value: &Value) -> Value {
        self.redactor
            .lock()
            .expect("redactor lock")
            .redact_value(value)
    }

    /// Journals an event for the engine itself (failures end the run).
    pub fn write(&self, event: Event) -> Result<(), EngineError> {
        self.append(event).map_err(EngineError::from)
    }

    /// Redacts the payload, then appends it. Redaction works on the payload's values, so the
    /// record keeps its kind and field order.
    fn append(&self, event: Event) -> Result<(), JournalError> {
        let payload = Value::Object(event.payload());
        let redacted = self
            .redactor
            .lock()
            .expect("redactor lock")
            .redact_value(&payload);
        let Value::Object(payload) = redacted else {
            unreachable!("redacting an object keeps it an object")
        };
        self.journal
            .append_fields(event.kind(), payload)
            .map(|_| ())
    }

    /// Journals a step's own record (started, retried, finished) from inside the step.
    pub fn write_step(&self, event: Event) -> Result<(), ActionError> {
        self.append(event).map_err(ActionError::from)
    }

    pub fn observe(&self, progress: Progress<'_>) {
        self.observer.on(&progress);
    }

    /// A context for the engine's own calls from the home account (notifications).
    pub fn home_context(self: &Arc<Self>, step: &str) -> StepContext {
        self.engine_context(&self.home_run(None), step)
    }

    /// The home account's clients, in `region` when given, as a run context for engine calls
    /// (a Security Hub finding is read where the event came from: the aggregation region).
    pub fn home_run(self: &Arc<Self>, region: Option<&str>) -> Arc<RunContext> {
        Arc::new(RunContext {
            clients: match region {
                Some(region) if self.home.region().as_deref() != Some(region) => {
                    self.home.in_region(region)
                }
                _ => self.home.clone(),
            },
            runbook_dir: Default::default(),
            evidence_dir: Default::default(),
            journal_key: None,
            hooks: self.clone(),
            shielded: Default::default(),
            once: Default::default(),
            batches: Default::default(),
            collection: Default::default(),
        })
    }

    /// A context for the engine's own AWS calls (interlocks, preflight), journaled under a
    /// pseudo-step such as `interlocks`.
    pub fn engine_context(self: &Arc<Self>, run: &Arc<RunContext>, step: &str) -> StepContext {
        StepContext::new(
            run.clone(),
            self.run_id.clone(),
            step,
            None,
            format!("{}.{step}", self.run_id),
            self.mode,
            1,
        )
    }
}

impl RunHooks for RunState {
    fn record(&self, event: Event) -> Result<(), JournalError> {
        self.append(event)
    }

    fn redact(&self, text: &str) -> String {
        RunState::redact(self, text)
    }

    fn interrupted(&self) -> bool {
        self.interrupted.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn add_secret(&self, secret: &str) {
        self.redactor.lock().expect("redactor lock").add(secret);
    }

    fn approve(
        &self,
        request: ApprovalRequest,
    ) -> Pin<Box<dyn Future<Output = Decision> + Send + '_>> {
        Box::pin(async move {
            let (decision, record) =
                approvals::decide(&self.approvals, &request, &self.ledger, &self.decider).await;
            match record {
                // The expiry's deny is journaled before the approval that applies it; if it
                // cannot be, the run keeps waiting rather than act on an unrecorded decision.
                Some(record) => match self.append(Event::Decision(record)) {
                    Ok(()) => decision,
                    Err(e) => Decision {
                        approved: false,
                        refused: false,
                        parked: true,
                        by: format!("the expiry's deny could not be journaled: {e}"),
                        expires_at: decision.expires_at,
                    },
                },
                None => {
                    if decision.parked {
                        *self.parked.lock().expect("parked") =
                            Some((request.step_id.clone(), decision.expires_at.clone()));
                    }
                    decision
                }
            }
        })
    }

    fn progress(&self, step: &str, item: Option<usize>, text: &str) {
        self.observe(Progress::Waiting { step, item, text });
    }
}
