//! `resume`: a run carried on from its journal — the journal and runbook it names checked
//! before anything else (a journal is input like any other), a policy refusal never resumed,
//! then the same admission as a new run: every interlock again.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::admit::{Admission, Kind, admit};
use super::decisions::{self, Ledger};
use super::live::RunHold;
use super::observe::Progress;
use super::replay::Replay;
use super::{EngineError, RunOutcome, RunStatus, Settings, journal_path, run_id, steps};
use crate::check::{self, LoadedRunbook};
use crate::journal::chain::ChainKey;
use crate::journal::event::LeaseTaken;
use crate::journal::{Event, FileJournal, JournalError, JournalSink};
use crate::runbook::params::{self, ParamValues};
use crate::table::replica::Materialized;

/// Resumes a run from its journal (by run id in the journal directory, or by path). The
/// runbook is the one the journal names, or `runbook` when given (a journal moved to another
/// machine); either way its SHA-256 must be the one the run started with. A run refused by a
/// policy interlock is never resumed.
pub async fn resume(
    target: &str,
    given: &[(String, String)],
    runbook: Option<&Path>,
    settings: &Settings,
) -> Result<RunOutcome, EngineError> {
    // A worker resumes from the shared table: its run lease first, then the journal as the
    // table holds it, then — before any AWS call — a `lease_taken` record, whose conditional
    // append fences off whichever worker held the run before.
    let hold = match &settings.shared {
        Some(shared) => {
            let run_id = run_id_of(target)?;
            let hold = RunHold::take(settings, &run_id).await?;
            let path = journal_path(&settings.journal_dir, &run_id);
            if shared.materialize(&run_id, &path).await? == Materialized::Absent && !path.exists() {
                hold.release().await;
                return Err(EngineError::Invalid(format!(
                    "no journal for run {run_id} in {} nor in {}",
                    shared.table,
                    settings.journal_dir.display()
                )));
            }
            Some((hold, run_id))
        }
        None => None,
    };
    let path = journal_for(target, &settings.journal_dir)?;
    let (journal, resumed) =
        FileJournal::open_for_resume(&path, settings.journal_key.clone().map(ChainKey::from))?;
    let journal = match (&settings.shared, &hold) {
        (Some(shared), Some((hold, run_id))) => {
            let journal = journal.with_replica(shared.replica(run_id, hold.fence()));
            if let RunHold::Table(keeper) = hold {
                let lease = keeper
                    .lease()
                    .ok_or_else(|| EngineError::Internal("the run's lease is unreadable".into()))?;
                journal
                    .append(&Event::LeaseTaken(LeaseTaken {
                        holder: lease.holder,
                        generation: lease.generation,
                    }))
                    .map_err(|error| match error {
                        // Between reading the table and this append another worker took the
                        // run: it is live there.
                        JournalError::Taken { .. } => EngineError::Live(format!(
                            "the run is live on another worker ({error})"
                        )),
                        error => error.into(),
                    })?;
            }
            journal
        }
        _ => journal,
    };
    let replay = Replay::from_records(&resumed.records)
        .map_err(|e| EngineError::Invalid(format!("cannot resume {}: {e}", path.display())))?;
    if !run_id::is_valid(&replay.run_id) {
        return Err(EngineError::Invalid(format!(
            "cannot resume {}: its run id {:?} is not a firebreak run id",
            path.display(),
            replay.run_id
        )));
    }
    if let Some(reason) = replay.final_refusal() {
        return Err(EngineError::Refused(format!(
            "refused: run {} was refused by a safety interlock ({reason}); a refusal is final — \
             start a new run if the situation has changed",
            replay.run_id
        )));
    }
    let runbook_path = match runbook {
        Some(path) => path.to_path_buf(),
        None => {
            let path = PathBuf::from(&replay.runbook_path);
            if !path.is_absolute() {
                return Err(EngineError::Invalid(format!(
                    "cannot resume: the journal names the runbook {path:?}, not an absolute path; give it with --runbook"
                )));
            }
            path
        }
    };
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
    let ledger = Ledger::from_records(&resumed.records);
    // A decision is checked against the run before anything is written.
    let decision = match &settings.decision {
        Some(request) => {
            let waiting = ledger
                .waiting
                .as_ref()
                .filter(|_| replay.final_status == Some(RunStatus::AwaitingApproval));
            let step = decisions::step_decided(&replay.run_id, waiting, request)
                .map_err(EngineError::Invalid)?;
            Some(Box::new((request.clone(), step)))
        }
        None => None,
    };
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
        verify_finding: replay.verify_finding,
        run,
        kind: Kind::Resume {
            journal: Box::new(journal),
            previous_status: replay.final_status,
            torn: resumed.truncated,
            ledger: Box::new(ledger),
            decision,
        },
        recheck: replay.recheck.clone(),
        update_finding: replay.update_finding,
        custody: settings.custody.clone().or(replay.custody.clone()),
        lease: hold.map(|(hold, _)| hold),
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

/// The run a resume names: a run id, or a journal file named after its run.
fn run_id_of(target: &str) -> Result<String, EngineError> {
    let name = Path::new(target)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(target);
    if run_id::is_valid(name) {
        Ok(name.to_owned())
    } else {
        Err(EngineError::Invalid(format!(
            "no run `{target}`: give a run id like 20261128T100127Z-3f9a2c"
        )))
    }
}

/// The journal a resume means: an existing path, or a run id in the journal directory.
pub fn journal_for(target: &str, journal_dir: &Path) -> Result<PathBuf, EngineError> {
    let path = if Path::new(target).exists() {
        Path::new(target).to_path_buf()
    } else if run_id::is_valid(target) {
        journal_path(journal_dir, target)
    } else {
        return Err(EngineError::Invalid(format!(
            "no journal `{target}`: give a journal's path or a run id like 20261128T100127Z-3f9a2c"
        )));
    };
    if !path.exists() {
        return Err(EngineError::Invalid(format!(
            "no journal for `{target}`: {} does not exist (use --journal-dir or give the journal's path)",
            path.display()
        )));
    }
    Ok(path)
}

/// Parameters of a resumed run: as journaled, checked again against the runbook's types and
/// patterns (a journal is input like any other), with sensitive ones given again.
fn resumed_params(
    loaded: &LoadedRunbook,
    replay: &Replay,
    given: &[(String, String)],
) -> Result<ParamValues, EngineError> {
    let mut values = ParamValues::new();
    let mut errors = Vec::new();
    for (name, _) in given {
        if !loaded.runbook.parameters.contains_key(name) {
            errors.push(format!(
                "parameter `{name}` is not a parameter of runbook {}",
                loaded.runbook.name
            ));
        }
    }
    for (name, value) in &replay.parameters {
        let Some(param) = loaded.runbook.parameters.get(name) else {
            errors.push(format!(
                "the journal has parameter `{name}`, which the runbook does not declare"
            ));
            continue;
        };
        let supplied = given.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let value = match (param.sensitive, supplied) {
            (true, Some(raw)) => match params::coerce(name, param, raw) {
                Ok(v) => v,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            },
            (true, None) if value == crate::redact::REDACTED => {
                errors.push(format!(
                    "parameter `{name}` is sensitive and was not journaled; give it again with -p {name}=..."
                ));
                continue;
            }
            (false, Some(_)) => {
                errors.push(format!(
                    "parameter `{name}` is fixed by the journal and cannot be changed on resume"
                ));
                continue;
            }
            _ => value.clone(),
        };
        if let Err(e) = params::check(name, param, &value) {
            errors.push(format!("{e} (as the journal has it)"));
            continue;
        }
        values.insert(name.clone(), value);
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(EngineError::Invalid(errors.join("\n")))
    }
}
