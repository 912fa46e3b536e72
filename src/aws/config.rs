//! SDK configuration from the standard chain (environment, profiles, SSO, IMDS/ECS), with the
//! command line's `--profile`, `--region` and `--endpoint-url` on top, standard retries and
//! explicit timeouts (the SDK sets none by default, so a black-holed endpoint would hang a
//! containment step forever).

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

use super::fence::{Fence, FenceInterceptor};

/// Attempts per API call made by the SDK itself (standard mode: exponential backoff with
/// jitter, throttling and transient errors only). Step-level `retry` comes on top.
pub const SDK_MAX_ATTEMPTS: u32 = 3;
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One HTTP attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// One API call including the SDK's retries.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(90);

/// The command line's say in the configuration; unset fields fall back to the standard chain.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub profile: Option<String>,
    pub region: Option<String>,
    /// Also read from `AWS_ENDPOINT_URL` by the SDK itself when not given.
    pub endpoint_url: Option<String>,
}

pub async fn load_sdk_config(options: &AwsOptions) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(SDK_MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        );
    if let Some(profile) = &options.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &options.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// One client per service, shared by every step of a run (clients are cheap to clone and
/// pool their connections).
#[derive(Clone, Debug)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub iam: aws_sdk_iam::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub sts: aws_sdk_sts::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub sns: aws_sdk_sns::Client,
    pub securityhub: aws_sdk_securityhub::Client,
    pub guardduty: aws_sdk_guardduty::Client,
    pub s3: aws_sdk_s3::Client,
    /// Signing sealed journal heads (`--sign-key`).
    pub kms: aws_sdk_kms::Client,
    /// Shared state of workers (`--journal dynamodb://TABLE`).
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub ssoadmin: aws_sdk_ssoadmin::Client,
    pub identitystore: aws_sdk_identitystore::Client,
    pub cloudtrail: aws_sdk_cloudtrail::Client,
}

impl Clients {
    /// The region the clients call (the EC2 client's, as every client shares one config).
    pub fn region(&self) -> Option<String> {
        self.ec2.config().region().map(|r| r.to_string())
    }

    /// The same clients calling `region` instead: a finding is contained where it is.
    pub fn in_region(&self, region: &str) -> Clients {
        let region = Region::new(region.to_owned());
        macro_rules! moved {
            ($client:expr, $krate:ident) => {
                $krate::Client::from_conf(
                    $client.config().to_builder().region(region.clone()).build(),
                )
            };
        }
        Clients {
            ec2: moved!(self.ec2, aws_sdk_ec2),
            iam: moved!(self.iam, aws_sdk_iam),
            ssm: moved!(self.ssm, aws_sdk_ssm),
            cloudformation: moved!(self.cloudformation, aws_sdk_cloudformation),
            sts: moved!(self.sts, aws_sdk_sts),
            autoscaling: moved!(self.autoscaling, aws_sdk_autoscaling),
            sns: moved!(self.sns, aws_sdk_sns),
            securityhub: moved!(self.securityhub, aws_sdk_securityhub),
            guardduty: moved!(self.guardduty, aws_sdk_guardduty),
            s3: moved!(self.s3, aws_sdk_s3),
            kms: moved!(self.kms, aws_sdk_kms),
            lambda: moved!(self.lambda, aws_sdk_lambda),
            elbv2: moved!(self.elbv2, aws_sdk_elasticloadbalancingv2),
            ssoadmin: moved!(self.ssoadmin, aws_sdk_ssoadmin),
            identitystore: moved!(self.identitystore, aws_sdk_identitystore),
            cloudtrail: moved!(self.cloudtrail, aws_sdk_cloudtrail),
            // Firebreak's own state stays where firebreak runs, whatever region it acts in.
            dynamodb: self.dynamodb.clone(),
        }
    }

    /// The same clients signing with other credentials (an assumed role's).
    pub fn with_credentials(&self, credentials: SharedCredentialsProvider) -> Clients {
        macro_rules! signed {
            ($client:expr, $krate:ident) => {
                $krate::Client::from_conf(
                    $client
                        .config()
                        .to_builder()
                        .credentials_provider(credentials.clone())
                        .build(),
                )
            };
        }
        Clients {
            ec2: signed!(self.ec2, aws_sdk_ec2),
            iam: signed!(self.iam, aws_sdk_iam),
            ssm: signed!(self.ssm, aws_sdk_ssm),
            cloudformation: signed!(self.cloudformation, aws_sdk_cloudformation),
            sts: signed!(self.sts, aws_sdk_sts),
            autoscaling: signed!(self.autoscaling, aws_sdk_autoscaling),
            sns: signed!(self.sns, aws_sdk_sns),
            securityhub: signed!(self.securityhub, aws_sdk_securityhub),
            guardduty: signed!(self.guardduty, aws_sdk_guardduty),
            s3: signed!(self.s3, aws_sdk_s3),
            kms: signed!(self.kms, aws_sdk_kms),
            lambda: signed!(self.lambda, aws_sdk_lambda),
            elbv2: signed!(self.elbv2, aws_sdk_elasticloadbalancingv2),
            ssoadmin: signed!(self.ssoadmin, aws_sdk_ssoadmin),
            identitystore: signed!(self.identitystore, aws_sdk_identitystore),
            cloudtrail: signed!(self.cloudtrail, aws_sdk_cloudtrail),
            // Firebreak's own state, never the assumed role's account.
            dynamodb: self.dynamodb.clone(),
        }
    }

