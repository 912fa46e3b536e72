//! The prior state a containment recorded, read back for its release: the outputs of the
//! steps that ran a given action, from the journal of the containing run — verified first, so
//! a tampered or truncated journal restores nothing.

use std::path::Path;

use serde_json::Value;

use super::ActionError;
use crate::journal::Event;

/// The outputs of every step (and every item of a fanned-out step) that ran `action` in the
/// journal at `path`, in journal order; with `step`, only that step's. Failed steps count when
/// they recorded outputs: a step that changed something and then failed says so in them.
pub(crate) fn recorded_outputs(
    path: &str,
    action: &str,
    step: Option<&str>,
    key: Option<&[u8]>,
) -> Result<Vec<Value>, ActionError> {
    let path = Path::new(path);
    let verification = crate::journal::verify(path, key)
        .map_err(|e| ActionError::Failed(format!("cannot read journal {}: {e}", path.display())))?;
    if let Some(problem) = &verification.problem {
        return Err(ActionError::Failed(format!(
            "journal {} fails verification ({verification}); refusing to restore from it: {}",
            path.display(),
            problem.message
        )));
    }
    let records = crate::journal::read(path)
        .map_err(|e| ActionError::Failed(format!("cannot read journal {}: {e}", path.display())))?;
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
    let steps: Vec<&str> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::StepStarted(started) if started.action == action => Some(started.step.as_str()),
            _ => None,
        })
        .filter(|s| step.is_none_or(|wanted| wanted == *s))
        .collect();
    let mut found = Vec::new();
    for record in &records {
        let (step, outputs) = match &record.event {
            Event::StepSucceeded(e) | Event::ItemSucceeded(e) => (&e.step, Some(&e.outputs)),
            Event::StepFailed(e) | Event::ItemFailed(e) => (&e.step, e.outputs.as_ref()),
            _ => continue,
        };
        let Some(outputs) = outputs else { continue };
        if !steps.contains(&step.as_str()) {
            continue;
        }
        // A fan-out step lists per-item outputs; a single step has them directly.
        match outputs {
            Value::Array(items) => found.extend(items.iter().map(|i| i["outputs"].clone())),
            other => found.push(other.clone()),
        }
    }
    Ok(found)
}

/// [`recorded_outputs`] of every step that ran `action`, without a drill's (which changed
/// nothing) and kept only where `keep` says so.
pub(crate) fn changes_recorded(
    path: &str,
    action: &str,
    key: Option<&[u8]>,
    keep: impl Fn(&Value) -> bool,
) -> Result<Vec<Value>, ActionError> {
    Ok(recorded_outputs(path, action, None, key)?
        .into_iter()
        .filter(|o| o["dry_run"] != true && keep(o))
        .collect())
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
}
