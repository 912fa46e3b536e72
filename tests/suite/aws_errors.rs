//! Error classification on real SDK error values, produced by aws-smithy-mocks rules (moto
//! cannot throttle or deny on demand).

use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
use aws_smithy_mocks::{MockResponseInterceptor, create_mock_http_client, mock};
use aws_smithy_types::error::ErrorMetadata;
use firebreak::aws::{AwsError, ErrorClass};

fn sts_with(rule: aws_smithy_mocks::Rule) -> aws_sdk_sts::Client {
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            "a", "b", None, None, "test",
        ))
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .http_client(create_mock_http_client())
        .interceptor(MockResponseInterceptor::new().with_rule(&rule))
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

async fn class_of(code: &'static str) -> AwsError {
    let rule = mock!(aws_sdk_sts::Client::get_caller_identity).then_error(move || {
        GetCallerIdentityError::generic(ErrorMetadata::builder().code(code).message("nope").build())
    });
    let error = sts_with(rule)
        .get_caller_identity()
        .send()
        .await
        .expect_err("mocked error");
    AwsError::from_sdk("sts", "GetCallerIdentity", error)
}

#[tokio::test]
async fn service_errors_are_classified_by_code() {
    for (code, class) in [
        ("Throttling", ErrorClass::Throttling),
        ("AccessDenied", ErrorClass::AccessDenied),
        ("InternalFailure", ErrorClass::Transient),
        ("ValidationError", ErrorClass::InvalidRequest),
    ] {
        let error = class_of(code).await;
        assert_eq!(error.class, class, "{code}: {error}");
        assert_eq!(error.code.as_deref(), Some(code));
        assert_eq!(error.message, "nope");
        assert!(
            std::error::Error::source(&error).is_some(),
            "the SDK error is kept as source"
        );
    }
}

#[tokio::test]
async fn connection_failures_are_transient() {
    // Nothing listens on port 9 of loopback: the dispatch fails before any response.
    let config = firebreak::aws::load_sdk_config(&firebreak::aws::AwsOptions {
        profile: None,
        region: Some("us-east-1".into()),
        endpoint_url: Some("http://127.0.0.1:9".into()),
    })
    .await
    .into_builder()
    .credentials_provider(
        aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_sdk_sts::config::Credentials::new("a", "b", None, None, "test"),
        ),
    )
    .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
    .build();
    let error = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .expect_err("nothing listens");
    let error = AwsError::from_sdk("sts", "GetCallerIdentity", error);
    assert!(error.class.is_retryable(), "{error}");
    assert!(
        error.message.contains("connect") || error.message.contains("dispatch"),
        "{}",
        error.message
    );
}
