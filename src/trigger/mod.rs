//! Event-driven containment: EventBridge patterns in runbooks, matched locally exactly as the
//! deployed rule would match them.

pub mod dedupe;
pub mod dispatch;
pub mod pattern;

pub use pattern::matches;
