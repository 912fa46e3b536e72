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
    /// Denied for lack of anyone to ask: the run is refused.
    pub refused: bool,
    /// Who or what decided: `flag (--yes)`, `operator`, `no terminal and no --yes`, `drill`.
    pub by: String,
}
