//! The prior state a containment recorded, read back for its release: the outputs of the
//! steps that ran a given action, from the journal of the containing run — verified first, so
//! a tampered or truncated journal restores nothing.

use std::path::Path;

use serde_json::Value;

use super::ActionError;
use crate::journal::Event;

/// A containing run's journal, verified and read once, to ask what it recorded.
pub(crate) struct Recorded {
    records: Vec<crate::journal::Record>,
}

impl Recorded {
    /// Verifies the journal at `path` and reads it; a tampered, truncated or newer-format
    /// journal is refused.
    pub(crate) fn read(path: &str, key: Option<&[u8]>) -> Result<Recorded, ActionError> {
        let path = Path::new(path);
        let verification = crate::journal::verify(path, key).map_err(|e| {
            ActionError::Failed(format!("cannot read journal {}: {e}", path.display()))
        })?;
        if let Some(problem) = &verification.problem {
            return Err(ActionError::Failed(format!(
                "journal {} fails verification ({verification}); refusing to restore from it: {}",
                path.display(),
                problem.message
            )));
        }
        let records = crate::journal::read(path).map_err(|e| {
            ActionError::Failed(format!("cannot read journal {}: {e}", path.display()))
        })?;
        if let Some(other) = records.iter().find_map(|r| match &r.event {
            Event::Other(other) => Some(other),
            _ => None,
        }) {
            return Err(ActionError::Failed(format!(
                "journal {} has a `{}` record this firebreak cannot read{}; refusing to restore from it (use the firebreak that wrote it)",
                path.display(),
                other.kind,
                other
                    .malformed
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            )));
        }
        Ok(Recorded { records })
    }

    /// The journal at `path` read once for the whole run: a release of many instances asks it
    /// once per instance and action.
    pub(crate) async fn once(
        ctx: &super::StepContext,
        path: &str,
    ) -> Result<std::sync::Arc<Recorded>, ActionError> {
        ctx.once(&format!("recorded-journal:{path}"), || async {
            Ok(std::sync::Arc::new(Recorded::read(
                path,
                ctx.journal_key(),
            )?))
        })
        .await
    }

    /// The outputs of every step (and every item of a fanned-out step, or of a step inside a
    /// group's per-item pipeline, `contain.isolate`) that ran `action`, in journal order, each
    /// item once; with `step`, only that step's. Failed steps count when they recorded
    /// outputs: a step that changed something and then failed says so in them.
    pub(crate) fn outputs(&self, action: &str, step: Option<&str>) -> Vec<Value> {
        let records = &self.records;
        let steps: Vec<&str> = records
            .iter()
            .filter_map(|r| match &r.event {
                // A step inside a group's pipeline starts per item, with no step-level record.
                Event::StepStarted(started) | Event::ItemStarted(started)
                    if started.action == action =>
                {
                    Some(started.step.as_str())
                }
                _ => None,
            })
            .filter(|s| step.is_none_or(|wanted| wanted == *s))
            .collect();
        let mut found = Vec::new();
        // Steps whose items were journaled one by one: their closing list repeats them.
        let mut itemized: Vec<&str> = Vec::new();
        for record in records {
            let (step, outputs, item) = match &record.event {
                Event::StepSucceeded(e) => (&e.step, Some(&e.outputs), false),
                Event::ItemSucceeded(e) => (&e.step, Some(&e.outputs), true),
                Event::StepFailed(e) => (&e.step, e.outputs.as_ref(), false),
                Event::ItemFailed(e) => (&e.step, e.outputs.as_ref(), true),
                _ => continue,
            };
            let Some(outputs) = outputs else { continue };
            if !steps.contains(&step.as_str()) {
                continue;
            }
            if item {
                itemized.push(step.as_str());
                found.push(outputs.clone());
                continue;
            }
            // A fan-out step's closing record lists per-item outputs; a single step has them
            // directly.
            match outputs {
                Value::Array(_) if itemized.contains(&step.as_str()) => {}
                Value::Array(items) => found.extend(items.iter().map(|i| i["outputs"].clone())),
                other => found.push(other.clone()),
            }
        }
        found
    }

    /// [`Recorded::outputs`] of every step that ran `action`, without a drill's (which changed
    /// nothing) and kept only where `keep` says so.
    pub(crate) fn changes(&self, action: &str, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.outputs(action, None)
            .into_iter()
            .filter(|o| o["dry_run"] != true && keep(o))
            .collect()
    }
}

