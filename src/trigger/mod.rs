//! Event-driven containment: EventBridge patterns in runbooks, matched locally exactly as the
//! deployed rule would match them.

pub mod case_index;
pub mod case_summary;
mod cases;
pub mod dedupe;
pub mod dispatch;
mod outcome;
pub mod pattern;

pub use pattern::matches;
