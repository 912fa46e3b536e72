//! Clients whose answers come from aws-smithy-mocks rules, for what moto cannot do on demand
//! (throttling, denied calls, a failure on the second of two interfaces).

use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client};
use firebreak::aws::Clients;

fn credentials() -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new("mock", "mock", None, None, "mock")
}

/// An EC2 client answering from `rules` (matched in any order), without SDK retries so the
/// engine's own retries are what the test sees.
pub fn ec2(rules: &[&Rule]) -> aws_sdk_ec2::Client {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    // The interlocks' protected-tag check (DescribeTags): no tags unless a test says otherwise.
    interceptor = interceptor.with_rule(&no_tags());
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
        .region(aws_sdk_ec2::config::Region::new("us-east-1"))
        .credentials_provider(credentials())
        .retry_config(aws_sdk_ec2::config::retry::RetryConfig::disabled())
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    aws_sdk_ec2::Client::from_conf(config)
}

/// A full client set: the given EC2 client, and every other service pointed at a closed
/// loopback port (any call fails at once, and is classified as a connection failure).
pub async fn clients(ec2: aws_sdk_ec2::Client) -> Clients {
    let config = firebreak::aws::load_sdk_config(&firebreak::aws::AwsOptions {
        profile: None,
        region: Some("us-east-1".into()),
        endpoint_url: Some("http://127.0.0.1:9".into()),
    })
    .await
    .into_builder()
    .credentials_provider(
        aws_credential_types::provider::SharedCredentialsProvider::new(credentials()),
    )
    .retry_config(aws_config::retry::RetryConfig::disabled())
    .build();
    let mut clients = Clients::new(&config);
    clients.ec2 = ec2;
    clients
}

/// DescribeTags answering "no tags", matched after the test's own rules.
fn no_tags() -> aws_smithy_mocks::Rule {
    aws_smithy_mocks::mock!(aws_sdk_ec2::Client::describe_tags).then_output(|| {
        aws_sdk_ec2::operation::describe_tags::DescribeTagsOutput::builder().build()
    })
}