/// [`Recorded::outputs`] of the journal at `path`, verified first.
pub(crate) fn recorded_outputs(
    path: &str,
    action: &str,
    step: Option<&str>,
    key: Option<&[u8]>,
) -> Result<Vec<Value>, ActionError> {
    Ok(Recorded::read(path, key)?.outputs(action, step))
}

/// [`Recorded::changes`] of the journal at `path`, verified first.
pub(crate) fn changes_recorded(
    path: &str,
    action: &str,
    key: Option<&[u8]>,
    keep: impl Fn(&Value) -> bool,
) -> Result<Vec<Value>, ActionError> {
    Ok(Recorded::read(path, key)?.changes(action, keep))
}

/// Settings by key, as containment moves record them (`before` / `after`).
pub(crate) type Settings = serde_json::Map<String, Value>;

/// For each setting the moves recorded: its value before the first move that touched it, and
/// after the last. Drill outputs (`dry_run`) changed nothing and are left out.
pub(crate) fn before_and_after<'a>(
    outputs: impl Iterator<Item = &'a Value>,
) -> (Settings, Settings) {
    let mut prior = Settings::new();
    let mut left = Settings::new();
    for out in outputs.filter(|o| o["dry_run"] != true) {
        for (setting, value) in out["before"].as_object().into_iter().flatten() {
            prior
                .entry(setting.clone())
                .or_insert_with(|| value.clone());
        }
        for (setting, value) in out["after"].as_object().into_iter().flatten() {
            left.insert(setting.clone(), value.clone());
        }
    }
    (prior, left)
}

/// Where a setting stands for its release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// As the containment left it: put the recorded value back.
    Restore,
    /// Already the recorded value (an earlier release, perhaps interrupted).
    AlreadyRestored,
    /// Neither: someone changed it since the containment.
    ChangedSince,
}

impl Standing {
    pub(crate) fn of(
        live: &Value,
        before: &Value,
        after: &Value,
        same: impl Fn(&Value, &Value) -> bool,
    ) -> Standing {
        if same(live, before) {
            Standing::AlreadyRestored
        } else if same(live, after) {
            Standing::Restore
        } else {
            Standing::ChangedSince
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Standing::Restore => "restore",
            Standing::AlreadyRestored => "already-restored",
            Standing::ChangedSince => "changed-since",
        }
    }
}

/// One setting changed since the containment, as every release reports it in
/// `outputs.drifted`: what the containment left, what it is now, and what it was before (what a
/// forced release puts back).
pub(crate) fn drift(setting: &str, left: &Value, now: &Value, before: &Value) -> Value {
    serde_json::json!({ "setting": setting, "left": left, "now": now, "recorded_before": before })
}

/// The refusal of a release whose settings changed since the containment: nothing restored.
pub(crate) fn changed_since(what: &str, drifted: Vec<Value>) -> ActionError {
    let names: Vec<&str> = drifted
        .iter()
        .filter_map(|d| d["setting"].as_str())
        .collect();
    ActionError::Refused(format!(
        "{what}: {} changed since the containment (see outputs.drifted); nothing was restored. \
         Look at who changed it; give force: true to restore the recorded settings anyway",
        names.join(", ")
    ))
    .with_outputs(serde_json::json!({ "drifted": drifted }))
}

/// Which of the instances a journal records a release acts on. A fleet's journal records many:
/// releasing one of them must not release the others, so without `wanted` a journal recording
/// more than one instance is refused (naming them), and with it only those named are kept.
/// `recorded` is in journal order; the choice keeps that order.
pub(crate) fn chosen_instances(
    path: &str,
    recorded: &[String],
    wanted: Option<&[String]>,
) -> Result<Vec<String>, ActionError> {
    match wanted {
        Some(wanted) => Ok(recorded
            .iter()
            .filter(|r| wanted.contains(r))
            .cloned()
            .collect()),
        None if recorded.len() > 1 => {
            let shown: Vec<&str> = recorded.iter().take(5).map(String::as_str).collect();
            let more = recorded.len().saturating_sub(shown.len());
            Err(ActionError::Input(format!(
                "journal {path} records {} instances ({}{}); name the ones to release in \
                 `instance_ids` (releasing one must not release the others)",
                recorded.len(),
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            )))
        }
        None => Ok(recorded.to_vec()),
    }
}

