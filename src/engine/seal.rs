//! The run's seal (`--seal`): opened at admission, sealed at every step end and at the run's
//! end (signed there with `--sign-key`). A seal that fails is journaled and shown, never fatal:
//! containment does not wait on a bucket.

use std::sync::Arc;

use serde_json::Value;

use super::observe::Progress;
use super::state::RunState;
use super::{EngineError, RunStatus, Settings};
use crate::actions::RunHooks;
use crate::custody::Sealer;
use crate::custody::sealer::SealReport;
use crate::journal::Event;
use crate::journal::event::Custody;

/// Fills in the owner (the caller's own account unless `--seal-owner` named one).
pub(super) fn resolve(mut custody: Custody, caller: &Value) -> Custody {
    if custody.owner.is_empty() {
        custody.owner = caller["account"].as_str().unwrap_or_default().to_owned();
    }
    custody
}

/// Checks the bucket (and key) and keeps the sealer for the run.
pub(super) async fn open(
    state: &Arc<RunState>,
    run: &crate::actions::RunContext,
    custody: Custody,
) -> Result<(), EngineError> {
    let path = state.journal.path().map(std::path::Path::to_path_buf);
    let Some(path) = path else {
        return Ok(());
    };
    let write = |event: Event| state.record(event);
    let (sealer, failures) =
        Sealer::open(&state.home, custody, &state.run_id, &path, &write).await?;
    for failure in failures {
        warn(state, &failure);
    }
    if let Some(collection) = sealer.collection() {
        let _ = run.collection.set(collection);
    }
    state.observe(Progress::Notice {
        text: &format!("sealing to {}", sealer.location()),
    });
    *state.sealer.lock().await = Some(sealer);
    Ok(())
}

/// Seals what the step added (evidence, then the journal).
pub(super) async fn step_end(state: &Arc<RunState>) -> Result<(), EngineError> {
    seal(state, None).await.map(|_| ())
}

/// Seals the run's end and signs it.
pub(super) async fn run_end(
    state: &Arc<RunState>,
    status: RunStatus,
) -> Result<Option<SealReport>, EngineError> {
    seal(state, Some(status)).await
}

async fn seal(
    state: &Arc<RunState>,
    status: Option<RunStatus>,
) -> Result<Option<SealReport>, EngineError> {
    let mut guard = state.sealer.lock().await;
    let Some(sealer) = guard.as_mut() else {
        return Ok(None);
    };
    let write = |event: Event| {
        // The crash tests' boundary: an object is in the seal, its record not yet journaled.
        if let Event::Sealed(sealed) = &event {
            super::fault::point(&format!("before-sealed:{}", sealed.what.as_str()));
        }
        state.record(event)
    };
    let report = sealer.seal(status.map(RunStatus::as_str), &write).await?;
    for failure in &report.failures {
        warn(state, failure);
    }
    Ok(Some(report))
}

fn warn(state: &RunState, failure: &str) {
    tracing::warn!(run_id = %state.run_id, "seal failed: {failure}");
    state.observe(Progress::Notice {
        text: &format!(
            "SEAL FAILED: {failure} — containment goes on; `firebreak journal seal {}` completes \
             the seal",
            state.run_id
        ),
    });
}

/// `firebreak journal seal`: seals what a run's journal holds and its seal lacks — after a
/// `seal_failed`, or a crash between a record and its upload — and signs the head. Holds the
/// run's lease meanwhile (a live run seals itself). `custody` replaces the journal's choice.
pub async fn complete(
    target: &str,
    custody: Option<Custody>,
    settings: &Settings,
) -> Result<SealReport, EngineError> {
    use crate::journal::chain::ChainKey;
    use crate::journal::{FileJournal, JournalSink};
    let path = super::journal_for(target, &settings.journal_dir)?;
    let records = crate::journal::read(&path)?;
    let run_id = records
        .first()
        .map(|r| r.run_id.clone())
        .ok_or_else(|| EngineError::Invalid(format!("{} is empty", path.display())))?;
    let dir = path.parent().unwrap_or(&settings.journal_dir);
    let _lease = crate::lease::RunLease::acquire(dir, &run_id)?;
    let Some(custody) = custody.or_else(|| crate::custody::sealer::chosen(&records)) else {
        return Err(EngineError::Invalid(format!(
            "run {run_id} was not run with --seal: give the seal with --seal s3://BUCKET/PREFIX"
        )));
    };
    let clients = match &settings.clients {
        Some(clients) => clients.clone(),
        None => crate::aws::Clients::new(&crate::aws::load_sdk_config(&settings.aws).await),
    };
    let caller = super::identity::caller(&clients).await;
    let custody = resolve(custody, &caller);
    let (journal, _) =
        FileJournal::open_for_resume(&path, settings.journal_key.clone().map(ChainKey::from))?;
    let write = |event: Event| {
        let event = &event;
        journal.append(event).map(|_| ())
    };
    let (mut sealer, mut failures) =
        Sealer::open(&clients, custody, &run_id, &path, &write).await?;
    let status = crate::custody::sealer::ended(&records);
    let mut report = sealer.seal(Some(status), &write).await?;
    failures.append(&mut report.failures);
    report.failures = failures;
    Ok(report)
}
