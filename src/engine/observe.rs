//! What a run tells whoever watches it while it happens: steps starting and ending, fan-out
//! counts, waits with progress, refusals. The engine publishes; the command line renders (a line
//! per step, a live progress line on a terminal); workers log or ignore. Nothing here is
//! durable: the journal is the record, this is the view.

use std::time::Duration;

use crate::journal::{Mode, RunStatus, StepStatus};

/// One thing that happened in a run, as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress<'a> {
    RunStarted {
        run_id: &'a str,
        mode: Mode,
        journal: &'a str,
    },
    RunResumed {
        run_id: &'a str,
        mode: Mode,
        journal: &'a str,
    },
    /// A person's decision (or an expiry's deny) journaled as a resumed run goes on.
    Decided {
        record: &'a crate::journal::event::DecisionRecord,
    },
    /// A resumed run that had already succeeded: nothing to do.
    AlreadySucceeded { run_id: &'a str },
    StepStarted {
        step: &'a str,
        action: &'a str,
        /// Items of a fan-out step.
        items: Option<usize>,
    },
    /// A step finished replayed from the journal (not run again).
    StepReplayed { step: &'a str, status: StepStatus },
    StepFinished {
        step: &'a str,
        status: StepStatus,
        elapsed: Duration,
        /// Why it failed (redacted).
        error: Option<&'a str>,
    },
    /// A fan-out item ended: how many are done of how many, how many failed.
    ItemFinished {
        step: &'a str,
        done: usize,
        total: usize,
        failed: usize,
    },
    /// A step waits and says how far it is (snapshots, stacks, commands).
    Waiting {
        step: &'a str,
        item: Option<usize>,
        text: &'a str,
    },
    /// Something the operator should see now (an override taken, a notification that failed).
    Notice { text: &'a str },
    /// Refused before any change.
    Refused { reason: &'a str },
    RunFinished {
        run_id: &'a str,
        status: RunStatus,
        journal: &'a str,
    },
}

/// Receives a run's progress. Implementations must be quick and must not fail the run.
pub trait Observer: Send + Sync {
    fn on(&self, progress: &Progress<'_>);
}

/// Watches nothing: library callers and workers that only want the journal.
pub struct NullObserver;

impl Observer for NullObserver {
    fn on(&self, _progress: &Progress<'_>) {}
}
