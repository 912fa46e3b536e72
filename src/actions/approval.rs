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
}

/// The outcome of one approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub approved: bool,
    /// Denied without anyone asked (kept for journals of earlier engines; never set now).
    pub refused: bool,
    /// Nobody could be asked: the run parks at this step until a person resumes it.
    pub parked: bool,
    /// Who or what decided: `flag (--yes)`, `operator`, `drill`, or why nobody could.
    pub by: String,
}
