//! What a new finding does to its case (a trigger's `case_key`): the first finding of a
//! resource opens a case and its run contains it; a later one **joins** a case whose run is live
//! or waits (no second containment, no second snapshot set), starts a **recheck** of a case
//! that finished within its window (only the runbook's `recheck` steps: what drifted is
//! contained again and reported), **resumes** a case run that failed or stopped, and opens a
//! new case after the window or after a final refusal. Every decision is recorded in the case
//! index, under its lock.

use std::path::Path;

use serde_json::{Value, json};

use super::case_index::{CaseError, CaseIndex};
use super::dedupe::{self, RunState};
use super::outcome::Outcome;
use crate::check::LoadedRunbook;
use crate::engine::decisions;
use crate::engine::recheck::{self, Recheck};
use crate::engine::{self, EngineError, Mode, Reservation, Settings};
use crate::journal::Event;
use crate::journal::event::{CaseOpened, FindingJoined};
use crate::runbook::model::Trigger;
use crate::template::Templates;

/// The default (and longest) window in which later findings join a case.
pub const DEFAULT_WINDOW: &str = "24h";

/// A finding with a case key, claimed as new by de-duplication.
pub(super) struct NewFinding<'a> {
    pub runbook: &'a LoadedRunbook,
    pub trigger: &'a Trigger,
    pub event: &'a Value,
    pub mode: Mode,
    pub settings: &'a Settings,
    pub given: Vec<(String, String)>,
    /// Its de-duplication key (its claim's).
    pub finding: String,
    pub case_key: String,
    pub reservation: Reservation,
}

/// The case key of a trigger for an event: the rendered `case_key`, scoped like findings are
/// (runbook, mode, account, region). `None` when the trigger has none.
pub(super) fn case_key(
    runbook: &LoadedRunbook,
    trigger: &Trigger,
    event: &Value,
    mode: Mode,
) -> Option<Result<String, String>> {
    let template = trigger.case_key.as_ref()?;
    let rendered = Templates::new()
        .render_string(template, &json!({ "event": event }))
        .map_err(|e| format!("trigger `{}` case_key: {e}", trigger.name));
    Some(rendered.and_then(|key| {
        if key.trim().is_empty() {
            return Err(format!(
                "trigger `{}` case_key rendered empty for this event",
                trigger.name
            ));
        }
        Ok(format!(
            "{}:{}:{}:{}:{key}",
            runbook.runbook.name,
            mode.as_str(),
            engine::event_account(event).unwrap_or_default(),
            engine::finding_region(event).unwrap_or_default(),
        ))
    }))
}

pub(super) async fn handle(finding: NewFinding<'_>) -> Result<Outcome, EngineError> {
    let settings = finding.settings;
    let dir = &settings.journal_dir;
    let failed = |e: CaseError| EngineError::Internal(format!("the case index: {e}"));
    let mut index =
        CaseIndex::lock(dir, &finding.case_key, settings.journal_key.clone()).map_err(failed)?;
    let open = index
        .current()
        .filter(|case| !decisions::has_passed(&case.opened.window_ends));
    let Some(case) = open else {
        return open_case(finding, index).await;
    };
    // The run that holds the case now: a live or waiting recheck, else the case's own run.
    let latest_recheck = case
        .joined
        .iter()
        .rev()
        .find_map(|j| j.recheck_run.clone())
        .filter(|run| matches!(dedupe::run_state_of(dir, run), RunState::Settled(s) if s != "succeeded" && s != "refused"));
    let holder = latest_recheck.unwrap_or_else(|| case.opened.case_run.clone());
    let joined = |action: &str, status: &str, recheck_run: Option<String>| {
        Event::FindingJoined(FindingJoined {
            case_key: finding.case_key.clone(),
            finding: finding.finding.clone(),
            case_run: holder.clone(),
            action: action.into(),
            recheck_run,
            status: status.into(),
        })
    };
    match dedupe::run_state_of(dir, &holder) {
        RunState::Settled(status) if status == "running" || status == "awaiting_approval" => {
            index
                .append(joined("joined", &status, None))
                .map_err(failed)?;
            drop(index);
            finding.reservation.discard().await;
            repoint(dir, &finding.finding, &holder)?;
            Ok(Outcome::Joined {
                case_key: finding.case_key,
                run_id: holder.clone(),
                status,
                journal: engine::journal_path(dir, &holder).display().to_string(),
            })
        }
        RunState::Settled(status) if status == "succeeded" => {
            let recheck_run = finding.reservation.run_id().to_owned();
            index
                .append(joined("rechecked", &status, Some(recheck_run)))
                .map_err(failed)?;
            drop(index);
            recheck_case(finding, &case.opened.case_run).await
        }
        RunState::Unfinished => {
            index
                .append(joined("resumed", "unfinished", None))
                .map_err(failed)?;
            drop(index);
            finding.reservation.discard().await;
            repoint(dir, &finding.finding, &holder)?;
            let journal = engine::journal_path(dir, &holder).display().to_string();
            match engine::resume(&journal, &[], None, settings).await {
                Err(EngineError::Live(_)) => Ok(Outcome::Duplicate {
                    run_id: holder,
                    status: "running".into(),
                    journal,
                }),
                other => other.map(|run| Outcome::Resumed { run }),
            }
        }
        RunState::Unreadable(kind) => {
            finding.reservation.discard().await;
            Ok(Outcome::Refused {
                reason: format!(
                    "the finding's case is held by run {holder}, whose journal has a `{kind}` \
                     record this firebreak does not know"
                ),
            })
        }
        // Refused for good, or never begun: the case starts over with this finding.
        RunState::Settled(_) | RunState::NotBegun => open_case(finding, index).await,
    }
}

