//! The project's own client construction reaches the emulator through the real SDK.

use crate::support::moto;

#[tokio::test]
async fn caller_identity_through_firebreak_config() {
    let _moto = moto::exclusive().await;
    let config = moto::sdk_config().await;
    let clients = firebreak::aws::Clients::new(&config);
    let identity = clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity against moto");
    assert_eq!(identity.account(), Some("123456789012"));
    assert!(
        identity
            .arn()
            .is_some_and(|arn| arn.starts_with("arn:aws:"))
    );
}

#[tokio::test]
async fn config_has_explicit_timeouts_and_standard_retries() {
    let config = moto::sdk_config().await;
    let timeouts = config.timeout_config().expect("timeouts are set");
    assert_eq!(
        timeouts.operation_timeout(),
        Some(firebreak::aws::config::OPERATION_TIMEOUT)
    );
    assert_eq!(
        timeouts.operation_attempt_timeout(),
        Some(firebreak::aws::config::ATTEMPT_TIMEOUT)
    );
    let retry = config.retry_config().expect("retries are set");
    assert_eq!(
        retry.max_attempts(),
        firebreak::aws::config::SDK_MAX_ATTEMPTS
    );
}

#[tokio::test]
async fn errors_from_moto_are_classified() {
    let _moto = moto::exclusive().await;
    let config = moto::sdk_config().await;
    let clients = firebreak::aws::Clients::new(&config);
    let error = clients
        .ec2
        .describe_instances()
        .instance_ids("i-0123456789abcdef0")
        .send()
        .await
        .expect_err("unknown instance");
    let error = firebreak::aws::AwsError::from_sdk("ec2", "DescribeInstances", error);
    assert_eq!(error.class, firebreak::aws::ErrorClass::NotFound, "{error}");
    assert_eq!(error.code.as_deref(), Some("InvalidInstanceID.NotFound"));
}
