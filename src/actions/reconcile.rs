//! Changes that must not be sent twice blindly. A change that *makes* something without a
//! client token (a snapshot copy, a security group, a profile association, a command), or
//! whose second send fails once the first has worked (disassociating an address, detaching
//! from an Auto Scaling group, deleting a login profile), may have been done by a request
//! whose answer was lost: a 500 or a dropped connection after AWS acted. The SDK would send
//! it again inside one `send()`, so such calls go out with the SDK's retries off (see
//! [`no_sdk_retries`]) and come here: after a failure that may be such a loss, the action
//! first looks at AWS for its own work (by tag, token, name or the state read back) and only
//! sends again when it is not there.

use std::future::Future;

use aws_smithy_types::retry::RetryConfig;

use super::ActionError;

/// Sends of one change before its failure is the step's (whose `retry` may run it again).
pub const ATTEMPTS: u32 = 3;

/// `change()` until it succeeds; after a failure that may have lost its answer, `done()`
/// says whether the change happened after all (and what it made), and what it found is
/// returned instead of sending again. A failure that cannot be a lost answer (denied,
/// invalid) is returned at once.
pub async fn until_done<R, C, CF, D, DF>(mut change: C, mut done: D) -> Result<R, ActionError>
where
    C: FnMut() -> CF,
    CF: Future<Output = Result<R, ActionError>>,
    D: FnMut() -> DF,
    DF: Future<Output = Result<Option<R>, ActionError>>,
{
    let mut attempt = 1;
    loop {
        match change().await {
            Ok(made) => return Ok(made),
            Err(error) if error.is_retryable() && attempt < ATTEMPTS => {
                tokio::time::sleep(super::ec2::poll_delay(attempt - 1)).await;
                attempt += 1;
                if let Some(found) = done().await? {
                    return Ok(found);
                }
            }
            Err(error) => return Err(error),
        }
    }
}

/// The retry configuration for a call that [`until_done`] sends: none of the SDK's own.
pub fn no_sdk_retries() -> RetryConfig {
    RetryConfig::disabled()
}

/// Per-call overrides (`.customize().config_override(…)`) for each service's clients.
pub fn ec2_once() -> aws_sdk_ec2::config::Builder {
    aws_sdk_ec2::config::Builder::default().retry_config(no_sdk_retries())
}

pub fn iam_once() -> aws_sdk_iam::config::Builder {
    aws_sdk_iam::config::Builder::default().retry_config(no_sdk_retries())
}

pub fn ssm_once() -> aws_sdk_ssm::config::Builder {
    aws_sdk_ssm::config::Builder::default().retry_config(no_sdk_retries())
}

pub fn autoscaling_once() -> aws_sdk_autoscaling::config::Builder {
    aws_sdk_autoscaling::config::Builder::default().retry_config(no_sdk_retries())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::aws::{AwsError, ErrorClass};

    fn lost() -> ActionError {
        ActionError::Aws(Box::new(AwsError {
            service: "ec2",
            operation: "CreateThing",
            class: ErrorClass::Transient,
            code: None,
            message: "answered 500".into(),
            request_id: None,
            source: None,
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_is_looked_for_before_sending_again() {
        let sent = AtomicU32::new(0);
        let made = until_done(
            || async {
                sent.fetch_add(1, Ordering::SeqCst);
                Err::<&str, _>(lost())
            },
            || async { Ok(Some("found")) },
        )
        .await
        .unwrap();
        assert_eq!(made, "found");
        assert_eq!(sent.load(Ordering::SeqCst), 1, "not sent again");
    }

    #[tokio::test(start_paused = true)]
    async fn sent_again_while_not_found_then_the_failure_is_the_steps() {
        let sent = AtomicU32::new(0);
        let looked = AtomicU32::new(0);
        let result = until_done(
            || async {
                sent.fetch_add(1, Ordering::SeqCst);
                Err::<&str, _>(lost())
            },
            || async {
                looked.fetch_add(1, Ordering::SeqCst);
                Ok(None)
            },
        )
        .await;
        assert!(result.unwrap_err().is_retryable());
        assert_eq!(sent.load(Ordering::SeqCst), ATTEMPTS);
        assert_eq!(looked.load(Ordering::SeqCst), ATTEMPTS - 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_denial_is_not_looked_into() {
        let result = until_done(
            || async { Err::<&str, _>(ActionError::Failed("denied".into())) },
            || async { panic!("not asked") },
        )
        .await;
        assert!(!result.unwrap_err().is_retryable());
    }
}