/// The instances named in `wanted` that `recorded` does not hold, for a release to refuse.
pub(crate) fn not_recorded<'a>(recorded: &[String], wanted: &'a [String]) -> Vec<&'a str> {
    wanted
        .iter()
        .filter(|w| !recorded.contains(w))
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::journal::{FileJournal, JournalSink};

    /// A journal with a record this engine cannot read (a newer engine's) is refused, naming
    /// the record's kind, rather than restored from in part.
    #[test]
    fn a_journal_with_an_unknown_kind_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        let journal = FileJournal::create(&path, "r1", None).unwrap();
        let Value::Object(fields) = json!({"note": "newer"}) else {
            unreachable!()
        };
        journal.append_fields("quorum_reached", fields).unwrap();
        let error = recorded_outputs(path.to_str().unwrap(), "ec2.isolate_instance", None, None)
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("`quorum_reached` record this firebreak cannot read"),
            "{message}"
        );
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("i-{i:017x}")).collect()
    }

    /// A fleet journal without a choice is refused, naming some of its instances and the count.
    #[test]
    fn a_fleet_journal_needs_the_instances_named() {
        let recorded = ids(48);
        let error = chosen_instances("run.jsonl", &recorded, None).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("records 48 instances"), "{message}");
        assert!(message.contains("and 43 more"), "{message}");
        assert!(message.contains("`instance_ids`"), "{message}");
        assert_eq!(
            chosen_instances("run.jsonl", &recorded[..1], None).unwrap(),
            recorded[..1].to_vec()
        );
    }

    /// Only the named instances are kept, in journal order; a name the journal lacks is found.
    #[test]
    fn only_the_named_instances_are_released() {
        let recorded = ids(5);
        let wanted = vec![
            recorded[3].clone(),
            recorded[1].clone(),
            "i-0ffff".to_owned(),
        ];
        assert_eq!(
            chosen_instances("run.jsonl", &recorded, Some(&wanted)).unwrap(),
            vec![recorded[1].clone(), recorded[3].clone()]
        );
        assert_eq!(not_recorded(&recorded, &wanted), vec!["i-0ffff"]);
    }

    fn started(step: &str, item: Option<usize>, action: &str) -> Event {
        Event::ItemStarted(crate::journal::event::StepStarted {
            step: step.into(),
            item_index: item,
            item: item.map(|i| json!(format!("i-{i}"))),
            action: action.into(),
            for_each: None,
            concurrency: None,
            idempotency_key: format!("r1.{step}"),
            attempts: None,
            timeout: None,
            input: None,
        })
    }

    fn succeeded(
        step: &str,
        item: Option<usize>,
        outputs: Value,
    ) -> crate::journal::event::StepSucceeded {
        crate::journal::event::StepSucceeded {
            step: step.into(),
            item_index: item,
            item: item.map(|i| json!(format!("i-{i}"))),
            outputs,
            isolated: None,
        }
    }

    /// A fleet's journal: the isolation runs inside a group's per-item pipeline
    /// (`contain.isolate`, started per item, no step-level record), and a plain fan-out step
    /// journals each item and then the list again. Each item's outputs are read once.
    #[test]
    fn pipeline_and_fan_out_items_are_read_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        let journal = FileJournal::create(&path, "r1", None).unwrap();
        for i in 0..2 {
            journal
                .append(&started("contain.isolate", Some(i), "ec2.isolate_instance"))
                .unwrap();
            journal
                .append(&Event::ItemSucceeded(succeeded(
                    "contain.isolate",
                    Some(i),
                    json!({"instance_id": format!("i-{i}")}),
                )))
                .unwrap();
        }
        let Event::ItemStarted(mut fan_out) = started("isolate", None, "ec2.isolate_instance")
        else {
            unreachable!()
        };
        fan_out.for_each = Some(vec![json!("i-2")]);
        journal.append(&Event::StepStarted(fan_out)).unwrap();
        journal
            .append(&started("isolate", Some(0), "ec2.isolate_instance"))
            .unwrap();
        journal
            .append(&Event::ItemSucceeded(succeeded(
                "isolate",
                Some(0),
                json!({"instance_id": "i-2"}),
            )))
            .unwrap();
        journal
            .append(&Event::StepSucceeded(succeeded(
                "isolate",
                None,
                json!([{"item": "i-2", "status": "succeeded", "outputs": {"instance_id": "i-2"}}]),
            )))
            .unwrap();
        let outputs =
            recorded_outputs(path.to_str().unwrap(), "ec2.isolate_instance", None, None).unwrap();
        let ids: Vec<&str> = outputs
            .iter()
            .map(|o| o["instance_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["i-0", "i-1", "i-2"]);
    }
}
