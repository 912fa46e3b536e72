//! Leases in the table: liveness across hosts, where a `flock` on one host cannot reach. A
//! lease is one item — `pk = lease#<account>#<region>#<name>`, `sk = lease` — with its holder,
//! when it expires (milliseconds since the epoch), a generation that grows with every change of
//! holder (the fencing token), and `ttl` (seconds) so DynamoDB removes leases nobody renews a
//! day after they expire. Journal records never carry a TTL; leases, claims and locks do.
//!
//! Taking a lease succeeds only if nobody holds it, it expired, or the taker already holds it;
//! renewing and releasing succeed only for the holder of that generation. A holder whose
//! renewal is refused, or whose lease runs out before a renewal succeeds, has lost the lease —
//! someone may have taken it over — and must stop acting at once: [`Keeper`] renews in the
//! background and raises [`Keeper::lost`] when that happens. The rest of the fence is the
//! journal's: a taker appends `run_resumed` (conditional on its seq) before any AWS call, so the
//! old holder's next append is refused.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::condition::condition_failed;
use crate::aws::error::AwsError;
use crate::aws::fence::Fence;

/// Where leases live: the table, and the account and region whose resources they guard.
#[derive(Debug, Clone)]
pub struct Leases {
    pub client: Client,
    pub table: String,
    pub account: String,
    pub region: String,
}

/// A lease held: its name, holder and generation (the fencing token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub generation: u64,
    pub expires_at_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lease {name} is held by {holder} until {expires_at_ms} (ms since the epoch)")]
    Held {
        name: String,
        holder: String,
        expires_at_ms: u64,
    },
    #[error("lease {name} was lost (another holder took it over, or it was released)")]
    Lost { name: String },
    #[error("lease {name} is kept by this worker for another message it is handling")]
    KeptHere { name: String },
    #[error("lease {name}: {message}")]
    Table { name: String, message: String },
}

/// How long after expiry DynamoDB may delete a lease item (TTL deletes are lazy anyway).
const TTL_GRACE: Duration = Duration::from_secs(24 * 3600);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> u64 {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or_default(),
        _ => 0,
    }
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => String::new(),
    }
}

impl Leases {
    fn key(&self, name: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (
                "pk".to_owned(),
                s(&format!("lease#{}#{}#{name}", self.account, self.region)),
            ),
            ("sk".to_owned(), s("lease")),
        ])
    }

    /// Takes `name` for `holder` for `duration`, if nobody else holds it unexpired.
    pub async fn acquire(
        &self,
        name: &str,
        holder: &str,
        duration: Duration,
    ) -> Result<Lease, LeaseError> {
        let now = now_ms();
        let expires = now + duration.as_millis() as u64;
        let taken = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(name)))
            // Every take is a new generation: whoever held an older one is fenced off.
            .update_expression(
                "SET holder = :me, expires_at = :expires, #ttl = :ttl, \
                 generation = if_not_exists(generation, :zero) + :step",
            )
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now OR holder = :me")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":me", s(holder))
            .expression_attribute_values(":expires", n(expires))
            .expression_attribute_values(":ttl", n((expires + TTL_GRACE.as_millis() as u64) / 1000))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":step", n(1))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match taken {
            Ok(output) => {
                let item = output.attributes().cloned().unwrap_or_default();
                Ok(Lease {
                    name: name.to_owned(),
                    holder: holder.to_owned(),
                    generation: number(&item, "generation"),
                    expires_at_ms: expires,
                })
            }
            Err(e) if condition_failed(&e) => {
                let current = self.read(name).await?;
                Err(LeaseError::Held {
                    name: name.to_owned(),
                    holder: current
                        .as_ref()
                        .map(|c| text(c, "holder"))
                        .unwrap_or_default(),
                    expires_at_ms: current
                        .as_ref()
                        .map(|c| number(c, "expires_at"))
                        .unwrap_or_default(),
                })
            }
            Err(e) => Err(self.failed(name, AwsError::from_sdk("dynamodb", "UpdateItem", e))),
        }
    }

    /// Extends a lease its holder still holds, by `duration` from now.
    pub async fn renew(&self, lease: &mut Lease, duration: Duration) -> Result<(), LeaseError> {
        let expires = now_ms() + duration.as_millis() as u64;
        let renewed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(&lease.name)))
            .update_expression("SET expires_at = :expires, #ttl = :ttl")
            .condition_expression("holder = :me AND generation = :generation")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":me", s(&lease.holder))
            .expression_attribute_values(":generation", n(lease.generation))
            .expression_attribute_values(":expires", n(expires))
            .expression_attribute_values(":ttl", n((expires + TTL_GRACE.as_millis() as u64) / 1000))
            .send()
            .await;
        match renewed {
            Ok(_) => {
                lease.expires_at_ms = expires;
                Ok(())
            }
            Err(e) if condition_failed(&e) => Err(LeaseError::Lost {
                name: lease.name.clone(),
            }),
            Err(e) => {
                Err(self.failed(&lease.name, AwsError::from_sdk("dynamodb", "UpdateItem", e)))
            }
        }
    }

    /// Gives a lease up, if it is still this holder's (a lost lease is left to its new holder).
    pub async fn release(&self, lease: &Lease) -> Result<(), LeaseError> {
        let released = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.key(&lease.name)))
            .condition_expression("holder = :me AND generation = :generation")
            .expression_attribute_values(":me", s(&lease.holder))
            .expression_attribute_values(":generation", n(lease.generation))
            .send()
            .await;
        match released {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => {
                Err(self.failed(&lease.name, AwsError::from_sdk("dynamodb", "DeleteItem", e)))
            }
        }
    }

    /// Whether somebody holds `name` now (an unexpired lease). A read that fails says nothing,
    /// and is an error: the caller must treat doubt as held.
    pub async fn is_held(&self, name: &str) -> Result<bool, LeaseError> {
        Ok(self
            .read(name)
            .await?
            .is_some_and(|item| number(&item, "expires_at") >= now_ms()))
    }

    async fn read(
        &self,
        name: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, LeaseError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.key(name)))
            .consistent_read(true)
            .send()
            .await
            .map(|o| o.item().cloned())
            .map_err(|e| self.failed(name, AwsError::from_sdk("dynamodb", "GetItem", e)))
    }

    fn failed(&self, name: &str, error: AwsError) -> LeaseError {
        LeaseError::Table {
            name: name.to_owned(),
            message: error.to_string(),
        }
    }
}

