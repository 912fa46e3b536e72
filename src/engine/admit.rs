//! Admission: everything before a run's first step, one way for a new run and a resumed one —
//! parameters, targets and their locks, clients, the caller's identity, the account the run
//! acts in, the journal and its first records, the preflight and the interlocks.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::identity;
use super::interlocks::{self, Account};
use super::notify;
use super::observe::Progress;
use super::replay::Replay;
use super::state::RunState;
use super::steps::{self, Admitted};
use super::{
    Approvals, EngineError, JOURNAL_FORMAT, Mode, RunOutcome, RunStatus, Settings, fault,
    journal_path, run_id, targets,
};
use crate::actions::{RunContext, RunUses};
use crate::aws::{Clients, load_sdk_config};
use crate::check::{self, LoadedRunbook};
use crate::journal::chain::ChainKey;
use crate::journal::event::{
    Interlock, JournalRecovered, LockTakenOver, RunResumed, RunStarted, RunbookRef,
};
use crate::journal::{Event, FileJournal, JournalSink, TornTail};
use crate::lock::{self, LockOwner, LockSet, TakeoverPolicy};
use crate::runbook::model::NotifyEvent;
use crate::runbook::params::{self, ParamValues};
use crate::template::Templates;

/// Starts a new run. Parameter problems are `Invalid` (nothing was done); a held lock is
/// refused (nothing was done).
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
    let now = OffsetDateTime::now_utc();
    let run_id = run_id.unwrap_or_else(|| run_id::new_run_id(now));
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
        run,
        kind: Kind::Start,
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

/// Resumes a run from its journal (by run id in the journal directory, or by path). The
/// runbook is the one the journal names, or `runbook` when given (a journal moved to another
/// machine); either way its SHA-256 must be the one the run started with.
pub async fn resume(
    target: &str,
    given: &[(String, String)],
    runbook: Option<&Path>,
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
    let runbook_path = runbook
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(&replay.runbook_path));
    let loaded = check::load(&runbook_path).map_err(|e| {
        EngineError::Invalid(format!(
            "cannot resume: the run's runbook does not load: {e}{}",
            if runbook.is_none() {
                " (give it with --runbook if it moved)"
            } else {
                ""
            }
        ))
    })?;
    if loaded.sha256 != replay.runbook_sha256 {
        return Err(EngineError::Invalid(format!(
            "cannot resume: {} is not the runbook the run started with (sha256 {} then, {} now); \
             restore it or start a new run",
            runbook_path.display(),
            replay.runbook_sha256,
            loaded.sha256
        )));
    }
    let values = resumed_params(&loaded, &replay, given)?;
    if replay.final_status == Some(RunStatus::Succeeded) {
        settings.observer.on(&Progress::AlreadySucceeded {
            run_id: &replay.run_id,
        });
        return Ok(replay.outcome(&loaded, &path));
    }
    let run =
        json!({"id": replay.run_id, "mode": replay.mode.as_str(), "started_at": replay.started_at});
    let admission = Admission {
        loaded: &loaded,
        run_id: replay.run_id.clone(),
        mode: replay.mode,
        values,
        event: replay.event.clone(),
        run,
        kind: Kind::Resume {
            journal,
            previous_status: replay.final_status,
            torn: resumed.truncated,
        },
    };
    let admitted = admit(admission, settings).await?;
    steps::finish(
        admitted,
        &loaded.runbook,
        Some(&replay),
        settings.interrupted.clone(),
    )
    .await
}

/// What admission needs to know about the run.
struct Admission<'a> {
    loaded: &'a LoadedRunbook,
    run_id: String,
    mode: Mode,
    values: ParamValues,
    event: Option<Value>,
    /// The `run` template context: id, mode, started_at.
    run: Value,
    kind: Kind,
}

enum Kind {
    /// A new run: its journal is created.
    Start,
    /// A resumed run: its journal is reopened (a torn tail already cut off).
    Resume {
        journal: FileJournal,
        previous_status: Option<RunStatus>,
        torn: Option<TornTail>,
    },
}

