//! Who is running: the AWS caller identity (sts:GetCallerIdentity), the host and the user.

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

pub fn host() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it.
    let ok = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } == 0;
    if ok {
        let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
        String::from_utf8_lossy(&buffer[..end]).into_owned()
    } else {
        "unknown".into()
    }
}

pub fn user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        // SAFETY: getuid cannot fail.
        .unwrap_or_else(|_| format!("uid {}", unsafe { libc::getuid() }))
}
