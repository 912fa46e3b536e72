//! Admission: everything before a run's first step, one way for a new run and a resumed one —
//! the run's lease, parameters, the region and account it acts in, the journal and its first
//! records, the targets and their locks, the preflight, and the interlocks. A resume walks the
//! same way: every interlock is checked again, with only that resume's own break-glass.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::account::{self, Account};
use super::credentials::Clock;
use super::decisions::{self, DecisionRequest, Ledger};
use super::finding;
use super::identity;
use super::interlocks;
use super::live::RunHold;
use super::notify;
use super::observe::Progress;
use super::recheck::Recheck;
use super::run_locks::RunLocks;
use super::seal;
use super::state::RunState;
use super::steps::{self, Admitted};
use super::{
    Approvals, EngineError, JOURNAL_FORMAT, Mode, RunOutcome, RunStatus, Settings, VerifyFinding,
    fault, journal_path, run_id, targets,
};
use crate::actions::{RunContext, RunUses};
use crate::aws::{Clients, load_sdk_config};
use crate::check::LoadedRunbook;
use crate::journal::chain::ChainKey;
use crate::journal::event::{
    Custody, Interlock, JournalRecovered, LockTakenOver, Refusal, RunResumed, RunStarted,
    RunbookRef,
};
use crate::journal::{Event, FileJournal, JournalSink, TornTail};
use crate::lock;
use crate::runbook::model::NotifyEvent;
use crate::runbook::params::{self, ParamValues};
use crate::template::Templates;

/// Starts a new run. Parameter problems are `Invalid` (nothing was done).
pub async fn start(
    loaded: LoadedRunbook,
    given: &[(String, String)],
    event: Option<Value>,
    mode: Mode,
    settings: &Settings,
) -> Result<RunOutcome, EngineError> {
    start_with_id(loaded, given, event, mode, settings, None).await
}

/// A run id with its lease already held: dispatch reserves one before it claims a finding, so
/// the claim names a run that is live from the first moment (a second delivery arriving before
/// the journal exists sees a live run, never an abandoned claim).
#[derive(Debug)]
pub struct Reservation {
    run_id: String,
    lease: RunHold,
}

impl Reservation {
    pub async fn new(settings: &Settings) -> Result<Reservation, EngineError> {
        let run_id = run_id::new_run_id(OffsetDateTime::now_utc());
        let lease = RunHold::take(settings, &run_id).await?;
        Ok(Reservation { run_id, lease })
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Gives the reservation up unused (the finding was a duplicate).
    pub async fn discard(self) {
        self.lease.discard().await;
    }
}

/// [`start`] with a reserved run id (dispatch records it before the run starts, so a crash
/// never leaves a run it cannot find).
pub async fn start_with_id(
    loaded: LoadedRunbook,
    given: &[(String, String)],
    event: Option<Value>,
    mode: Mode,
    settings: &Settings,
    reservation: Option<Reservation>,
) -> Result<RunOutcome, EngineError> {
    let now = OffsetDateTime::now_utc();
    let (run_id, lease) = match reservation {
        Some(Reservation { run_id, lease }) => (run_id, Some(lease)),
        None => (run_id::new_run_id(now), None),
    };
    let run = json!({"id": run_id, "mode": mode.as_str(), "started_at": run_id::rfc3339(now)});
    let values = params::resolve(
        &loaded.runbook,
        given,
        Some(&json!({ "run": run })),
        &Templates::new(),
    )
    .map_err(|errors| EngineError::Invalid(errors.join("\n")))?;
    let admission = Admission {
        loaded: &loaded,
        run_id,
        mode,
        values,
        event,
        verify_finding: settings.verify_finding,
        run,
        kind: Kind::Start,
        lease,
        recheck: settings.recheck.clone(),
        update_finding: settings.update_finding,
        custody: settings.custody.clone(),
    };
    let admitted = admit(admission, settings).await?;
    steps::finish(
        admitted,
        &loaded.runbook,
        None,
        settings.interrupted.clone(),
    )
    .await
}

/// What admission needs to know about the run.
pub(super) struct Admission<'a> {
    pub(super) loaded: &'a LoadedRunbook,
    pub(super) run_id: String,
    pub(super) mode: Mode,
    pub(super) values: ParamValues,
    pub(super) event: Option<Value>,
    /// Which findings to re-read from their service: the settings' on a new run, the
    /// journal's on a resume (every interlock the run started with runs again).
    pub(super) verify_finding: Option<VerifyFinding>,
    /// The `run` template context: id, mode, started_at.
    pub(super) run: Value,
    pub(super) kind: Kind,
    /// The lease, when the caller already holds it (a reservation).
    pub(super) lease: Option<RunHold>,
    /// A recheck of a finished case: the settings' on a new run, the journal's on a resume.
    pub(super) recheck: Option<Recheck>,
    /// Note the run on its Security Hub finding: the settings' on a new run, the journal's on
    /// a resume.
    pub(super) update_finding: bool,
    /// Where the run seals: the settings' (`--seal`), else on a resume the journal's.
    pub(super) custody: Option<Custody>,
}

