//! The journal's items: `pk = run#<RUN_ID>`, `sk = rec#<seq, 12 digits>`, `seq`, and either
//! `line` (the record's bytes as the file holds them, without the newline) or, for a record
//! larger than an item holds, `spill` (where in the seal bucket its line is, and its SHA-256).
//! A write is conditional on the item not being there, so two writers can never both write
//! record N; several records go in one transaction. No item of the journal ever has a TTL.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::condition::condition_failed;
use crate::aws::error::AwsError;

/// A DynamoDB item holds at most 400 KB, names and values included; a record must leave room
/// for its keys.
pub const MAX_LINE: usize = 400 * 1024 - 256;
/// Items in one TransactWriteItems.
const MAX_TRANSACTION: usize = 100;

/// Why lines were not written.
#[derive(Debug)]
pub enum WriteError {
    /// Another writer's record is at this seq.
    Taken(u64),
    Failed(u64, String),
}

fn pk(run_id: &str) -> AttributeValue {
    AttributeValue::S(format!("run#{run_id}"))
}

fn sk(seq: u64) -> AttributeValue {
    AttributeValue::S(format!("rec#{seq:012}"))
}

/// What an item holds of its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// The line itself.
    Line(String),
    /// `s3://BUCKET/KEY#SHA256`: the line, too large for an item, in the seal bucket.
    Spilled(String),
}

fn item(run_id: &str, seq: u64, stored: &Stored) -> HashMap<String, AttributeValue> {
    let (name, value) = match stored {
        Stored::Line(line) => ("line", line),
        Stored::Spilled(url) => ("spill", url),
    };
    HashMap::from([
        ("pk".to_owned(), pk(run_id)),
        ("sk".to_owned(), sk(seq)),
        ("seq".to_owned(), AttributeValue::N(seq.to_string())),
        (name.to_owned(), AttributeValue::S(value.clone())),
    ])
}

const ABSENT: &str = "attribute_not_exists(pk)";

/// Writes `lines` as records `first..`, in transactions of at most 100 (each all or nothing; a
/// crash between two leaves a prefix, itself a valid chain). A refused write whose items turn
/// out to hold exactly these lines was this writer's own (an answer lost, the SDK retried):
/// it counts as written.
pub async fn put(
    client: &Client,
    table: &str,
    run_id: &str,
    first: u64,
    lines: &[Stored],
) -> Result<(), WriteError> {
    for (index, chunk) in lines.chunks(MAX_TRANSACTION).enumerate() {
        let start = first + (index * MAX_TRANSACTION) as u64;
        let refused = if let [line] = chunk {
            let sent = client
                .put_item()
                .table_name(table)
                .set_item(Some(item(run_id, start, line)))
                .condition_expression(ABSENT)
                .send()
                .await;
            match sent {
                Ok(_) => false,
                Err(e) if condition_failed(&e) => true,
                Err(e) => {
                    let error = AwsError::from_sdk("dynamodb", "PutItem", e);
                    return Err(WriteError::Failed(start, error.to_string()));
                }
            }
        } else {
            let items = chunk
                .iter()
                .enumerate()
                .map(|(i, line)| {
                    let put = Put::builder()
                        .table_name(table)
                        .set_item(Some(item(run_id, start + i as u64, line)))
                        .condition_expression(ABSENT)
                        .build()
                        .map_err(|e| WriteError::Failed(start, e.to_string()))?;
                    Ok(TransactWriteItem::builder().put(put).build())
                })
                .collect::<Result<Vec<_>, WriteError>>()?;
            let sent = client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            match sent {
                Ok(_) => false,
                Err(e) => {
                    let conflict = match e.as_service_error() {
                        Some(TransactWriteItemsError::TransactionCanceledException(canceled)) => {
                            canceled
                                .cancellation_reasons()
                                .iter()
                                .any(|r| r.code() == Some("ConditionalCheckFailed"))
                        }
                        _ => false,
                    };
                    if !conflict {
                        let error = AwsError::from_sdk("dynamodb", "TransactWriteItems", e);
                        return Err(WriteError::Failed(start, error.to_string()));
                    }
                    true
                }
            }
        };
        if refused {
            let there = read_range(client, table, run_id, start, start + chunk.len() as u64 - 1)
                .await
                .map_err(|e| WriteError::Failed(start, e))?;
            let there: HashMap<u64, Stored> = there.into_iter().collect();
            let ours = |i: usize| (start + i as u64, &chunk[i]);
            // Someone else's record at one of these seqs: the run is theirs now.
            if let Some((seq, _)) = (0..chunk.len())
                .map(ours)
                .find(|(seq, line)| there.get(seq).is_some_and(|t| t != *line))
            {
                return Err(WriteError::Taken(seq));
            }
            if let Some((seq, _)) = (0..chunk.len())
                .map(ours)
                .find(|(s, _)| !there.contains_key(s))
            {
                return Err(WriteError::Failed(
                    seq,
                    "the write was refused, yet nothing is at that seq now".into(),
                ));
            }
        }
    }
    Ok(())
}

/// Every record of a run, in seq order (a consistent read).
pub async fn read_all(
    client: &Client,
    table: &str,
    run_id: &str,
) -> Result<Vec<(u64, Stored)>, String> {
    read_range(client, table, run_id, 1, u64::MAX / 2).await
}

async fn read_range(
    client: &Client,
    table: &str,
    run_id: &str,
    from: u64,
    to: u64,
) -> Result<Vec<(u64, Stored)>, String> {
    let mut records = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", pk(run_id))
            .expression_attribute_values(":from", sk(from))
            .expression_attribute_values(":to", sk(to.min(999_999_999_999)))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("dynamodb", "Query", e).to_string())?;
        for item in page.items() {
            let seq = match item.get("seq") {
                Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
                _ => None,
            };
            let line = match (item.get("line"), item.get("spill")) {
                (Some(AttributeValue::S(line)), None) => Some(Stored::Line(line.clone())),
                (None, Some(AttributeValue::S(url))) => Some(Stored::Spilled(url.clone())),
                _ => None,
            };
            match (seq, line) {
                (Some(seq), Some(line)) => records.push((seq, line)),
                _ => return Err("an item without a seq or a line".into()),
            }
        }
        match page.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => return Ok(records),
        }
    }
}
