//! [`Shared`]: what a worker keeps in the table instead of on a disk no other worker sees —
//! each run's journal (the local file mirrors it), each run's lease, and each finding's claim.
//! The engine and dispatch take it from their settings (`--journal dynamodb://TABLE`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use super::condition::condition_failed;
use super::lease::{Claim, Keeper, LeaseError, Leases};
use super::location::TableLocation;
use super::replica::{self, Materialized, TableReplica};
use super::spill::Spill;
use crate::aws::error::AwsError;
use crate::aws::fence::Fence;
use crate::journal::{JournalError, Replica};

/// How long a run's lease lasts between renewals unless a worker says otherwise: long enough
/// for a slow DynamoDB answer, short enough that a dead worker's run is taken over soon.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// Claims outlive any redelivery of their finding (EventBridge retries for a day; GuardDuty
/// re-sends an updated finding for as long as it recurs), then DynamoDB may remove them.
const CLAIM_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

/// The table, and who this worker is in it.
#[derive(Debug, Clone)]
pub struct Shared {
    pub client: aws_sdk_dynamodb::Client,
    pub table: TableLocation,
    /// How long a run lease lasts without renewal.
    pub lease: Duration,
    /// This worker, as lease holders are named (host and process).
    pub holder: String,
    /// Where records larger than an item go: the seal (a worker always has one).
    pub spill: Option<Spill>,
}

/// What became of a claim.
#[derive(Debug, PartialEq, Eq)]
pub enum Claimed {
    /// The claim is ours.
    Ours,
    /// Another run claimed the finding first.
    Theirs { run_id: String },
}

impl Shared {
    pub fn new(client: aws_sdk_dynamodb::Client, table: TableLocation) -> Shared {
        Shared {
            client,
            table,
            lease: DEFAULT_LEASE,
            holder: format!("{}#{}", crate::host::host(), std::process::id()),
            spill: None,
        }
    }

    /// Run leases are named by run id alone: a run is one run wherever it acts.
    fn run_leases(&self) -> Leases {
        Leases {
            client: self.client.clone(),
            table: self.table.table.clone(),
            account: "any".into(),
            region: "run".into(),
        }
    }

    /// Takes the run's lease (free, expired, or already ours) and keeps it renewed.
    pub async fn hold_run(&self, run_id: &str) -> Result<Keeper, LeaseError> {
        // Not while another task of this worker keeps it (the table would let it in).
        let claim = Claim::take(run_id)?;
        let leases = self.run_leases();
        let lease = leases.acquire(run_id, &self.holder, self.lease).await?;
        Ok(Keeper::start(leases, lease, self.lease).claimed(claim))
    }

    /// Whether some worker holds the run's lease now; doubt (a failed read) counts as live, so
    /// it never lets two workers act for one run.
    pub async fn run_is_live(&self, run_id: &str) -> bool {
        self.run_leases().is_held(run_id).await.unwrap_or(true)
    }

    /// The table as the run's journal's second home, fenced by the worker's lease.
    pub fn replica(&self, run_id: &str, fence: Option<Fence>) -> Arc<dyn Replica> {
        Arc::new(TableReplica {
            client: self.client.clone(),
            location: self.table.with_run(run_id),
            fence,
            spill: self.spill.clone(),
        })
    }

    /// Makes `path` the run's journal as the table holds it (see [`replica::materialize`]).
    pub async fn materialize(
        &self,
        run_id: &str,
        path: &Path,
    ) -> Result<Materialized, JournalError> {
        let s3 = self.spill.as_ref().map(|spill| &spill.s3);
        replica::materialize(&self.client, s3, &self.table.with_run(run_id), path).await
    }

    fn claim_key(key: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(format!("claim#{key}"))),
            ("sk".to_owned(), AttributeValue::S("claim".into())),
        ])
    }

    /// Claims `key` (a finding, with its account and region) for `run_id`, or names the run
    /// that claimed it first.
    pub async fn claim(&self, key: &str, run_id: &str) -> Result<Claimed, String> {
        let ttl = (std::time::SystemTime::now() + CLAIM_TTL)
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let mut item = Self::claim_key(key);
        item.insert("run_id".into(), AttributeValue::S(run_id.to_owned()));
        item.insert("holder".into(), AttributeValue::S(self.holder.clone()));
        item.insert("ttl".into(), AttributeValue::N(ttl.to_string()));
        let put = self
            .client
            .put_item()
            .table_name(&self.table.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(Claimed::Ours),
            Err(e) if condition_failed(&e) => {
                let read = self
                    .client
                    .get_item()
                    .table_name(&self.table.table)
                    .set_key(Some(Self::claim_key(key)))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("dynamodb", "GetItem", e).to_string())?;
                match read.item().and_then(|i| i.get("run_id")) {
                    Some(AttributeValue::S(run_id)) => Ok(Claimed::Theirs {
                        run_id: run_id.clone(),
                    }),
                    // Removed between the two calls (its TTL ran out): claim again.
                    _ => Box::pin(self.claim(key, run_id)).await,
                }
            }
            Err(e) => Err(AwsError::from_sdk("dynamodb", "PutItem", e).to_string()),
        }
    }

    /// Moves `key`'s claim from `from` to `to`, if it still names `from`: of two deliveries
    /// that find a claim whose run never began, one takes it.
    pub async fn take_claim(&self, key: &str, from: &str, to: &str) -> Result<bool, String> {
        let taken = self
            .client
            .update_item()
            .table_name(&self.table.table)
            .set_key(Some(Self::claim_key(key)))
            .update_expression("SET run_id = :to, holder = :me")
            .condition_expression("run_id = :from")
            .expression_attribute_values(":to", AttributeValue::S(to.to_owned()))
            .expression_attribute_values(":from", AttributeValue::S(from.to_owned()))
            .expression_attribute_values(":me", AttributeValue::S(self.holder.clone()))
            .send()
            .await;
        match taken {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(AwsError::from_sdk("dynamodb", "UpdateItem", e).to_string()),
        }
    }
}
