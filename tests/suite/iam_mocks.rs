//! IAM actions with mocked answers, for what moto cannot be made to do: a key that still reads
//! Active after UpdateAccessKey, and a throttled change retried by the step.

use std::path::Path;

use aws_sdk_iam::operation::list_access_keys::ListAccessKeysOutput;
use aws_sdk_iam::operation::update_access_key::{UpdateAccessKeyError, UpdateAccessKeyOutput};
use aws_sdk_iam::types::{AccessKeyMetadata, StatusType};
use aws_smithy_mocks::{Rule, mock};
use aws_smithy_types::error::ErrorMetadata;
use firebreak::engine::{RunOutcome, RunStatus};
use serde_json::Value;

use crate::support::aws::MockAws;
use crate::support::run::Run;

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const OTHER: &str = "AKIAI44QH8DHBEXAMPLE";

const DISABLE: &str = r#"
version: 1
name: disable-key
steps:
  - id: disable
    action: iam.disable_access_key
    retry: { attempts: 3 }
    with: { access_key_id: "AKIAIOSFODNN7EXAMPLE", user_name: alice }
"#;

/// Runs the `disable` runbook on IAM mocked by `rules` (no SDK retries: the step's own).
async fn disable(dir: &Path, rules: &[&Rule]) -> RunOutcome {
    let aws = MockAws::new()
        .iam(rules.iter().map(|r| (*r).clone()))
        .build();
    Run::yaml(dir, DISABLE)
        .clients(aws.clients.clone())
        .start(dir)
        .await
        .run
}

fn keys(first: StatusType) -> ListAccessKeysOutput {
    let key = |id: &str, status: StatusType| {
        AccessKeyMetadata::builder()
            .user_name("alice")
            .access_key_id(id)
            .status(status)
            .build()
    };
    ListAccessKeysOutput::builder()
        .access_key_metadata(key(KEY, first))
        .access_key_metadata(key(OTHER, StatusType::Active))
        .is_truncated(false)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_key_that_still_reads_active_after_the_update_fails_the_step_with_what_was_done() {
    let dir = tempfile::tempdir().unwrap();
    let list =
        mock!(aws_sdk_iam::Client::list_access_keys).then_output(|| keys(StatusType::Active));
    let update = mock!(aws_sdk_iam::Client::update_access_key)
        .match_requests(|input| {
            input.access_key_id() == Some(KEY) && input.status() == Some(&StatusType::Inactive)
        })
        .then_output(|| UpdateAccessKeyOutput::builder().build());
    let outcome = disable(dir.path(), &[&list, &update]).await;
    assert_eq!(outcome.status, RunStatus::Failed);
    // Sent once: a partial failure is not retried.
    assert_eq!(update.num_calls(), 1);
    assert_eq!(list.num_calls(), 2);
    let records = crate::support::journal::values(&outcome.journal);
    let failed = records.iter().find(|r| r["type"] == "step_failed").unwrap();
    let message = failed["message"].as_str().unwrap();
    assert!(
        message.contains("still reads `Active` after UpdateAccessKey"),
        "{message}"
    );
    let outputs = &failed["outputs"];
    assert_eq!(outputs["previous_status"], "Active");
    assert_eq!(outputs["status"], "Active");
    assert_eq!(outputs["changed"], true);
    assert_eq!(outputs["other_keys_untouched"][0]["access_key_id"], OTHER);
}

#[tokio::test]
async fn a_throttled_update_is_sent_again_and_then_verified() {
    let dir = tempfile::tempdir().unwrap();
    let list = mock!(aws_sdk_iam::Client::list_access_keys)
        .sequence()
        .output(|| keys(StatusType::Active))
        .output(|| keys(StatusType::Inactive))
        .build();
    let update = mock!(aws_sdk_iam::Client::update_access_key)
        .sequence()
        .error(|| {
            UpdateAccessKeyError::generic(
                ErrorMetadata::builder()
                    .code("Throttling")
                    .message("Rate exceeded")
                    .build(),
            )
        })
        .output(|| UpdateAccessKeyOutput::builder().build())
        .build();
    let outcome = disable(dir.path(), &[&list, &update]).await;
    assert_eq!(outcome.status, RunStatus::Succeeded);
    assert_eq!(update.num_calls(), 2);
    let records = crate::support::journal::values(&outcome.journal);
    // The throttled call is sent again where it failed, not the whole step.
    assert!(!records.iter().any(|r| r["type"] == "step_retry"));
    let updates: Vec<(&Value, &Value)> = records
        .iter()
        .filter(|r| r["type"] == "api_call" && r["operation"] == "UpdateAccessKey")
        .map(|r| (&r["class"], &r["resend"]))
        .collect();
    assert_eq!(
        updates,
        [
            (&Value::from("throttling"), &Value::Null),
            (&Value::Null, &Value::from(1))
        ]
    );
    let done = records
        .iter()
        .find(|r| r["type"] == "step_succeeded")
        .unwrap();
    assert_eq!(done["outputs"]["status"], "Inactive");
    assert_eq!(done["outputs"]["changed"], true);
}
