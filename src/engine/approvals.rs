//! Who answers a `core.approve`: `--yes` (approved by flag), a person (the command line asks on
//! a terminal: an [`Approver`] it provides), nobody (denied: the run is refused), or a drill
//! (recorded as a decision point, not asked). The library itself never reads a terminal.

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
    /// Nobody to ask: denied, and the run is refused.
    Deny,
    /// A drill: recorded as a decision point, treated as approved so the drill walks on.
    Drill,
}

/// Decides one approval.
pub async fn decide(approvals: &Approvals, request: &ApprovalRequest) -> Decision {
    match approvals {
        Approvals::Yes => Decision {
            approved: true,
            refused: false,
            by: "flag (--yes)".into(),
        },
        Approvals::Drill => Decision {
            approved: true,
            refused: false,
            by: "drill (decision point recorded, not asked)".into(),
        },
        Approvals::Deny => Decision {
            approved: false,
            refused: true,
            by: "no terminal and no --yes".into(),
        },
        Approvals::Person(approver) => approver.ask(request).await,
    }
}
