//! A decision asked of a person by `core.approve`: what is asked, and what was decided. Who
//! decides (a terminal, `--yes`, a drill, nobody) is the engine's and the command line's
//! business; an action only asks.

/// What a step asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub run_id: String,
    pub step_id: String,
    pub item_index: Option<usize>,
    /// Redacted.
    pub prompt: String,
    /// ARN patterns (`*` and `?` wildcards) of who may decide; empty: anyone who can run it.
    pub approvers: Vec<String>,
    /// How long a parked approval waits before its decision is deny.
    pub timeout: Option<std::time::Duration>,
}

/// The outcome of one approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub approved: bool,
    /// Denied without anyone asked (kept for journals of earlier engines; never set now).
    pub refused: bool,
    /// Nobody could be asked: the run parks at this step until a person resumes it.
    pub parked: bool,
    /// Who or what decided: `flag (--yes)`, `operator`, `drill`, a decision record's decider, or
    /// why nobody could.
    pub by: String,
    /// A parked approval's deadline (RFC 3339, UTC), when the step has a `timeout`.
    pub expires_at: Option<String>,
}