pub(super) enum Kind {
    /// A new run: its journal is created.
    Start,
    /// A resumed run: its journal is reopened (a torn tail already cut off).
    Resume {
        journal: Box<FileJournal>,
        previous_status: Option<RunStatus>,
        torn: Option<TornTail>,
        /// What the journal holds about approvals.
        ledger: Box<Ledger>,
        /// A person's decision on the approval it waits at, and that step.
        decision: Option<Box<(DecisionRequest, String)>>,
    },
}

pub(super) async fn admit(
    admission: Admission<'_>,
    settings: &Settings,
) -> Result<Admitted, EngineError> {
    let Admission {
        loaded,
        run_id,
        mode,
        values,
        event,
        verify_finding,
        run,
        kind,
        lease,
        recheck,
        update_finding,
        custody,
    } = admission;
    let runbook = &loaded.runbook;
    let resuming = matches!(kind, Kind::Resume { .. });
    // One process per run: the lease is held until the run ends or the process dies.
    let lease = match lease {
        Some(lease) => lease,
        None => RunHold::take(settings, &run_id).await?,
    };
    let fence = lease.fence();
    let region = account::region(event.as_ref(), settings).map_err(EngineError::Refused)?;

    let base = match &settings.clients {
        Some(clients) => clients.clone(),
        None => {
            let mut options = settings.aws.clone();
            options.region = region.clone().or(options.region);
            Clients::new(&load_sdk_config(&options).await)
        }
    };
    // A worker's run calls AWS only while its lease in the shared table is its own.
    let base = match &fence {
        Some(fence) => base.fenced(fence),
        None => base,
    };
    let home = match &region {
        Some(region) if base.region().as_deref() != Some(region.as_str()) => base.in_region(region),
        _ => base,
    };
    let caller = identity::caller(&home).await;
    // A decision through the queue is the verified sender's, not the worker's.
    let decider = match settings.decision.as_ref().and_then(|d| d.sender.clone()) {
        Some(sender) => sender,
        None => decisions::decider(&caller),
    };
    // A decision from someone the step does not name is refused before anything is written.
    let (mut ledger, decision) = match &kind {
        Kind::Start => (Ledger::default(), None),
        Kind::Resume {
            ledger, decision, ..
        } => {
            let record = match decision.as_deref() {
                Some((request, step)) => {
                    let approvers = decisions::approvers_of(runbook, step);
                    if !decisions::may_decide(&approvers, decider.arn.as_deref()) {
                        return Err(EngineError::Refused(format!(
                            "refused: {} may not decide step `{step}` of run {run_id}: its approvers are {}",
                            decider.arn.as_deref().unwrap_or(
                                "an unknown AWS identity (sts:GetCallerIdentity failed)"
                            ),
                            approvers.join(", ")
                        )));
                    }
                    Some(decisions::record(request, step, ledger, decider.clone()))
                }
                None => None,
            };
            ((**ledger).clone(), record)
        }
    };
    if let Some(record) = &decision {
        ledger.decisions.insert(record.step.clone(), record.clone());
    }
    // A recheck applies the case's decisions; a decision recorded in the recheck itself wins.
    if let Some(recheck) = &recheck {
        for (step, record) in
            super::recheck::standing_decisions(&settings.journal_dir, &recheck.case_run)
        {
            ledger.decisions.entry(step).or_insert(record);
        }
    }
    let clock: Clock = Arc::new(std::time::SystemTime::now);
    let account = account::account(&home, &caller, event.as_ref(), settings, &run_id, clock).await;
    let (clients, assumed, account_id, refusal, failure) = match account {
        Account::Own => {
            let id = caller["account"].as_str().map(str::to_owned);
            (home.clone(), None, id, None, None)
        }
        Account::Assumed {
            clients,
            role,
            account,
        } => (clients, Some(role), Some(account), None, None),
        Account::Refused(reason) => (
            home.clone(),
            None,
            None,
            Some((Refusal::Account, reason)),
            None,
        ),
        Account::Unavailable(reason) => (home.clone(), None, None, None, Some(reason)),
    };
    let refusal = refusal.or_else(|| {
        account::foreign_partition(&caller, &values).map(|reason| (Refusal::Account, reason))
    });

    let (journal, resumed): (Arc<dyn JournalSink>, _) = match kind {
        Kind::Start => {
            let path = journal_path(&settings.journal_dir, &run_id);
            let journal = FileJournal::create(
                &path,
                run_id.clone(),
                settings.journal_key.clone().map(ChainKey::from),
            )?;
            (Arc::new(mirrored(journal, settings, &run_id, &fence)), None)
        }
        Kind::Resume {
            journal,
            previous_status,
            torn,
            ..
        } => (Arc::new(*journal), Some((previous_status, torn))),
    };
    let journal_file = journal.path().map(Path::to_path_buf).unwrap_or_default();
    // Evidence lives beside the journal it belongs to.
    let journal_dir = journal_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| settings.journal_dir.clone());
    let targets = targets::target_resources(runbook, &values);
    // A drill writes nothing anywhere, a seal included.
    let drill_seal = mode == Mode::DryRun && custody.is_some();
    let custody = custody
        .map(|c| seal::resolve(c, &caller))
        .filter(|_| mode == Mode::Live);
    let state = Arc::new(RunState {
        run_id: run_id.clone(),
        mode,
        journal,
        approvals: match mode {
            Mode::DryRun => Approvals::Drill,
            Mode::Live => settings.approvals.clone(),
        },
        observer: settings.observer.clone(),
        templates: Templates::new(),
        targets: targets.clone(),
        redactor: Mutex::new(params::redactor(runbook, &values)),
        home: home.clone(),
        interrupted: settings.interrupted.clone(),
        ledger,
        decider,
        parked: Default::default(),
        recheck: recheck.clone(),
        update_finding,
        reminder: settings.reminder,
        sealer: Default::default(),
    });
    let run_context = Arc::new(RunContext {
        clients,
        runbook_dir: runbook_dir(&loaded.path),
        evidence_dir: journal_dir.join(&run_id).join("evidence"),
        journal_key: settings.journal_key.clone(),
        hooks: state.clone(),
        shielded: Default::default(),
        once: Default::default(),
        batches: Default::default(),
        collection: Default::default(),
    });
    let journal_text = journal_file.display().to_string();

    match resumed {
        None => {
            state.observe(Progress::RunStarted {
                run_id: &run_id,
                mode,
                journal: &journal_text,
            });
            state.write(Event::RunStarted(RunStarted {
                format_version: JOURNAL_FORMAT,
                engine_version: env!("CARGO_PKG_VERSION").to_owned(),
                chain: crate::journal::chain::algorithm(settings.journal_key.as_deref()).to_owned(),
                runbook: RunbookRef {
                    name: runbook.name.clone(),
                    path: absolute(&loaded.path),
                    sha256: loaded.sha256.clone(),
                },
                parameters: params::for_display(runbook, &values).into_iter().collect(),
                sensitive_parameters: runbook
                    .parameters
                    .iter()
                    .filter(|(_, p)| p.sensitive)
                    .map(|(n, _)| n.clone())
                    .collect(),
                event: event.clone(),
                mode,
                caller: caller.clone(),
                assumed_role: assumed.as_ref().map_or(Value::Null, |role| {
                    role.describe(account_id.as_deref().unwrap_or_default())
                }),
                host: crate::host::host(),
                user: crate::host::user(),
                pid: std::process::id(),
                targets: targets.clone(),
                region: region.clone(),
                verify_finding,
                recheck: recheck.clone().map(Box::new),
                update_finding: update_finding.then_some(true),
                custody: custody.clone().map(Box::new),
            }))?;
            fault::point("after-run-started");
        }
        Some((previous_status, torn)) => {
            state.observe(Progress::RunResumed {
                run_id: &run_id,
                mode,
                journal: &journal_text,
            });
            if let Some(torn) = torn {
                state.write(Event::JournalRecovered(JournalRecovered {
                    torn_line: torn.line,
                    truncated_bytes: torn.bytes,
                }))?;
            }
            state.write(Event::RunResumed(RunResumed {
                previous_status: previous_status.map(|s| s.as_str().to_owned()),
                host: crate::host::host(),
                user: crate::host::user(),
                pid: std::process::id(),
                // Only a seal chosen on this command: the journal already names its own.
                custody: settings
                    .custody
                    .clone()
                    .map(|c| seal::resolve(c, &caller))
                    .filter(|_| mode == Mode::Live),
            }))?;
            if let Some(record) = decision {
                state.observe(Progress::Decided { record: &record });
                state.write(Event::Decision(record))?;
            }
        }
    }
    // The seal is opened before any check that can refuse the run: a refusal is evidence too.
    if let Some(custody) = custody {
        seal::open(&state, &run_context, custody).await?;
    }
    if drill_seal {
        state.observe(Progress::Notice {
            text: "a drill seals nothing: --seal applies to live runs only",
        });
    }
    // Every AssumeRole of the run, the first one included, in the journal.
    if let Some(role) = &assumed {
        let journaling = state.clone();
        role.journal_to(Arc::new(move |call| {
            if let Err(e) = journaling.write(Event::ApiCall(call)) {
                tracing::error!("failed to journal an AssumeRole call: {e}");
            }
        }));
    }
    let mut context = params::base_context(&values, event.as_ref(), run);
    // The account the run acts in: evidence buckets are checked against it
    // (`--expected-bucket-owner`).
    context["run"]["account"] = json!(account_id.clone().unwrap_or_default());
    // Whether instances can upload to a seal (`ssm.run_command`'s `uploads`).
    context["run"]["sealed"] = json!(run_context.collection.get().is_some());
    let admitted = |locks: RunLocks, refusal, failure| Admitted {
        state: state.clone(),
        run: run_context.clone(),
        locks,
        refusal,
        failure,
        context: context.clone(),
        lease: None,
    };
    if let Some(reason) = failure {
        return Ok(Admitted {
            lease: Some(lease),
            ..admitted(RunLocks::default(), None, Some(reason))
        });
    }
    if let Some((kind, reason)) = refusal {
        state.write(Event::Interlock(Interlock {
            check: "account".into(),
            passed: false,
            reason: Some(reason.clone()),
            ..Default::default()
        }))?;
        return Ok(Admitted {
            lease: Some(lease),
            ..admitted(RunLocks::default(), Some((kind, reason)), None)
        });
    }

    // A finding is acted on only as its service reports it: before any lock or lookup.
    if let (Some(which), Some(event)) = (verify_finding, event.as_ref()) {
        match Box::pin(finding::verify(&state, event, which)).await {
            Ok(None) => {}
            Ok(Some(refusal)) => {
                return Ok(Admitted {
                    lease: Some(lease),
                    ..admitted(RunLocks::default(), Some(refusal), None)
                });
            }
            Err(error) => return Err(EngineError::Interlock(error)),
        }
    }

    // The owner of an access key is locked and protection-checked like the key.
    let implied = match interlocks::key_owners(&state, &run_context, &targets).await {
        Ok(owners) => owners,
        Err(error) if error.is_journal() => return Err(EngineError::Interlock(error)),
        Err(error) => {
            let reason = format!(
                "the owner of the access key could not be looked up ({error}); nothing was \
                 changed, and a resume checks again"
            );
            return Ok(Admitted {
                lease: Some(lease),
                ..admitted(
                    RunLocks::default(),
                    Some((Refusal::Unavailable, reason)),
                    None,
                )
            });
        }
    };
    let lock_account = account_id.as_deref().unwrap_or("unknown-account");
    let lock_region = region
        .clone()
        .or(run_context.clients.region())
        .unwrap_or_else(|| "unknown-region".into());
    let mut keys: Vec<String> = targets
        .iter()
        .chain(&implied)
        .map(|target| lock::resource_key(lock_account, &lock_region, target))
        .collect();
    // `Alice` and `alice` are one IAM user: one key.
    keys.sort();
    keys.dedup();
    let locks = match RunLocks::acquire(settings, &keys, &run_id, mode, resuming).await {
        Ok(locks) => locks,
        Err(error) if error.is_held() => {
            let reason = error.to_string();
            state.write(Event::Interlock(Interlock {
                check: "lock".into(),
                passed: false,
                reason: Some(reason.clone()),
                ..Default::default()
            }))?;
            return Ok(Admitted {
                lease: Some(lease),
                ..admitted(RunLocks::default(), Some((Refusal::Lock, reason)), None)
            });
        }
        Err(error) => return Err(EngineError::Lock(error)),
    };
    for taken in locks.taken_over() {
        state.write(Event::LockTakenOver(LockTakenOver {
            resource: taken.resource,
            previous: serde_json::to_value(taken.previous).unwrap_or(Value::Null),
        }))?;
    }
    if !resuming && mode == Mode::DryRun && settings.preflight {
        let uses = RunUses {
            drills: true,
            assume_role: settings.assume_role.is_some(),
            ..Default::default()
        };
        let ctx = state.engine_context(&run_context, "preflight");
        let report = super::preflight::run(&ctx, caller["arn"].as_str(), runbook, uses).await;
        if !report.checked {
            state.observe(Progress::Notice {
                text: &format!(
                    "permission preflight: {}",
                    report.error.as_deref().unwrap_or("not available")
                ),
            });
        }
        state.write(Event::Preflight(report))?;
    }
    let refusal =
        interlocks::check_targets(&state, &run_context, runbook, &targets, &implied, settings)
            .await
            .map_err(EngineError::Interlock)?;
    if refusal.is_none() && !resuming {
        notify::send(
            &state,
            runbook,
            &context,
            NotifyEvent::Started,
            &journal_text,
            notify::Why::default(),
        )
        .await;
    }
    Ok(Admitted {
        lease: Some(lease),
        ..admitted(locks, refusal, None)
    })
}

/// A worker's journal file with every line stored in the shared table first, fenced by the
/// run's lease; the file alone otherwise.
fn mirrored(
    journal: FileJournal,
    settings: &Settings,
    run_id: &str,
    fence: &Option<crate::aws::fence::Fence>,
) -> FileJournal {
    match &settings.shared {
        Some(shared) => journal.with_replica(shared.replica(run_id, fence.clone())),
        None => journal,
    }
}

fn runbook_dir(path: &Path) -> PathBuf {
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
