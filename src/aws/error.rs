//! One classification of AWS errors for the whole program. Retries, dry-run reporting and the
//! journal all read the class; nobody else inspects error codes.

use std::fmt;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::request_id::RequestId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    /// Slow down and try again.
    Throttling,
    /// A server-side or network hiccup; trying again may work.
    Transient,
    /// The call or the attempt ran out of time.
    Timeout,
    /// An EC2 `DryRun=true` call that would have succeeded.
    DryRunWouldSucceed,
    /// Missing permission (or an EC2 dry run that would be denied). Never retried.
    AccessDenied,
    /// The resource does not exist.
    NotFound,
    /// Anything else the caller got wrong; retrying cannot help.
    InvalidRequest,
}

impl ErrorClass {
    /// Whether trying again can help.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::Throttling | ErrorClass::Transient | ErrorClass::Timeout
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Throttling => "throttling",
            ErrorClass::Transient => "transient",
            ErrorClass::Timeout => "timeout",
            ErrorClass::DryRunWouldSucceed => "dry-run-would-succeed",
            ErrorClass::AccessDenied => "access-denied",
            ErrorClass::NotFound => "not-found",
            ErrorClass::InvalidRequest => "invalid-request",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "BandwidthLimitExceeded",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

const TRANSIENT: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServiceError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
    "RequestTimeout",
    "RequestTimeoutException",
    "IDPCommunicationError",
];

const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
    "AuthFailure",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "OptInRequired",
];

const NOT_FOUND: &[&str] = &[
    "NoSuchEntity",
    "NotFound",
    "ResourceNotFoundException",
    "ResourceNotFound",
    "InvalidInstanceId",
    "StackNotFoundException",
    // S3: a bucket without ownership controls.
    "OwnershipControlsNotFoundError",
    // ELBv2: a target group deleted since it was listed.
    "TargetGroupNotFound",
];

/// Classifies by error code and HTTP status; the one table every decision reads.
pub fn classify_code(code: Option<&str>, status: Option<u16>) -> ErrorClass {
    if let Some(code) = code {
        if code == "DryRunOperation" {
            return ErrorClass::DryRunWouldSucceed;
        }
        if THROTTLING.contains(&code) {
            return ErrorClass::Throttling;
        }
        if TRANSIENT.contains(&code) {
            return ErrorClass::Transient;
        }
        if ACCESS_DENIED.contains(&code) {
            return ErrorClass::AccessDenied;
        }
        if NOT_FOUND.contains(&code)
            || code.ends_with(".NotFound")
            || code.ends_with("NotFoundException")
            || code.starts_with("NoSuch")
        {
            return ErrorClass::NotFound;
        }
    }
    match status {
        Some(429) => ErrorClass::Throttling,
        Some(500..=599) => ErrorClass::Transient,
        Some(401 | 403) if code.is_none() => ErrorClass::AccessDenied,
        Some(404) if code.is_none() => ErrorClass::NotFound,
        _ => ErrorClass::InvalidRequest,
    }
}

/// An AWS call that failed, with what the journal and the operator need to know.
#[derive(Debug, thiserror::Error)]
#[error("{service}:{operation} failed ({class}{}): {message}", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    pub class: ErrorClass,
    pub code: Option<String>,
    pub message: String,
    pub request_id: Option<String>,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl AwsError {
    pub fn from_sdk<E>(
        service: &'static str,
        operation: &'static str,
        error: SdkError<E, HttpResponse>,
    ) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let (class, status) = match &error {
            SdkError::ConstructionFailure(_) => (ErrorClass::InvalidRequest, None),
            SdkError::TimeoutError(_) => (ErrorClass::Timeout, None),
            SdkError::DispatchFailure(failure) if failure.is_timeout() => {
                (ErrorClass::Timeout, None)
            }
            SdkError::DispatchFailure(failure) if failure.is_user() => {
                (ErrorClass::InvalidRequest, None)
            }
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
                (ErrorClass::Transient, None)
            }
            SdkError::ServiceError(context) => {
                let status = context.raw().status().as_u16();
                (classify_code(error.code(), Some(status)), Some(status))
            }
            _ => (ErrorClass::Transient, None),
        };
        let code = error.code().map(str::to_owned);
        let message = error
            .message()
            .map(str::to_owned)
            .unwrap_or_else(|| describe_chain(&error, status));
        // CloudFormation answers a missing stack with a generic ValidationError whose message
        // alone says what is wrong ("Stack with id X does not exist").
        let class = if service == "cloudformation"
            && code.as_deref() == Some("ValidationError")
            && message.ends_with("does not exist")
        {
            ErrorClass::NotFound
        } else {
            class
        };
        AwsError {
            service,
            operation,
            class,
            code,
            message,
            request_id: error.request_id().map(str::to_owned),
            source: Some(Box::new(error)),
        }
    }
}

/// The innermost useful text of an error without a service message (connection refused…).
fn describe_chain(error: &dyn std::error::Error, status: Option<u16>) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = inner.source();
    }
    let mut text = parts.join(": ");
    if let Some(status) = status {
        text = format!("HTTP {status}: {text}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let cases: &[(Option<&str>, Option<u16>, ErrorClass)] = &[
            (
                Some("DryRunOperation"),
                Some(412),
                ErrorClass::DryRunWouldSucceed,
            ),
            (
                Some("UnauthorizedOperation"),
                Some(403),
                ErrorClass::AccessDenied,
            ),
            (Some("AccessDenied"), Some(403), ErrorClass::AccessDenied),
            (
                Some("AccessDeniedException"),
                Some(400),
                ErrorClass::AccessDenied,
            ),
            (Some("Throttling"), Some(400), ErrorClass::Throttling),
            (
                Some("RequestLimitExceeded"),
                Some(503),
                ErrorClass::Throttling,
            ),
            (
                Some("ThrottlingException"),
                Some(400),
                ErrorClass::Throttling,
            ),
            (Some("InternalError"), Some(500), ErrorClass::Transient),
            (Some("ServiceUnavailable"), Some(503), ErrorClass::Transient),
            (
                Some("InvalidInstanceID.NotFound"),
                Some(400),
                ErrorClass::NotFound,
            ),
            (
                Some("InvalidGroup.NotFound"),
                Some(400),
                ErrorClass::NotFound,
            ),
            (Some("NoSuchEntity"), Some(404), ErrorClass::NotFound),
            (
                Some("ResourceNotFoundException"),
                Some(400),
                ErrorClass::NotFound,
            ),
            (
                Some("InvalidParameterValue"),
                Some(400),
                ErrorClass::InvalidRequest,
            ),
            (
                Some("ValidationError"),
                Some(400),
                ErrorClass::InvalidRequest,
            ),
            (None, Some(429), ErrorClass::Throttling),
            (None, Some(502), ErrorClass::Transient),
            (None, Some(403), ErrorClass::AccessDenied),
            (None, Some(404), ErrorClass::NotFound),
            (None, None, ErrorClass::InvalidRequest),
        ];
        for (code, status, expected) in cases {
            assert_eq!(
                classify_code(*code, *status),
                *expected,
                "{code:?} {status:?}"
            );
        }
    }

    #[test]
    fn only_throttling_transient_and_timeouts_retry() {
        use ErrorClass::*;
        for class in [Throttling, Transient, Timeout] {
            assert!(class.is_retryable());
        }
        for class in [DryRunWouldSucceed, AccessDenied, NotFound, InvalidRequest] {
            assert!(!class.is_retryable());
        }
    }
}
