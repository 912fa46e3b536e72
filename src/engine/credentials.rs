//! Credentials of a role assumed in a member account, refreshed for as long as the run needs
//! them (snapshot waits, approvals and memory captures outlive a one-hour session), through
//! firebreak's own STS client so that every `sts:AssumeRole` is journaled — the SDK's own
//! assume-role provider refreshes through an internal client the journal cannot see.
//!
//! The session names the run (`firebreak-<run-id>`) and, where the role's trust policy allows
//! `sts:SetSourceIdentity`, carries the run id as its source identity, so CloudTrail in the
//! member account ties every call to the run; an external id is sent when one is configured.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{
    ProvideCredentials, error::CredentialsError, future::ProvideCredentials as Future,
};
use serde_json::Value;

use crate::aws::{AwsError, ErrorClass};
use crate::journal::event::ApiCall;

/// Refresh this long before the session expires.
const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);
/// How long each session asks to live (the role's maximum may be lower; STS says so).
const SESSION: Duration = Duration::from_secs(3600);

/// Where the calls go once the run has a journal; until then they wait in `pending`.
#[derive(Default)]
pub(crate) struct CallLog {
    pending: Vec<ApiCall>,
    sink: Option<Arc<dyn Fn(ApiCall) + Send + Sync>>,
}

impl CallLog {
    fn log(&mut self, call: ApiCall) {
        match &self.sink {
            Some(sink) => sink(call),
            None => self.pending.push(call),
        }
    }
}

/// The clock, injectable for tests of refresh.
pub(crate) type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

pub(crate) struct AssumedRole {
    sts: aws_sdk_sts::Client,
    pub role_arn: String,
    session_name: String,
    external_id: Option<String>,
    source_identity: Mutex<Option<String>>,
    cached: Mutex<Option<Credentials>>,
    log: Mutex<CallLog>,
    clock: Clock,
}

impl std::fmt::Debug for AssumedRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssumedRole")
            .field("role_arn", &self.role_arn)
            .field("session_name", &self.session_name)
            .finish_non_exhaustive()
    }
}

impl AssumedRole {
    pub fn new(
        sts: aws_sdk_sts::Client,
        role_arn: String,
        run_id: &str,
        external_id: Option<String>,
        clock: Clock,
    ) -> AssumedRole {
        let session_name: String = format!("firebreak-{run_id}")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "=,.@-".contains(*c))
            .take(64)
            .collect();
        AssumedRole {
            sts,
            role_arn,
            session_name,
            external_id,
            source_identity: Mutex::new(Some(run_id.to_owned())),
            cached: Mutex::new(None),
            log: Mutex::new(CallLog::default()),
            clock,
        }
    }

    /// From now on, every AssumeRole call goes to `sink` (the journal); the calls made before
    /// there was one go first.
    pub fn journal_to(&self, sink: Arc<dyn Fn(ApiCall) + Send + Sync>) {
        let mut log = self.log.lock().expect("call log lock");
        for call in std::mem::take(&mut log.pending) {
            sink(call);
        }
        log.sink = Some(sink);
    }

    /// Valid credentials: the cached ones while they have more than five minutes left, else a
    /// fresh session.
    pub async fn credentials(&self) -> Result<Credentials, AwsError> {
        let now = (self.clock)();
        if let Some(cached) = self.cached.lock().expect("cache lock").clone()
            && cached
                .expiry()
                .is_none_or(|expiry| expiry > now + REFRESH_BEFORE)
        {
            return Ok(cached);
        }
        let fresh = self.assume().await?;
        *self.cached.lock().expect("cache lock") = Some(fresh.clone());
        Ok(fresh)
    }

    async fn assume(&self) -> Result<Credentials, AwsError> {
        loop {
            let source_identity = self.source_identity.lock().expect("lock").clone();
            let started = std::time::Instant::now();
            let result = self
                .sts
                .assume_role()
                .role_arn(&self.role_arn)
                .role_session_name(&self.session_name)
                .duration_seconds(SESSION.as_secs() as i32)
                .set_external_id(self.external_id.clone())
                .set_source_identity(source_identity.clone())
                .send()
                .await;
            let mut call = ApiCall {
                step: "credentials".into(),
                service: "sts".into(),
                operation: "AssumeRole".into(),
                targets: vec![self.role_arn.clone()],
                attempt: 1,
                duration_ms: started.elapsed().as_millis() as u64,
                ..ApiCall::default()
            };
            match result {
                Ok(output) => {
                    use aws_types::request_id::RequestId;
                    call.outcome = "ok".into();
                    call.request_id = Some(output.request_id().map(str::to_owned));
                    self.log.lock().expect("call log lock").log(call);
                    let Some(c) = output.credentials() else {
                        return Err(AwsError {
                            service: "sts",
                            operation: "AssumeRole",
                            class: ErrorClass::InvalidRequest,
                            code: None,
                            message: format!(
                                "AssumeRole on {} returned no credentials",
                                self.role_arn
                            ),
                            request_id: None,
                            source: None,
                        });
                    };
                    let expiry = SystemTime::try_from(*c.expiration())
                        .unwrap_or_else(|_| (self.clock)() + SESSION);
                    return Ok(Credentials::new(
                        c.access_key_id(),
                        c.secret_access_key(),
                        Some(c.session_token().to_owned()),
                        Some(expiry),
                        "firebreak-assume-role",
                    ));
                }
                Err(error) => {
                    let error = AwsError::from_sdk("sts", "AssumeRole", error);
                    call.outcome = "error".into();
                    call.class = Some(error.class.as_str().to_owned());
                    call.code = Some(error.code.clone());
                    call.message = Some(error.message.clone());
                    call.request_id = Some(error.request_id.clone());
                    self.log.lock().expect("call log lock").log(call);
                    // A trust policy that does not allow sts:SetSourceIdentity: assume without
                    // it (the session name still names the run).
                    if error.class == ErrorClass::AccessDenied && source_identity.is_some() {
                        *self.source_identity.lock().expect("lock") = None;
                        continue;
                    }
                    return Err(error);
                }
            }
        }
    }

    /// What the first record says of the role: its ARN and whether the run id is its source
    /// identity.
    pub fn describe(&self, account: &str) -> Value {
        serde_json::json!({
            "role_arn": self.role_arn,
            "account": account,
            "session_name": self.session_name,
            "source_identity": self.source_identity.lock().expect("lock").clone(),
            "external_id": self.external_id.is_some(),
        })
    }
}

