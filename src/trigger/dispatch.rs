//! `dispatch`: events in, the right runbooks run with the right parameters — once per finding.

use std::path::Path;

use serde::Serialize;
use serde_json::{Value, json};

use super::dedupe::{self, Claim, Decision};
pub use super::outcome::Outcome;
use crate::check::{self, LoadedRunbook};
use crate::engine::{self, EngineError, Mode, Progress, Settings};
use crate::runbook::model::{ParamType, Trigger};
use crate::template::Templates;

#[derive(Debug, Serialize)]
pub struct Matched {
    pub runbook: String,
    pub trigger: String,
    pub dedupe_key: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Serialize)]
pub struct EventReport {
    pub event_id: Option<String>,
    pub source: Option<String>,
    pub detail_type: Option<String>,
    pub matched: Vec<Matched>,
}

/// Every runbook (`*.yaml`, `*.yml`) in a folder; invalid ones are reported, not fatal.
pub fn load_runbooks(dir: &Path) -> (Vec<LoadedRunbook>, Vec<String>) {
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    let mut paths: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect(),
        Err(e) => {
            errors.push(format!(
                "failed to read runbooks folder {}: {e}",
                dir.display()
            ));
            return (loaded, errors);
        }
    };
    paths.sort();
    for path in paths {
        match check::load(&path) {
            Ok(runbook) => loaded.push(runbook),
            Err(e) => errors.push(e.to_string()),
        }
    }
    (loaded, errors)
}

/// The first trigger of the runbook that matches the event.
pub fn matching_trigger<'r>(runbook: &'r LoadedRunbook, event: &Value) -> Option<&'r Trigger> {
    runbook
        .runbook
        .triggers
        .iter()
        .find(|t| super::matches(&t.pattern, event))
}

/// The event as one finding about one resource at a time. A Security Hub event's pattern
/// matches when *any* of its findings and resources does; a trigger's parameters read
/// `findings[0].Resources[0]`. So each (finding, resource) pair becomes its own event, with just
/// that finding and that resource, and only the pairs that match on their own run — parameters
/// then come from what matched, never from a neighbour. Other events are one focus already.
pub fn focuses(event: &Value) -> Vec<Value> {
    let Some(findings) = event["detail"]["findings"].as_array() else {
        return vec![event.clone()];
    };
    let mut focused = Vec::new();
    for finding in findings {
        let resources: Vec<Value> = match finding["Resources"].as_array() {
            Some(list) if !list.is_empty() => list.iter().map(|r| json!([r])).collect(),
            _ => vec![finding["Resources"].clone()],
        };
        for resources in resources {
            let mut one = finding.clone();
            if !resources.is_null() {
                one["Resources"] = resources;
            }
            let mut event = event.clone();
            event["detail"]["findings"] = json!([one]);
            focused.push(event);
        }
    }
    focused
}

/// The trigger's parameters rendered from the event, as command-line text (validated by the
/// engine exactly like `-p key=value`).
fn parameters(
    runbook: &LoadedRunbook,
    trigger: &Trigger,
    event: &Value,
) -> Result<Vec<(String, String)>, String> {
    let engine = Templates::new();
    let context = json!({ "event": event });
    let mut given = Vec::new();
    for (name, template) in &trigger.parameters {
        let value = engine
            .render_value(template, &context)
            .map_err(|e| format!("trigger `{}` parameter `{name}`: {e}", trigger.name))?;
        let kind = runbook.runbook.parameters.get(name).map(|p| p.kind);
        let text = match value {
            Value::String(s) => s,
            Value::Array(items) if kind == Some(ParamType::List) => {
                crate::runbook::params::list_as_text(&items)
            }
            Value::Null => {
                return Err(format!(
                    "trigger `{}` parameter `{name}`: the event has no value at `{template}`",
                    trigger.name
                ));
            }
            other => other.to_string(),
        };
        given.push((name.clone(), text));
    }
    Ok(given)
}

pub async fn dispatch(
    events: &[Value],
    runbooks: &[LoadedRunbook],
    mode: Mode,
    settings: &Settings,
) -> Vec<EventReport> {
    let mut reports = Vec::new();
    for event in events {
        let mut report = EventReport {
            event_id: event["id"].as_str().map(str::to_owned),
            source: event["source"].as_str().map(str::to_owned),
            detail_type: event["detail-type"].as_str().map(str::to_owned),
            matched: Vec::new(),
        };
        for focus in focuses(event) {
            for runbook in runbooks {
                let Some(trigger) = matching_trigger(runbook, &focus) else {
                    continue;
                };
                let outcome = handle(runbook, trigger, &focus, mode, settings).await;
                report.matched.push(Matched {
                    runbook: runbook.runbook.name.clone(),
                    trigger: trigger.name.clone(),
                    dedupe_key: dedupe_key(trigger, &focus),
                    outcome,
                });
            }
        }
        reports.push(report);
    }
    reports
}

