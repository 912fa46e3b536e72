//! The engine: runs a runbook's steps in order, journaling every step and AWS call before the
//! next side effect, and resumes a run from its journal after a crash.
//!
//! "Run a runbook" is a library call ([`start`], [`resume`]) that takes its inputs, settings and
//! an [`Observer`], and assumes no terminal and no single process per run, so workers (SQS,
//! Lambda) can call it the same way the CLI does. Files by phase: `admit` (everything before
//! the first step, shared by start and resume), `steps` (the step loop, `when`, fan-out,
//! failure policy), `unit` (one action execution: render, parse, timeout, retries, records),
//! `replay` (a journal read back into what is done), `state` (what the run's steps share and
//! the hooks actions report through).

mod account;
mod admit;
pub mod approvals;
mod credentials;
pub mod decisions;
pub mod drill;
pub mod fault;
mod finding;
mod finding_update;
mod group;
mod identity;
mod interlocks;
mod isolated;
pub mod live;
mod notify;
pub mod observe;
mod preflight;
pub mod recheck;
mod replay;
mod resume;
mod retry;
pub mod run_id;
mod run_locks;
mod scope;
mod seal;
mod state;
mod steps;
pub mod targets;
mod unit;
pub mod waiting;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde::Serialize;
use serde_json::Value;

pub use account::{event_account, finding_region};
pub use admit::{Reservation, start, start_with_id};
pub use approvals::{Approvals, Approver};
pub use observe::{NullObserver, Observer, Progress};
pub use resume::{journal_for, resume};
pub use run_id::new_run_id;
pub use seal::complete as complete_seal;
pub use targets::target_resources;

use crate::actions::ActionError;
use crate::aws::AwsOptions;
use crate::journal::JournalError;
pub use crate::journal::event::VerifyFinding;
pub use crate::journal::{Mode, RunStatus, StepStatus};
use crate::lock::LockError;

/// The journal format this engine writes.
pub const JOURNAL_FORMAT: u32 = 1;

/// One step's result, as `run --output json` prints it. For a `for_each` step, `outputs` is
/// the list of per-item results in item order, each `{"item": …, "status": …, "outputs": …}`.
#[derive(Debug, Clone, Serialize)]
pub struct StepSummary {
    pub id: String,
    pub status: StepStatus,
    pub outputs: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub run_id: String,
    pub status: RunStatus,
    pub mode: Mode,
    pub journal: PathBuf,
    pub steps: Vec<StepSummary>,
    /// Syncs of the journal in this process (fewer than its records when concurrent items
    /// shared them); for the benchmark.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_syncs: Option<u64>,
    /// For dry runs: which steps would succeed, would be denied, could not be checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<drill::Verdict>,
    /// Where the journal and evidence were sealed, and what failed (with `--seal`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal: Option<crate::custody::sealer::SealReport>,
}

