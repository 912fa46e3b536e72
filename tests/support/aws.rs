//! The AWS fake for what moto cannot do on demand (throttling, denied calls, long waits, APIs
//! moto answers with 500): every client of [`firebreak::aws::Clients`] from one `SdkConfig`,
//! answering from aws-smithy-mocks rules (`mock!(Client::op)…`, matched in any order).
//!
//! - SDK retries are off unless a test opts in with [`MockAws::sdk_retries`] (production's
//!   standard retries), so a test sees exactly the engine's own retries.
//! - Default rules answer what every run asks: the caller identity, the interlocks' tag reads
//!   (no tags), earlier snapshots of a case (none). A test's own rules are matched before them,
//!   except the case-snapshot lookup, which is answered first.
//! - Every call is recorded (`service:Operation`); one that no rule expects gets HTTP 418 and is
//!   recorded as unexpected, and [`Mocked`] fails the test at teardown naming it — even when it
//!   happened inside a spawned fan-out task.

use std::sync::{Arc, Condvar, Mutex};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use firebreak::aws::Clients;

/// What a test's mocked clients saw.
#[derive(Debug, Default)]
pub struct Recorder {
    calls: Mutex<Vec<String>>,
    unexpected: Mutex<Vec<String>>,
}

/// Mocked clients and what they saw. Dropping it fails the test if any call was unexpected.
pub struct Mocked {
    pub clients: Clients,
    recorder: Arc<Recorder>,
}

impl Mocked {
    /// Every call made, `service:Operation`, in order.
    pub fn calls(&self) -> Vec<String> {
        self.recorder.calls.lock().unwrap().clone()
    }

    /// Calls no rule answered.
    pub fn unexpected(&self) -> Vec<String> {
        self.recorder.unexpected.lock().unwrap().clone()
    }
}

impl Drop for Mocked {
    fn drop(&mut self) {
        let unexpected = self.unexpected();
        if !unexpected.is_empty() && !std::thread::panicking() {
            panic!("AWS calls no mock rule expected: {unexpected:?}");
        }
    }
}

macro_rules! services {
    ($($service:ident => $krate:ident, $label:literal;)*) => {
        /// Rules per service, and how the clients are configured.
        pub struct MockAws {
            $($service: Vec<Rule>,)*
            retries: bool,
        }

        impl MockAws {
            $(
                #[doc = concat!("Rules for ", $label, " calls (added before the defaults).")]
                pub fn $service(mut self, rules: impl IntoIterator<Item = Rule>) -> Self {
                    self.$service.extend(rules);
                    self
                }
            )*

            /// Clients of firebreak's `Clients::new` on one mock configuration, each service
            /// answering from its rules.
            pub fn build(self) -> Mocked {
                let config = self.config();
                let recorder = Arc::new(Recorder::default());
                let mut clients = Clients::new(&config);
                let (first, last) = defaults();
                $(
                    let rules: Vec<Rule> = first.$service.iter().cloned()
                        .chain(self.$service.iter().cloned())
                        .chain(last.$service.iter().cloned())
                        .collect();
                    let (before, after) = gates(&rules, $label, &recorder);
                    let mut mock = MockResponseInterceptor::new()
                        .rule_mode(RuleMode::MatchAny)
                        .allow_passthrough();
                    for rule in &rules {
                        mock = mock.with_rule(rule);
                    }
                    clients.$service = $krate::Client::from_conf(
                        $krate::config::Builder::from(&config)
                            .interceptor(before)
                            .interceptor(mock)
                            .interceptor(after)
                            .build(),
                    );
                )*
                Mocked { clients, recorder }
            }
        }

        impl Default for MockAws {
            fn default() -> Self {
                MockAws { $($service: Vec::new(),)* retries: false }
            }
        }
    };
}

services! {
    ec2 => aws_sdk_ec2, "ec2";
    iam => aws_sdk_iam, "iam";
    ssm => aws_sdk_ssm, "ssm";
    cloudformation => aws_sdk_cloudformation, "cloudformation";
    sts => aws_sdk_sts, "sts";
    autoscaling => aws_sdk_autoscaling, "autoscaling";
    sns => aws_sdk_sns, "sns";
    securityhub => aws_sdk_securityhub, "securityhub";
    guardduty => aws_sdk_guardduty, "guardduty";
    s3 => aws_sdk_s3, "s3";
    kms => aws_sdk_kms, "kms";
    lambda => aws_sdk_lambda, "lambda";
    elbv2 => aws_sdk_elasticloadbalancingv2, "elasticloadbalancing";
    ssoadmin => aws_sdk_ssoadmin, "sso";
    identitystore => aws_sdk_identitystore, "identitystore";
    cloudtrail => aws_sdk_cloudtrail, "cloudtrail";
}

impl MockAws {
    pub fn new() -> Self {
        Self::default()
    }

