//! What dispatch did with one matched runbook: the outcomes it reports (and the command line
//! turns into exit codes).

use serde::Serialize;

use crate::engine::RunOutcome;

/// What happened to one matched runbook.
#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Ran {
        run: RunOutcome,
    },
    Resumed {
        run: RunOutcome,
    },
    Duplicate {
        run_id: String,
        status: String,
        journal: String,
    },
    /// A new finding of a case whose run is live or waits: recorded in the case index, nothing
    /// run (exit 0).
    Joined {
        case_key: String,
        run_id: String,
        status: String,
        journal: String,
    },
    /// A new finding of a case that finished within its window: a recheck run re-verified the
    /// containment; `drift` is what it had to change again (empty: the containment held).
    Rechecked {
        case_key: String,
        case_run: String,
        drift: Vec<String>,
        run: RunOutcome,
    },
    /// The trigger's parameters could not be extracted or did not validate (exit 2).
    Invalid {
        reason: String,
    },
    /// Refused before any change (lock held, interlock) (exit 3).
    Refused {
        reason: String,
    },
    /// The run stopped acting mid-way: its lease in the shared table was no longer this
    /// worker's (a renewal refused or too late, or another worker took the run over). Nothing
    /// failed; the table's journal is as far as it went and a resume carries it on (a worker
    /// sends itself a resume request; exit 130 from `dispatch`, as for an interrupted run).
    LeaseLost {
        run_id: String,
        reason: String,
    },
    /// The run could not start or go on: its journal failed, an interlock could not be
    /// evaluated (exit 1), or an internal error (exit 70).
    Failed {
        reason: String,
    },
}
