//! Who answers a `core.approve`: a decision record already in the journal (`firebreak approve`
//! or `deny`), the deadline (an expired approval is denied), `--yes` (approved by flag), a person
//! (the command line asks on a terminal: an [`Approver`] it provides), nobody (the run parks,
//! `awaiting_approval`, until a person decides), or a drill (recorded as a decision point, not
//! asked). An event never decides for a person, and a step's `approvers` bind every way a person
//! decides. The library itself never reads a terminal.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::decisions::{self, Ledger};
use crate::actions::{ApprovalRequest, Decision};
use crate::journal::event::{Decider, DecisionRecord, Verdict};

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

/// Decides one approval. Returns the decision and, when the deadline decided, the decision
/// record to journal before it.
pub async fn decide(
    approvals: &Approvals,
    request: &ApprovalRequest,
    ledger: &Ledger,
    decider: &Decider,
) -> (Decision, Option<DecisionRecord>) {
    let decided = |approved: bool, by: String| Decision {
        approved,
        refused: false,
        parked: false,
        by,
        expires_at: None,
    };
    if let Approvals::Drill = approvals {
        let by = "drill (decision point recorded, not asked)".to_owned();
        return (decided(true, by), None);
    }
    if let Some(record) = ledger.decisions.get(&request.step_id) {
        let approved = record.verdict == Verdict::Approve;
        return (decided(approved, record.describe()), None);
    }
    // The deadline of an earlier park: once passed, the decision is deny, whoever asks.
    let earlier = ledger.expiries.get(&request.step_id);
    if let Some(deadline) = earlier.filter(|d| decisions::has_passed(d)) {
        let record = decisions::expired(&request.step_id, deadline, decider.clone());
        return (decided(false, record.describe()), Some(record));
    }
    let expires_at = earlier
        .cloned()
        .or_else(|| request.timeout.map(decisions::deadline));
    let park = |by: String| Decision {
        approved: false,
        refused: false,
        parked: true,
        by,
        expires_at: expires_at.clone(),
    };
    let person = matches!(approvals, Approvals::Yes | Approvals::Person(_));
    if person && !decisions::may_decide(&request.approvers, decider.arn.as_deref()) {
        let who = decider.arn.as_deref().unwrap_or("an unknown AWS identity");
        return (
            park(format!(
                "{who} is not among the step's approvers ({}): waiting for one of them",
                request.approvers.join(", ")
            )),
            None,
        );
    }
    let decision = match approvals {
        Approvals::Yes => decided(true, "flag (--yes)".into()),
        Approvals::Person(approver) => approver.ask(request).await,
        Approvals::Nobody | Approvals::Drill => {
            park("nobody to ask (no terminal, no --yes): waiting for a person".into())
        }
    };
    (decision, None)
}
