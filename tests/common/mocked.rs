//! Running a runbook in-process against a mocked EC2 (aws-smithy-mocks rules), for what moto
//! cannot do: snapshots that take time, errors on demand, counting and inspecting requests.

use std::path::Path;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client};
use firebreak::engine::{Approvals, Mode, RunOutcome, Settings};
use serde_json::Value;

/// Clients whose EC2 answers from `rules` (any matching rule, in order), with the SDK's standard
/// retries; every other service gets an HTTP 418 from the mock client, so an unexpected call
/// fails loudly.
pub fn clients(rules: &[&Rule]) -> firebreak::aws::Clients {
    let config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "a", "b", None, None, "mock",
        )))
        .http_client(create_mock_http_client())
        // As in production (aws::load_sdk_config): the SDK's own retries are part of what is
        // tested, e.g. that CreateSnapshot is not retried blindly.
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(firebreak::aws::config::SDK_MAX_ATTEMPTS),
        )
        .build();
    // Earlier runs' snapshots for the case (`ec2.snapshot_volumes` looks before creating):
    // none, answered before the test's own DescribeSnapshots rules see the request.
    let mut interceptor = MockResponseInterceptor::new()
        .rule_mode(RuleMode::MatchAny)
        .with_rule(&no_case_snapshots());
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    // The interlocks' protected-tag check (DescribeTags): no tags unless a test says otherwise.
    interceptor = interceptor.with_rule(&no_tags());
    let mut clients = firebreak::aws::Clients::new(&config);
    clients.ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&config)
            .interceptor(interceptor)
            .build(),
    );
    clients
}

/// Runs `runbook` (a path under the repository) with `params`, journaling into `dir`.
pub async fn run(
    runbook: &str,
    params: &[(&str, &str)],
    mode: Mode,
    dir: &Path,
    rules: &[&Rule],
) -> RunOutcome {
    let loaded = firebreak::runbook::load(&super::repo(runbook))
        .unwrap_or_else(|e| panic!("{runbook} loads: {e}"));
    let settings = Settings {
        approvals: Approvals::from_flags(true),
        clients: Some(clients(rules)),
        ..Settings::new(dir.to_owned())
    };
    let given: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    firebreak::engine::start(loaded, &given, None, mode, &settings)
        .await
        .unwrap_or_else(|e| panic!("{runbook} starts: {e}"))
}

/// The journal's records.
pub fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// DescribeTags answering "no tags", matched after the test's own rules.
fn no_tags() -> aws_smithy_mocks::Rule {
    aws_smithy_mocks::mock!(aws_sdk_ec2::Client::describe_tags).then_output(|| {
        aws_sdk_ec2::operation::describe_tags::DescribeTagsOutput::builder().build()
    })
}

fn no_case_snapshots() -> aws_smithy_mocks::Rule {
    aws_smithy_mocks::mock!(aws_sdk_ec2::Client::describe_snapshots)
        .match_requests(|r| {
            r.filters()
                .iter()
                .any(|f| f.name() == Some("tag:firebreak:case"))
        })
        .then_output(|| {
            aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput::builder().build()
        })
}