    /// The same clients, each attempt first checking `fence` (a worker's lease on its run).
    /// The table's own client is left alone: the lease's renewals and the journal's
    /// conditional appends are how the fence learns, and they refuse a stale writer themselves.
    pub fn fenced(&self, fence: &Fence) -> Clients {
        macro_rules! fenced {
            ($client:expr, $krate:ident) => {
                $krate::Client::from_conf(
                    $client
                        .config()
                        .to_builder()
                        .interceptor(FenceInterceptor(fence.clone()))
                        .build(),
                )
            };
        }
        Clients {
            ec2: fenced!(self.ec2, aws_sdk_ec2),
            iam: fenced!(self.iam, aws_sdk_iam),
            ssm: fenced!(self.ssm, aws_sdk_ssm),
            cloudformation: fenced!(self.cloudformation, aws_sdk_cloudformation),
            sts: fenced!(self.sts, aws_sdk_sts),
            autoscaling: fenced!(self.autoscaling, aws_sdk_autoscaling),
            sns: fenced!(self.sns, aws_sdk_sns),
            securityhub: fenced!(self.securityhub, aws_sdk_securityhub),
            guardduty: fenced!(self.guardduty, aws_sdk_guardduty),
            s3: fenced!(self.s3, aws_sdk_s3),
            kms: fenced!(self.kms, aws_sdk_kms),
            lambda: fenced!(self.lambda, aws_sdk_lambda),
            elbv2: fenced!(self.elbv2, aws_sdk_elasticloadbalancingv2),
            ssoadmin: fenced!(self.ssoadmin, aws_sdk_ssoadmin),
            identitystore: fenced!(self.identitystore, aws_sdk_identitystore),
            cloudtrail: fenced!(self.cloudtrail, aws_sdk_cloudtrail),
            dynamodb: self.dynamodb.clone(),
        }
    }

    pub fn new(config: &SdkConfig) -> Clients {
        let partition = unmetered_retries();
        macro_rules! client {
            ($krate:ident) => {
                $krate::Client::from_conf(
                    $krate::config::Builder::from(config)
                        .retry_partition(partition.clone())
                        .build(),
                )
            };
        }
        Clients {
            ec2: client!(aws_sdk_ec2),
            iam: client!(aws_sdk_iam),
            ssm: client!(aws_sdk_ssm),
            cloudformation: client!(aws_sdk_cloudformation),
            sts: client!(aws_sdk_sts),
            autoscaling: client!(aws_sdk_autoscaling),
            sns: client!(aws_sdk_sns),
            securityhub: client!(aws_sdk_securityhub),
            guardduty: client!(aws_sdk_guardduty),
            kms: client!(aws_sdk_kms),
            dynamodb: client!(aws_sdk_dynamodb),
            lambda: client!(aws_sdk_lambda),
            elbv2: client!(aws_sdk_elasticloadbalancingv2),
            ssoadmin: client!(aws_sdk_ssoadmin),
            identitystore: client!(aws_sdk_identitystore),
            cloudtrail: client!(aws_sdk_cloudtrail),
            s3: s3_client(config, partition),
        }
    }
}

/// The SDK's retry quota (a token bucket shared by every call) empties within seconds of a
/// throttling storm, and from then on the SDK stops retrying anything — a 500 on an isolation
/// move included. Containment must outlast the storm, so firebreak's clients retry without that
/// quota: each call still makes at most [`SDK_MAX_ATTEMPTS`] with the SDK's backoff, and the
/// engine's own re-sends (`aws::resend`: throttled calls, lost reads) back off with a cap too;
/// load stays bounded by the runbook's concurrency.
fn unmetered_retries() -> aws_sdk_ec2::config::retry::RetryPartition {
    use aws_sdk_ec2::config::retry::{RetryPartition, TokenBucket};
    RetryPartition::custom("firebreak")
        .token_bucket(TokenBucket::unlimited())
        .build()
}

/// S3 through the same configuration; path-style addressing when the endpoint is overridden
/// (an emulator or a VPC endpoint URL has no per-bucket host names).
fn s3_client(
    config: &SdkConfig,
    partition: aws_sdk_ec2::config::retry::RetryPartition,
) -> aws_sdk_s3::Client {
    let builder = aws_sdk_s3::config::Builder::from(config).retry_partition(partition);
    let builder = if config.endpoint_url().is_some() {
        builder.force_path_style(true)
    } else {
        builder
    };
    aws_sdk_s3::Client::from_conf(builder.build())
}