async fn admit(admission: Admission<'_>, settings: &Settings) -> Result<Admitted, EngineError> {
    let Admission {
        loaded,
        run_id,
        mode,
        values,
        event,
        run,
        kind,
    } = admission;
    let runbook = &loaded.runbook;
    let redactor = params::redactor(runbook, &values);
    let targets = targets::target_resources(runbook, &values);
    let resume_of = matches!(kind, Kind::Resume { .. }).then_some(run_id.as_str());
    let locks = acquire_locks(settings, &targets, &run_id, mode, resume_of)?;

    let clients = match &settings.clients {
        Some(clients) => clients.clone(),
        None => Clients::new(&load_sdk_config(&settings.aws).await),
    };
    let caller = identity::caller(&clients).await;
    let account = interlocks::account(&clients, &caller, event.as_ref(), settings, &run_id).await;
    let (clients, assumed_role, account_refusal) = match account {
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
        // A resumed run never journals a new refusal: it stops before touching anything.
        Account::Refused(reason) if resume_of.is_some() => {
            return Err(EngineError::Refused(format!("refused: {reason}")));
        }
        Account::Refused(reason) => (clients, Value::Null, Some(reason)),
    };

    let (journal, resumed): (Arc<dyn JournalSink>, _) = match kind {
        Kind::Start => {
            let path = journal_path(&settings.journal_dir, &run_id);
            let journal = FileJournal::create(
                &path,
                run_id.clone(),
                settings.journal_key.clone().map(ChainKey::from),
            )?;
            (Arc::new(journal), None)
        }
        Kind::Resume {
            journal,
            previous_status,
            torn,
        } => (Arc::new(journal), Some((previous_status, torn))),
    };
    let journal_file = journal.path().map(Path::to_path_buf).unwrap_or_default();
    // Evidence lives beside the journal it belongs to.
    let journal_dir = journal_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| settings.journal_dir.clone());
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
        redactor: Mutex::new(redactor),
    });
    let run_context = Arc::new(RunContext {
        clients,
        runbook_dir: runbook_dir(&loaded.path),
        evidence_dir: journal_dir.join(&run_id).join("evidence"),
        journal_key: settings.journal_key.clone(),
        hooks: state.clone(),
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
                assumed_role,
                host: crate::host::host(),
                user: crate::host::user(),
                pid: std::process::id(),
                targets: targets.clone(),
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
            }))?;
        }
    }
    for taken in locks.taken_over() {
        state.write(Event::LockTakenOver(LockTakenOver {
            resource: taken.resource,
            previous: serde_json::to_value(taken.previous).unwrap_or(Value::Null),
        }))?;
    }
    let context = params::base_context(&values, event.as_ref(), run);
    if resume_of.is_none() && mode == Mode::DryRun && settings.preflight {
        let uses = RunUses {
            drills: true,
            assume_role: settings.assume_role.is_some(),
        };
        let report =
            super::preflight::run(&run_context.clients, caller["arn"].as_str(), runbook, uses)
                .await;
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
    let refusal = match (resume_of, account_refusal) {
        (Some(_), _) => None,
        (None, Some(reason)) => {
            state.write(Event::Interlock(Interlock {
                check: "account".into(),
                passed: false,
                reason: Some(reason.clone()),
                ..Default::default()
            }))?;
            Some(reason)
        }
        (None, None) => {
            interlocks::check_targets(&state, &run_context, runbook, &targets, settings)
                .await
                .map_err(EngineError::Interlock)?
        }
    };
    if refusal.is_none() && resume_of.is_none() {
        notify::send(
            &state,
            &run_context,
            runbook,
            &context,
            NotifyEvent::Started,
            &journal_text,
        )
        .await;
    }
    Ok(Admitted {
        state,
        run: run_context,
        locks,
        refusal,
        context,
    })
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
        host: crate::host::host(),
        mode,
    };
    let policy = TakeoverPolicy {
        resume_of: resume_of.map(str::to_owned),
        force: settings.force_unlock,
    };
    Ok(lock::acquire(
        &settings.journal_dir,
        targets,
        &owner,
        policy,
    )?)
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
            (true, None) if value == crate::redact::REDACTED => errors.push(format!(
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