    /// Production's standard SDK retries (e.g. to test that a call is not retried blindly).
    pub fn sdk_retries(mut self) -> Self {
        self.retries = true;
        self
    }

    fn config(&self) -> SdkConfig {
        let retry = if self.retries {
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(firebreak::aws::config::SDK_MAX_ATTEMPTS)
        } else {
            aws_config::retry::RetryConfig::disabled()
        };
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "mock", "mock", None, None, "mock",
            )))
            .http_client(create_mock_http_client())
            .retry_config(retry)
            .build()
    }
}

/// What every run asks and most tests do not care about: rules matched before the test's own,
/// and rules matched after them (which a test's rule for the same call overrides).
fn defaults() -> (MockAws, MockAws) {
    use aws_smithy_mocks::mock;
    let identity = mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
        aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput::builder()
            .account("123456789012")
            .arn("arn:aws:iam::123456789012:user/responder")
            .user_id("AIDATEST")
            .build()
    });
    // The interlocks' protected-tag checks: no tags unless a test says otherwise.
    let no_tags = mock!(aws_sdk_ec2::Client::describe_tags).then_output(|| {
        aws_sdk_ec2::operation::describe_tags::DescribeTagsOutput::builder().build()
    });
    let no_user_tags = mock!(aws_sdk_iam::Client::list_user_tags).then_output(|| {
        aws_sdk_iam::operation::list_user_tags::ListUserTagsOutput::builder()
            .set_tags(Some(Vec::new()))
            .build()
            .expect("tags set")
    });
    let no_role_tags = mock!(aws_sdk_iam::Client::list_role_tags).then_output(|| {
        aws_sdk_iam::operation::list_role_tags::ListRoleTagsOutput::builder()
            .set_tags(Some(Vec::new()))
            .build()
            .expect("tags set")
    });
    // Earlier runs' (and this step's earlier attempts') snapshots for the case
    // (`ec2.snapshot_volumes` looks before creating): none, unless a test's own rule answers.
    let no_case_snapshots = mock!(aws_sdk_ec2::Client::describe_snapshots)
        .match_requests(|r| {
            r.filters()
                .iter()
                .any(|f| f.name() == Some("tag:firebreak:case"))
        })
        .then_output(|| {
            aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput::builder().build()
        });
    let first = MockAws::new();
    let last = MockAws::new()
        .sts([identity])
        .ec2([no_tags, no_case_snapshots])
        .iam([no_user_tags, no_role_tags]);
    (first, last)
}

/// Serializes the rule matching of one service, so that whether a request matched a rule is
/// known exactly: the number of rule answers before and after the mock interceptor ran.
#[derive(Default)]
struct Gate {
    busy: Mutex<bool>,
    free: Condvar,
}

impl Gate {
    fn enter(&self) {
        let mut busy = self.busy.lock().unwrap();
        while *busy {
            busy = self.free.wait(busy).unwrap();
        }
        *busy = true;
    }

    fn leave(&self) {
        *self.busy.lock().unwrap() = false;
        self.free.notify_one();
    }
}

#[derive(Debug, Clone)]
struct AnswersBefore(usize);

impl Storable for AnswersBefore {
    type Storer = StoreReplace<Self>;
}

fn answers(rules: &[Rule]) -> usize {
    rules.iter().map(Rule::num_calls).sum()
}

#[derive(Debug)]
struct Before {
    gate: Arc<Gate>,
    rules: Vec<Rule>,
}

#[derive(Debug)]
struct After {
    gate: Arc<Gate>,
    rules: Vec<Rule>,
    service: &'static str,
    recorder: Arc<Recorder>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

fn gates(rules: &[Rule], service: &'static str, recorder: &Arc<Recorder>) -> (Before, After) {
    let gate = Arc::new(Gate::default());
    (
        Before {
            gate: gate.clone(),
            rules: rules.to_vec(),
        },
        After {
            gate,
            rules: rules.to_vec(),
            service,
            recorder: recorder.clone(),
        },
    )
}

impl Intercept for Before {
    fn name(&self) -> &'static str {
        "MockAws::Before"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.gate.enter();
        cfg.interceptor_state()
            .store_put(AnswersBefore(answers(&self.rules)));
        Ok(())
    }
}

impl Intercept for After {
    fn name(&self) -> &'static str {
        "MockAws::After"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let before = cfg.load::<AnswersBefore>().map_or(0, |b| b.0);
        let matched = answers(&self.rules) > before;
        self.gate.leave();
        let operation = cfg
            .load::<Metadata>()
            .map_or("unknown", |m| m.name())
            .to_owned();
        let call = format!("{}:{operation}", self.service);
        self.recorder.calls.lock().unwrap().push(call.clone());
        if !matched {
            self.recorder.unexpected.lock().unwrap().push(call);
        }
        Ok(())
    }
}
