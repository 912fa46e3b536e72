//! Who answers a `core.approve`: `--yes` (approved by flag), a person (the command line asks on
//! a terminal: an [`Approver`] it provides), nobody (the run parks, `awaiting_approval`, until a
//! person resumes it), or a drill (recorded as a decision point, not asked). An event never
//! decides for a person. The library itself never reads a terminal.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::actions::{ApprovalRequest, Decision};

/// A person who can be asked, provided by the caller (the CLI asks on its terminal).
pub trait Approver: Send + Sync {
    fn ask<'a>(
        &'a self,
        request: &'a ApprovalRequest,
    ) -> Pin<Box<dyn Future<Output = Decision> + Send + 'a>>;
}

#[derive(Clone)]
pub enum Approvals {
    /// `--yes`: approved by flag.
    Yes,
    /// Ask a person.
    Person(Arc<dyn Approver>),
    /// Nobody to ask (no terminal, no `--yes`, or an event): the run parks at the approval.
    Nobody,
    /// A drill: recorded as a decision point, treated as approved so the drill walks on.
    Drill,
}

/// Decides one approval.
pub async fn decide(approvals: &Approvals, request: &ApprovalRequest) -> Decision {
    match approvals {
        Approvals::Yes => Decision {
            approved: true,
            refused: false,
            parked: false,
            by: "flag (--yes)".into(),
        },
        Approvals::Drill => Decision {
            approved: true,
            refused: false,
            parked: false,
            by: "drill (decision point recorded, not asked)".into(),
        },
        Approvals::Nobody => Decision {
            approved: false,
            refused: false,
            parked: true,
            by: "nobody to ask (no terminal, no --yes): waiting for a person".into(),
        },
        Approvals::Person(approver) => approver.ask(request).await,
    }
}
