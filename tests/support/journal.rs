//! A run's journal read through firebreak's typed events (`firebreak::journal::read`), with the
//! questions tests ask of it. Records are also available as JSON objects in the format's field
//! order (`Record::to_value`), for assertions on single fields.

use std::path::Path;

use firebreak::journal::event::ApiCall;
use firebreak::journal::{Event, Record};
use serde_json::Value;

/// The pseudo-steps under which the engine journals its own calls.
pub use firebreak::actions::ENGINE_STEPS;

#[derive(Debug, Clone)]
pub struct Journal {
    pub records: Vec<Record>,
}

impl Journal {
    pub fn read(path: &Path) -> Journal {
        let records = firebreak::journal::read(path)
            .unwrap_or_else(|e| panic!("failed to read journal {}: {e}", path.display()));
        Journal { records }
    }

    /// Every record as a JSON object (envelope, payload, chain fields).
    pub fn values(&self) -> Vec<Value> {
        self.records.iter().map(Record::to_value).collect()
    }

    /// The records of one kind, as JSON objects.
    pub fn of_kind(&self, kind: &str) -> Vec<Value> {
        self.records
            .iter()
            .filter(|r| r.event.kind() == kind)
            .map(Record::to_value)
            .collect()
    }

    /// Every `api_call` record.
    pub fn api_calls(&self) -> Vec<&ApiCall> {
        self.records
            .iter()
            .filter_map(|r| match &r.event {
                Event::ApiCall(call) => Some(call),
                _ => None,
            })
            .collect()
    }

    /// The calls steps made (the engine's own — interlocks, notifications — left out).
    pub fn step_calls(&self) -> Vec<&ApiCall> {
        self.api_calls()
            .into_iter()
            .filter(|c| !ENGINE_STEPS.contains(&c.step.as_str()))
            .collect()
    }

    /// Step calls as `service:Operation`.
    pub fn step_call_names(&self) -> Vec<String> {
        self.step_calls().iter().map(|c| c.name()).collect()
    }

    /// Step calls of mutating operations (not Describe*, Get*, List*).
    pub fn mutating_calls(&self) -> Vec<&ApiCall> {
        self.step_calls()
            .into_iter()
            .filter(|c| is_mutating(&c.operation))
            .collect()
    }

    /// The kinds of all records, in order.
    pub fn kinds(&self) -> Vec<&str> {
        self.records.iter().map(|r| r.event.kind()).collect()
    }
}

/// Reads a journal's records as JSON objects.
pub fn values(path: &Path) -> Vec<Value> {
    Journal::read(path).values()
}

pub fn is_mutating(operation: &str) -> bool {
    // As the proxy judges them (fault_proxy.py READ_ONLY_PREFIXES).
    ![
        "Describe", "Get", "List", "Head", "Lookup", "Simulate", "Search",
    ]
    .iter()
    .any(|prefix| operation.starts_with(prefix))
}

/// The one journal in a directory (panics when there is none or several).
pub fn only_journal(dir: &Path) -> std::path::PathBuf {
    let journals: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    assert_eq!(
        journals.len(),
        1,
        "journals in {}: {journals:?}",
        dir.display()
    );
    journals.into_iter().next().unwrap()
}
