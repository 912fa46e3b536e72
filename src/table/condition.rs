//! Telling a refused conditional write from a failed one: every write to the table is
//! conditional (a seq not taken, a lease still ours, a lock as it was read), and a refusal is
//! an answer, not an error.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// Whether DynamoDB refused the write only because its condition did not hold.
pub fn condition_failed<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}
