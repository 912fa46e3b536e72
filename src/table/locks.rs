//! Resource locks in the shared table, for workers that share no lock directory: one item per
//! resource — `pk = lock#<resource key>` (the key names the account and region), `sk = lock` —
//! holding the run that locked it (`run_id`, the conditions' handle) and the same holder
//! record a lock file holds (`holder`, JSON). Whether a holder is alive is its run's lease in
//! the table; what may be taken over is decided exactly as for lock files
//! ([`crate::lock::decide`]). Acquired in sorted order, all or nothing; every write is
//! conditional on what was read, so two workers racing for one resource cannot both win.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::condition::condition_failed;
use super::shared::Shared;
use crate::aws::error::AwsError;
use crate::lock::{self, LockError, LockHolder, LockOwner, TakenOver, TakeoverPolicy};

/// Lock items may be removed this long after they were last written, if nobody removed them
/// (a run abandoned for good): far longer than any parked run waits.
const LOCK_TTL: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

/// The locks a run holds in the table.
#[derive(Debug)]
pub struct TableLockSet {
    shared: Shared,
    run_id: String,
    held: Vec<Held>,
    taken_over: Vec<TakenOver>,
}

/// A lock taken: its resource, its holder record, and the item it replaced (put back if the
/// acquisition is rolled back).
#[derive(Debug)]
struct Held {
    resource: String,
    holder: LockHolder,
    replaced: Option<HashMap<String, AttributeValue>>,
}

fn key(resource: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("lock#{resource}")),
        ),
        ("sk".to_owned(), AttributeValue::S("lock".into())),
    ])
}

fn item(holder: &LockHolder) -> Result<HashMap<String, AttributeValue>, LockError> {
    let json = serde_json::to_string(holder).map_err(|source| LockError::Encode {
        resource: holder.resource.clone(),
        source,
    })?;
    let ttl = (std::time::SystemTime::now() + LOCK_TTL)
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut item = key(&holder.resource);
    item.insert("run_id".into(), AttributeValue::S(holder.run_id.clone()));
    item.insert("holder".into(), AttributeValue::S(json));
    item.insert("ttl".into(), AttributeValue::N(ttl.to_string()));
    Ok(item)
}

fn failed(resource: &str, error: AwsError) -> LockError {
    LockError::Table {
        resource: resource.to_owned(),
        message: error.to_string(),
    }
}

impl TableLockSet {
    /// Locks every resource for `owner`, or none of them.
    pub async fn acquire(
        shared: &Shared,
        resources: &[String],
        owner: &LockOwner,
        policy: TakeoverPolicy,
    ) -> Result<TableLockSet, LockError> {
        let mut wanted: Vec<&str> = resources.iter().map(String::as_str).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut set = TableLockSet {
            shared: shared.clone(),
            run_id: owner.run_id.clone(),
            held: Vec::new(),
            taken_over: Vec::new(),
        };
        for resource in wanted {
            if let Err(e) = set.acquire_one(resource, owner, &policy).await {
                set.roll_back().await;
                return Err(e);
            }
        }
        Ok(set)
    }