/// How a run is carried out, independent of what it runs.
#[derive(Clone)]
pub struct Settings {
    pub journal_dir: PathBuf,
    pub approvals: Approvals,
    /// Take over a crashed foreign run's locks (journaled).
    pub force_unlock: bool,
    pub aws: AwsOptions,
    /// Keys the journal's hash chain (HMAC-SHA-256) when set.
    pub journal_key: Option<Vec<u8>>,
    /// Set by Ctrl-C: the step in flight finishes, then the run stops (exit 130).
    pub interrupted: Arc<AtomicBool>,
    /// Ready-made clients (workers that share them, tests with mocked clients); `None` builds
    /// them from `aws`.
    pub clients: Option<crate::aws::Clients>,
    /// Dry runs: simulate the caller's permissions first (`--no-preflight` turns it off).
    pub preflight: bool,
    /// `--max-targets`: lowers every runbook's `limits.max_targets`, or, with
    /// `raise_max_targets`, sets it up to the runbook's `limits.max_targets_hard`.
    pub max_targets: Option<u32>,
    /// Whether `max_targets` may raise the limit: a person at `run`/`resume`, never `dispatch`.
    pub raise_max_targets: bool,
    /// Break-glass for protected resources: the operator's reason (command line only, never
    /// from an event).
    pub override_protection: Option<String>,
    /// Role to assume for findings of another account, a template over `event.*`.
    pub assume_role: Option<String>,
    /// The external id the role's trust policy asks for, if any.
    pub assume_role_external_id: Option<String>,
    /// Who watches the run as it happens.
    pub observer: Arc<dyn Observer>,
    /// Which findings of the run's event are re-read from their service before acting.
    pub verify_finding: Option<VerifyFinding>,
    /// A person's decision on the approval a resumed run waits at (`approve` / `deny`).
    pub decision: Option<decisions::DecisionRequest>,
    /// A new run that rechecks a finished case (dispatch sets it for a finding that joins one).
    pub recheck: Option<recheck::Recheck>,
    /// Mark the run's Security Hub finding NOTIFIED and note the outcome (a trigger's
    /// `update_finding`).
    pub update_finding: bool,
    /// A resume that only reminds (`firebreak remind`): the run parks again at its approval and
    /// its `awaiting_approval` notification is marked a reminder.
    pub reminder: bool,
    /// Workers' shared state (`--journal dynamodb://TABLE`): journals mirrored into the table,
    /// run leases and finding claims there; `None` keeps everything in `journal_dir`.
    pub shared: Option<crate::table::Shared>,
    /// Seal the journal and evidence in S3 Object Lock (`--seal`, `--sign-key`); an empty
    /// `owner` means the caller's own account.
    pub custody: Option<crate::journal::event::Custody>,
}

impl Settings {
    /// Defaults for a library caller: nobody to approve (a run parks at approvals), no forced
    /// takeovers,
    /// the standard AWS chain, no journal key, preflight on for dry runs, nobody watching.
    pub fn new(journal_dir: PathBuf) -> Settings {
        Settings {
            journal_dir,
            approvals: Approvals::Nobody,
            force_unlock: false,
            aws: AwsOptions::default(),
            journal_key: None,
            interrupted: Arc::new(AtomicBool::new(false)),
            clients: None,
            preflight: true,
            max_targets: None,
            raise_max_targets: false,
            override_protection: None,
            assume_role: None,
            assume_role_external_id: None,
            observer: Arc::new(NullObserver),
            verify_finding: Some(VerifyFinding::SecurityHub),
            decision: None,
            recheck: None,
            update_finding: false,
            reminder: false,
            custody: None,
            shared: None,
        }
    }
}

/// Why a run could not start or go on (as opposed to a step failing).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Bad input: parameters, runbook, journal to resume (exit 2).
    #[error("{0}")]
    Invalid(String),
    /// Refused by a safety interlock before anything changed (exit 3).
    #[error("{0}")]
    Refused(String),
    /// The run's locks could not be taken (held by another run: exit 3).
    #[error("refused: {0}")]
    Lock(#[from] LockError),
    /// The journal could not be written or read: the run stops where it is.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A safety interlock could not be evaluated (an AWS call it needs failed).
    #[error("failed to check the safety interlocks: {0}")]
    Interlock(#[source] ActionError),
    /// Another process (or worker) runs this run: its lease is held.
    #[error("refused: {0}")]
    Live(String),
    /// The run stopped acting mid-way because its lease in the shared table could no longer be
    /// shown to be this worker's (a renewal refused, failing or too slow, or another worker took
    /// the run over). Nothing about the run failed: the table's journal is as far as it went,
    /// and a resume carries it on.
    #[error(
        "run {run_id} stopped: its lease is no longer this worker's ({detail}); the journal in \
         the shared table is as far as it went, and a resume carries it on"
    )]
    LeaseLost { run_id: String, detail: String },
    /// The workers' shared table could not be read or written (`--journal dynamodb://…`).
    #[error("failed to use the shared table: {0}")]
    Table(String),
    /// A bug: something that must not happen did (a panicked task). Exit 70.
    #[error("internal error: {0}")]
    Internal(String),
}

/// `<dir>/<run-id>.jsonl`
pub fn journal_path(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(format!("{run_id}.jsonl"))
}
