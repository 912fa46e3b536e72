//! Who is running: the AWS caller identity (sts:GetCallerIdentity). The host and the local user
//! are [`crate::host`]'s.

use std::time::Instant;

use serde_json::{Value, json};

use crate::aws::{AwsError, Clients};

/// The caller identity for the journal's first record. A failure is recorded, not fatal: a
/// runbook of core steps needs no AWS, and an AWS step will fail with its own clear error.
pub async fn caller(clients: &Clients) -> Value {
    let started = Instant::now();
    let result = clients.sts.get_caller_identity().send().await;
    let duration_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(identity) => {
            use aws_types::request_id::RequestId;
            json!({
                "account": identity.account(),
                "arn": identity.arn(),
                "user_id": identity.user_id(),
                "request_id": identity.request_id(),
                "duration_ms": duration_ms,
            })
        }
        Err(error) => {
            let error = AwsError::from_sdk("sts", "GetCallerIdentity", error);
            json!({
                "error": error.to_string(),
                "class": error.class.as_str(),
                "code": error.code,
                "duration_ms": duration_ms,
            })
        }
    }
}
