//! Which failed calls the engine sends again by itself, and when. The SDK's own retries stop
//! when its retry quota (a token bucket) runs dry — in a throttling storm, within seconds — and a
//! step's `retry.attempts` re-runs the whole action, whose every call is throttled again: at 50 %
//! throttling a step of ten calls would almost never get through. So each call is sent again
//! where it failed, with jittered backoff, until the step's deadline:
//!
//! - **throttled** (any operation): AWS refused the request without acting on it, so sending it
//!   again cannot do anything twice;
//! - **transient or timed out** (reads, and changes that set a value): a read, or setting an
//!   attribute, tag or policy to what it already is, can be repeated freely. A change that
//!   *makes* something (a snapshot, a group, an association, a command) may have been made
//!   before the answer was lost — that is for the action to reconcile (it looks for its own work
//!   by tag, token or state before trying again), never for a blind re-send.

use std::time::Duration;

use super::ErrorClass;
use super::backoff::equal_jitter;

/// First wait before sending a throttled call again; doubles up to [`CAP`].
pub const BASE: Duration = Duration::from_millis(250);
pub const CAP: Duration = Duration::from_secs(8);

/// Without a step deadline (the engine's own calls: interlocks, notifications), how long one
/// call keeps being sent again.
pub const BUDGET: Duration = Duration::from_secs(120);

/// Whether a call that failed with `class` is sent again as it is.
pub fn again(operation: &str, class: ErrorClass) -> bool {
    match class {
        ErrorClass::Throttling => true,
        ErrorClass::Transient | ErrorClass::Timeout => {
            is_read(operation) || SETS_A_VALUE.contains(&operation)
        }
        _ => false,
    }
}

/// The wait before re-send number `resend` (1, 2, …).
pub fn delay(resend: u32) -> Duration {
    equal_jitter(resend, BASE, CAP)
}

/// Changes whose repetition leaves the same state as doing them once.
const SETS_A_VALUE: &[&str] = &[
    "ModifyInstanceAttribute",
    "ModifyInstanceMetadataOptions",
    "ModifyNetworkInterfaceAttribute",
    "ModifySnapshotAttribute",
    "CreateTags",
    "DeleteTags",
    "StopInstances",
    "UpdateAccessKey",
    "PutUserPolicy",
    "PutRolePolicy",
    "AttachUserPolicy",
    "AttachRolePolicy",
];

/// Reads change nothing: `Describe*`, `Get*`, `List*`, `Lookup*`, `Search*`.
fn is_read(operation: &str) -> bool {
    ["Describe", "Get", "List", "Lookup", "Search"]
        .iter()
        .any(|prefix| operation.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_calls_are_sent_again_whatever_they_are() {
        for operation in [
            "CreateSnapshots",
            "ModifyNetworkInterfaceAttribute",
            "DescribeInstances",
        ] {
            assert!(again(operation, ErrorClass::Throttling), "{operation}");
        }
    }

    #[test]
    fn a_lost_answer_is_sent_again_only_where_repeating_changes_nothing() {
        assert!(again("DescribeSnapshots", ErrorClass::Transient));
        assert!(again("GetCallerIdentity", ErrorClass::Timeout));
        assert!(!again("CreateSnapshots", ErrorClass::Transient));
        assert!(!again(
            "ReplaceIamInstanceProfileAssociation",
            ErrorClass::Timeout
        ));
        assert!(again("ModifyInstanceAttribute", ErrorClass::Transient));
        assert!(!again("DescribeInstances", ErrorClass::AccessDenied));
    }

    #[test]
    fn the_wait_grows_and_is_capped() {
        assert!(delay(1) <= BASE);
        assert!(delay(30) <= CAP && delay(30) >= CAP / 2);
    }
}