fn dedupe_key(trigger: &Trigger, event: &Value) -> Option<String> {
    match &trigger.dedupe_key {
        Some(template) => Templates::new()
            .render_string(template, &json!({ "event": event }))
            .ok(),
        None => dedupe::finding_key(event),
    }
}

async fn handle(
    runbook: &LoadedRunbook,
    trigger: &Trigger,
    event: &Value,
    mode: Mode,
    settings: &Settings,
) -> Outcome {
    let with_updates;
    let settings = if trigger.update_finding {
        with_updates = Settings {
            update_finding: true,
            ..settings.clone()
        };
        &with_updates
    } else {
        settings
    };
    let given = match parameters(runbook, trigger, event) {
        Ok(given) => given,
        Err(reason) => return Outcome::Invalid { reason },
    };
    let Some(key) = dedupe_key(trigger, event) else {
        return Outcome::Invalid {
            reason:
                "the event has no finding id to de-duplicate on (set the trigger's `dedupe_key`)"
                    .into(),
        };
    };
    // The same finding id in two accounts or regions is two findings.
    let key = format!(
        "{}:{}:{}:{}:{key}",
        runbook.runbook.name,
        mode.as_str(),
        engine::event_account(event).unwrap_or_default(),
        engine::finding_region(event).unwrap_or_default(),
    );
    let case_key = match super::cases::case_key(runbook, trigger, event, mode) {
        Some(Err(reason)) => return Outcome::Invalid { reason },
        Some(Ok(case_key)) => Some(case_key),
        None => None,
    };
    // The run is live (its lease held) before its claim exists: a second delivery never finds
    // a claim whose run looks abandoned while it is only starting.
    let reservation = match engine::Reservation::new(settings).await {
        Ok(reservation) => reservation,
        Err(error) => {
            return Outcome::Failed {
                reason: format!("cannot reserve a run for the finding: {error}"),
            };
        }
    };
    let run_id = reservation.run_id().to_owned();
    let claim = Claim {
        key: key.clone(),
        runbook: runbook.runbook.name.clone(),
        run_id: run_id.clone(),
        journal: engine::journal_path(&settings.journal_dir, &run_id),
        host: crate::host::host(),
        claimed_at: engine::run_id::rfc3339(time::OffsetDateTime::now_utc()),
    };
    let decided = match &settings.shared {
        Some(shared) => dedupe::decide_shared(shared, &settings.journal_dir, &key, claim).await,
        None => dedupe::decide(&settings.journal_dir, &key, claim),
    };
    let decision = match decided {
        Ok(decision) => decision,
        Err(e) => {
            reservation.discard().await;
            return Outcome::Failed {
                reason: format!("cannot record the finding's claim: {e}"),
            };
        }
    };
    let result = match decision {
        Decision::Start(_) if case_key.is_some() => {
            super::cases::handle(super::cases::NewFinding {
                runbook,
                trigger,
                event,
                mode,
                settings,
                given,
                finding: key.clone(),
                case_key: case_key.unwrap_or_default(),
                reservation,
            })
            .await
        }
        Decision::Start(_) => engine::start_with_id(
            runbook.clone(),
            &given,
            Some(event.clone()),
            mode,
            settings,
            Some(reservation),
        )
        .await
        .map(|run| Outcome::Ran { run }),
        Decision::Duplicate { claim, status } => {
            reservation.discard().await;
            return Outcome::Duplicate {
                run_id: claim.run_id,
                status,
                journal: claim.journal.display().to_string(),
            };
        }
        Decision::Unreadable { claim, kind } => {
            reservation.discard().await;
            return Outcome::Refused {
                reason: format!(
                    "the finding was handled by run {}, whose journal has a `{kind}` record this \
                     firebreak does not know; handle it with the firebreak that wrote it",
                    claim.run_id
                ),
            };
        }
        Decision::Resume(claim) => {
            reservation.discard().await;
            settings.observer.on(&Progress::Notice {
                text: &format!(
                    "finding {key} was handled by run {} which did not finish; resuming it",
                    claim.run_id
                ),
            });
            match engine::resume(&claim.journal.display().to_string(), &[], None, settings).await {
                // Another delivery resumed it a moment ago: this one is the duplicate.
                Err(EngineError::Live(_)) => {
                    return Outcome::Duplicate {
                        run_id: claim.run_id,
                        status: "running".into(),
                        journal: claim.journal.display().to_string(),
                    };
                }
                other => other.map(|run| Outcome::Resumed { run }),
            }
        }
    };
    match result {
        Ok(outcome) => outcome,
        Err(EngineError::Invalid(reason)) => Outcome::Invalid { reason },
        Err(EngineError::Refused(reason)) => Outcome::Refused { reason },
        Err(error @ (EngineError::Lock(_) | EngineError::Live(_))) => Outcome::Refused {
            reason: error.to_string(),
        },
        Err(EngineError::LeaseLost { run_id, detail }) => Outcome::LeaseLost {
            run_id,
            reason: detail,
        },
        Err(other) => Outcome::Failed {
            reason: other.to_string(),
        },
    }
}