/// Opens a case with this finding's run, then runs it (the index unlocked first: a second
/// finding of the case must be able to join while it runs).
async fn open_case(finding: NewFinding<'_>, mut index: CaseIndex) -> Result<Outcome, EngineError> {
    let window = finding
        .trigger
        .case_window
        .as_deref()
        .unwrap_or(DEFAULT_WINDOW);
    let window = crate::runbook::duration::parse(window).map_err(EngineError::Invalid)?;
    index
        .append(Event::CaseOpened(CaseOpened {
            case_key: finding.case_key.clone(),
            runbook: finding.runbook.runbook.name.clone(),
            case_run: finding.reservation.run_id().to_owned(),
            finding: finding.finding.clone(),
            window_ends: decisions::deadline(window),
        }))
        .map_err(|e| EngineError::Internal(format!("the case index: {e}")))?;
    drop(index);
    engine::start_with_id(
        finding.runbook.clone(),
        &finding.given,
        Some(finding.event.clone()),
        finding.mode,
        finding.settings,
        Some(finding.reservation),
    )
    .await
    .map(|run| Outcome::Ran { run })
}

/// A recheck of a finished case: the case run's parameters (the same case id, so snapshots
/// and tags are found, not made again), only the `recheck` steps, the case's approvals.
async fn recheck_case(finding: NewFinding<'_>, case_run: &str) -> Result<Outcome, EngineError> {
    let settings = finding.settings;
    let given = case_parameters(&settings.journal_dir, case_run, finding.given);
    let settings = Settings {
        recheck: Some(Recheck {
            case_run: case_run.to_owned(),
            steps: finding.runbook.runbook.recheck.clone(),
        }),
        ..settings.clone()
    };
    let run = engine::start_with_id(
        finding.runbook.clone(),
        &given,
        Some(finding.event.clone()),
        finding.mode,
        &settings,
        Some(finding.reservation),
    )
    .await?;
    let records = crate::journal::read(&run.journal).unwrap_or_default();
    Ok(Outcome::Rechecked {
        case_key: finding.case_key,
        case_run: case_run.to_owned(),
        drift: recheck::changes(&records),
        run,
    })
}

/// The case run's journaled parameters as command-line text, over the trigger's own (a
/// sensitive parameter, journaled `[redacted]`, keeps the trigger's value).
fn case_parameters(
    journal_dir: &Path,
    case_run: &str,
    mut given: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let path = engine::journal_path(journal_dir, case_run);
    let records = crate::journal::read(&path).unwrap_or_default();
    let Some(Event::RunStarted(started)) = records.first().map(|r| &r.event) else {
        return given;
    };
    for (name, value) in &started.parameters {
        if started.sensitive_parameters.contains(name) {
            continue;
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Array(items) => crate::runbook::params::list_as_text(items),
            other => other.to_string(),
        };
        given.retain(|(n, _)| n != name);
        given.push((name.clone(), text));
    }
    given
}

fn repoint(dir: &Path, finding: &str, run_id: &str) -> Result<(), EngineError> {
    dedupe::repoint(dir, finding, run_id)
        .map_err(|e| EngineError::Internal(format!("cannot repoint the finding's claim: {e}")))
}