/// The SDK asks through this; a failure is reported as a provider error naming the role.
#[derive(Debug, Clone)]
pub(crate) struct RefreshingProvider(pub Arc<AssumedRole>);

impl ProvideCredentials for RefreshingProvider {
    fn provide_credentials<'a>(&'a self) -> Future<'a>
    where
        Self: 'a,
    {
        Future::new(async move {
            self.0
                .credentials()
                .await
                .map_err(CredentialsError::provider_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, create_mock_http_client, mock};
    use aws_smithy_types::DateTime;

    fn sts(rules: &[&aws_smithy_mocks::Rule]) -> aws_sdk_sts::Client {
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in rules {
            interceptor = interceptor.with_rule(rule);
        }
        aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::Config::builder()
                .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
                .region(aws_sdk_sts::config::Region::new("us-east-1"))
                .credentials_provider(Credentials::new("a", "b", None, None, "test"))
                .http_client(create_mock_http_client())
                .interceptor(interceptor)
                .build(),
        )
    }

    fn session(expires_at: i64) -> aws_sdk_sts::types::Credentials {
        aws_sdk_sts::types::Credentials::builder()
            .access_key_id("ASIAEXAMPLE")
            .secret_access_key("secret")
            .session_token("token")
            .expiration(DateTime::from_secs(expires_at))
            .build()
            .unwrap()
    }

    /// A session is reused while it has more than five minutes left and renewed after, each
    /// AssumeRole journaled (the first one once the journal exists), with the run as source
    /// identity and the session named for it.
    #[tokio::test]
    async fn sessions_are_reused_then_renewed_and_every_call_is_journaled() {
        let start = 1_800_000_000i64;
        let assume = mock!(aws_sdk_sts::Client::assume_role)
            .match_requests(|r| {
                r.source_identity() == Some("20261201T000000Z-abcdef")
                    && r.role_session_name() == Some("firebreak-20261201T000000Z-abcdef")
                    && r.external_id() == Some("ext-1")
            })
            .sequence()
            .output(move || {
                aws_sdk_sts::operation::assume_role::AssumeRoleOutput::builder()
                    .credentials(session(start + 3600))
                    .build()
            })
            .output(move || {
                aws_sdk_sts::operation::assume_role::AssumeRoleOutput::builder()
                    .credentials(session(start + 7200))
                    .build()
            })
            .build();
        let now = Arc::new(Mutex::new(start));
        let clock_now = now.clone();
        let clock: Clock = Arc::new(move || {
            SystemTime::UNIX_EPOCH + Duration::from_secs(*clock_now.lock().unwrap() as u64)
        });
        let role = AssumedRole::new(
            sts(&[&assume]),
            "arn:aws:iam::210987654321:role/firebreak-responder".into(),
            "20261201T000000Z-abcdef",
            Some("ext-1".into()),
            clock,
        );
        let first = role.credentials().await.unwrap();
        assert_eq!(assume.num_calls(), 1);
        let journaled = Arc::new(Mutex::new(Vec::new()));
        let sink = journaled.clone();
        role.journal_to(Arc::new(move |call| sink.lock().unwrap().push(call)));
        assert_eq!(
            journaled.lock().unwrap().len(),
            1,
            "the first call, once there is a journal"
        );
        *now.lock().unwrap() = start + 50 * 60;
        assert_eq!(
            role.credentials().await.unwrap(),
            first,
            "ten minutes left: reused"
        );
        assert_eq!(assume.num_calls(), 1);
        *now.lock().unwrap() = start + 56 * 60;
        let renewed = role.credentials().await.unwrap();
        assert_eq!(assume.num_calls(), 2, "four minutes left: renewed");
        assert_ne!(renewed.expiry(), first.expiry());
        let calls = journaled.lock().unwrap();
        assert_eq!(calls.len(), 2);
        assert!(
            calls
                .iter()
                .all(|c| c.operation == "AssumeRole" && c.outcome == "ok")
        );
    }
}