/// Renews a lease in the background (every third of its duration) until released or dropped,
/// keeping its [`Fence`] up to date: a renewal extends it; a refused one — or a lease that
/// runs out while renewals fail, or that a keeper wakes to find already past (its process was
/// paused) — takes it down for good.
pub struct Keeper {
    fence: Fence,
    task: tokio::task::JoinHandle<()>,
    leases: Leases,
    lease: Arc<std::sync::Mutex<Lease>>,
    /// This process's claim on the name, given up with the keeper.
    claim: Option<Claim>,
}

/// The leases this process's keepers keep, by name. The table lets a holder take its own
/// lease again (`holder = :me`, so a worker restarted under the same name need not wait), but
/// two tasks of one worker — a duplicate finding's resume beside a resume request for the same
/// run — must not both act: the second take's new generation would stop the first mid-run.
static KEPT: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<String>>> =
    std::sync::LazyLock::new(Default::default);

/// One task's claim on a lease name within this process, given up when dropped.
pub struct Claim(String);

impl Claim {
    /// Claims `name`, unless another task of this process keeps it.
    pub fn take(name: &str) -> Result<Claim, LeaseError> {
        let mut kept = KEPT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept.insert(name.to_owned()) {
            Ok(Claim(name.to_owned()))
        } else {
            Err(LeaseError::KeptHere {
                name: name.to_owned(),
            })
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut kept = KEPT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        kept.remove(&self.0);
    }
}

/// Leases this process keeps now (for a worker's health line).
static HELD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Renews the kept lease: true once a renewal succeeds; false when it is refused (another holder
/// took it, or it was released) or when the lease runs out first. A renewal that fails in
/// another way (throttled, timed out, a 500) says nothing about who holds the lease, and the
/// fence still promises it for a while: it is tried again until then — one throttled call in a
/// minute's lease must not stop every run the worker holds. Trying again is safe: a renewal
/// applies only for this holder and generation, and only moves the expiry on.
async fn renew_while_held(
    leases: &Leases,
    kept: &std::sync::Mutex<Lease>,
    fence: &Fence,
    duration: Duration,
) -> bool {
    let pause = (duration / 20).clamp(Duration::from_millis(100), Duration::from_secs(2));
    loop {
        // Past the promise: another worker may hold it now, so never revive it.
        if !fence.holds() {
            return false;
        }
        let Ok(mut lease) = kept.lock().map(|l| l.clone()) else {
            return false;
        };
        let started = std::time::Instant::now();
        match leases.renew(&mut lease, duration).await {
            Ok(()) => {
                fence.extend(started, duration);
                if let Ok(mut kept) = kept.lock() {
                    *kept = lease;
                }
                return true;
            }
            Err(LeaseError::Lost { .. }) => return false,
            Err(error) => {
                tracing::warn!("renewing lease {}: {error}; trying again", lease.name);
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// How many leases this process's keepers hold now.
pub fn held() -> usize {
    HELD.load(std::sync::atomic::Ordering::SeqCst)
}

impl Keeper {
    /// Keeps `lease`, taken at `taken` for `duration`.
    pub fn start(leases: Leases, lease: Lease, duration: Duration) -> Keeper {
        HELD.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let fence = Fence::new(lease.name.clone(), duration);
        let shared = Arc::new(std::sync::Mutex::new(lease));
        let (keeping, watching) = (shared.clone(), fence.clone());
        let renewing = leases.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(duration / 3).await;
                if !renew_while_held(&renewing, &keeping, &watching, duration).await {
                    watching.lose();
                    return;
                }
            }
        });
        Keeper {
            fence,
            task,
            leases,
            lease: shared,
            claim: None,
        }
    }

    /// Keeps this process's claim on the name for as long as the keeper lives.
    pub fn claimed(mut self, claim: Claim) -> Keeper {
        self.claim = Some(claim);
        self
    }

    /// The lease can no longer be shown to be held: stop acting.
    pub fn lost(&self) -> bool {
        !self.fence.holds()
    }

    /// The fence the clients and the journal check before each call and append.
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// The lease as last renewed.
    pub fn lease(&self) -> Option<Lease> {
        self.lease.lock().ok().map(|l| l.clone())
    }

    /// Stops renewing and gives the lease up (if it is still ours), so another worker may take
    /// the run at once instead of waiting for it to expire.
    pub async fn release(self) -> Result<(), LeaseError> {
        self.task.abort();
        self.fence.lose();
        match self.lease() {
            Some(lease) => self.leases.release(&lease).await,
            None => Ok(()),
        }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        HELD.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
    use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client};

    /// Leases in a table whose `UpdateItem` (the renewal) answers as `rule` says; the SDK's
    /// own retries off, so each renewal the keeper makes is one answer.
    fn leases(rule: &Rule) -> Leases {
        let interceptor = MockResponseInterceptor::new()
            .rule_mode(RuleMode::Sequential)
            .with_rule(rule);
        let client = Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
                .credentials_provider(aws_credential_types::Credentials::new(
                    "a", "b", None, None, "test",
                ))
                .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
                .http_client(create_mock_http_client())
                .interceptor(interceptor)
                .build(),
        );
        Leases {
            client,
            table: "firebreak-state".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
        }
    }

    fn lease() -> Lease {
        Lease {
            name: "run-1".into(),
            holder: "worker-1".into(),
            generation: 1,
            expires_at_ms: now_ms() + 3_000,
        }
    }

    #[tokio::test]
    async fn a_renewal_that_fails_is_tried_again_while_the_lease_lasts() {
        // Renewed every second; usable two seconds after each renewal. Two renewals in a row
        // fail (500, then a throttle) and the third succeeds, all within the first promise.
        let rule = aws_smithy_mocks::mock!(Client::update_item)
            .sequence()
            .http_status(500, None)
            .http_status(400, Some(r#"{"__type":"ThrottlingException"}"#.into()))
            .output(|| UpdateItemOutput::builder().build())
            .times(100)
            .build();
        let keeper = Keeper::start(leases(&rule), lease(), Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(3_500)).await;
        assert!(
            !keeper.lost(),
            "the keeper gave up a lease a failed renewal said nothing about"
        );
        assert!(rule.num_calls() >= 3, "renewals: {}", rule.num_calls());
    }

    #[tokio::test]
    async fn a_refused_renewal_loses_the_lease_at_once() {
        let rule = aws_smithy_mocks::mock!(Client::update_item)
            .sequence()
            .http_status(
                400,
                Some(r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#.into()),
            )
            .build();
        let keeper = Keeper::start(leases(&rule), lease(), Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert!(
            keeper.lost(),
            "another holder took it: the keeper must stop"
        );
        assert_eq!(rule.num_calls(), 1);
    }

    #[test]
    fn a_second_task_of_this_worker_cannot_claim_a_kept_lease() {
        let first = Claim::take("run-claimed").unwrap();
        assert!(matches!(
            Claim::take("run-claimed"),
            Err(LeaseError::KeptHere { .. })
        ));
        drop(first);
        assert!(
            Claim::take("run-claimed").is_ok(),
            "given up with the keeper"
        );
    }

    #[tokio::test]
    async fn renewals_failing_past_the_lease_lose_it() {
        let rule = aws_smithy_mocks::mock!(Client::update_item)
            .sequence()
            .http_status(500, None)
            .times(1_000)
            .build();
        let keeper = Keeper::start(leases(&rule), lease(), Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        assert!(keeper.lost(), "the promise ran out: the keeper must stop");
        let calls = rule.num_calls();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            rule.num_calls(),
            calls,
            "a keeper that lost its lease renews no more"
        );
    }
}