    async fn acquire_one(
        &mut self,
        resource: &str,
        owner: &LockOwner,
        policy: &TakeoverPolicy,
    ) -> Result<(), LockError> {
        const ATTEMPTS: usize = 5;
        let holder = lock::holder_for(owner, resource)?;
        let ours = item(&holder)?;
        let table = &self.shared.table.table;
        let client = &self.shared.client;
        for _ in 0..ATTEMPTS {
            let put = client
                .put_item()
                .table_name(table)
                .set_item(Some(ours.clone()))
                .condition_expression("attribute_not_exists(pk) OR run_id = :me")
                .expression_attribute_values(":me", AttributeValue::S(owner.run_id.clone()))
                .send()
                .await;
            match put {
                Ok(_) => {
                    self.held.push(Held {
                        resource: resource.to_owned(),
                        holder,
                        replaced: None,
                    });
                    return Ok(());
                }
                Err(e) if condition_failed(&e) => {}
                Err(e) => {
                    return Err(failed(
                        resource,
                        AwsError::from_sdk("dynamodb", "PutItem", e),
                    ));
                }
            }
            let seen = client
                .get_item()
                .table_name(table)
                .set_key(Some(key(resource)))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| failed(resource, AwsError::from_sdk("dynamodb", "GetItem", e)))?
                .item()
                .cloned();
            let Some(seen) = seen else { continue }; // released meanwhile
            let previous: Option<LockHolder> = match seen.get("holder") {
                Some(AttributeValue::S(json)) => serde_json::from_str(json).ok(),
                _ => None,
            };
            let seen_run = match seen.get("run_id") {
                Some(AttributeValue::S(run)) => run.clone(),
                _ => String::new(),
            };
            let live = match &previous {
                Some(h) => self.shared.run_is_live(&h.run_id).await,
                None => false,
            };
            lock::decide(resource, previous.as_ref(), live, owner, policy)?;
            // Replace exactly what was read: a new holder meanwhile makes this fail, and we
            // look again.
            let replace = client
                .put_item()
                .table_name(table)
                .set_item(Some(ours.clone()))
                .condition_expression("run_id = :seen")
                .expression_attribute_values(":seen", AttributeValue::S(seen_run))
                .send()
                .await;
            match replace {
                Ok(_) => {
                    self.held.push(Held {
                        resource: resource.to_owned(),
                        holder,
                        replaced: Some(seen),
                    });
                    self.taken_over.push(TakenOver {
                        resource: resource.to_owned(),
                        previous,
                    });
                    return Ok(());
                }
                Err(e) if condition_failed(&e) => continue,
                Err(e) => {
                    return Err(failed(
                        resource,
                        AwsError::from_sdk("dynamodb", "PutItem", e),
                    ));
                }
            }
        }
        Err(LockError::Contended {
            resource: resource.to_owned(),
        })
    }

    /// The locked resource keys, sorted.
    pub fn resources(&self) -> Vec<&str> {
        self.held.iter().map(|h| h.resource.as_str()).collect()
    }

    /// The locks taken over while acquiring, for the journal.
    pub fn taken_over(&self) -> Vec<TakenOver> {
        self.taken_over.clone()
    }

    /// Removes every lock this run still holds. Tries all, returns the first failure.
    pub async fn release(mut self) -> Result<(), LockError> {
        let mut first = None;
        for held in std::mem::take(&mut self.held) {
            if let Err(e) = self.remove_if_ours(&held.resource).await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Keeps the locks for a run that waits for a person: each is marked parked, so no other
    /// run takes it while nobody holds the run's lease, and the run's own resume takes it back.
    pub async fn park(mut self) -> Result<(), LockError> {
        let mut first = None;
        for held in std::mem::take(&mut self.held) {
            let parked = LockHolder {
                parked: true,
                ..held.holder
            };
            if let Err(e) = self.put_if_ours(&held.resource, item(&parked)).await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Undoes a partial acquisition: own locks removed, taken-over ones put back.
    async fn roll_back(&mut self) {
        for held in std::mem::take(&mut self.held) {
            let _ = match held.replaced {
                Some(previous) => self.put_if_ours(&held.resource, Ok(previous)).await,
                None => self.remove_if_ours(&held.resource).await,
            };
        }
        self.taken_over.clear();
    }

    async fn remove_if_ours(&self, resource: &str) -> Result<(), LockError> {
        let deleted = self
            .shared
            .client
            .delete_item()
            .table_name(&self.shared.table.table)
            .set_key(Some(key(resource)))
            .condition_expression("run_id = :me")
            .expression_attribute_values(":me", AttributeValue::S(self.run_id.clone()))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            // Someone took it over since (a forced run): theirs now.
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(failed(
                resource,
                AwsError::from_sdk("dynamodb", "DeleteItem", e),
            )),
        }
    }

    async fn put_if_ours(
        &self,
        resource: &str,
        item: Result<HashMap<String, AttributeValue>, LockError>,
    ) -> Result<(), LockError> {
        let put = self
            .shared
            .client
            .put_item()
            .table_name(&self.shared.table.table)
            .set_item(Some(item?))
            .condition_expression("run_id = :me")
            .expression_attribute_values(":me", AttributeValue::S(self.run_id.clone()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(failed(
                resource,
                AwsError::from_sdk("dynamodb", "PutItem", e),
            )),
        }
    }
}
