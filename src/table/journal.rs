//! [`TableJournal`]: the journal as DynamoDB items, one per record, each line stored as the
//! file would hold it — so exporting is concatenation and every hash stays what it was. The
//! engine's appends are synchronous (a record must be durable before the effect it describes),
//! so `append` blocks its caller (`block_in_place` on tokio's multi-thread runtime, which the
//! CLI and workers run) until DynamoDB has acknowledged, as the file's `append` blocks until
//! `fdatasync`. The write runs on the caller's runtime, whose reactor drives the client's
//! pooled connections.
//!
//! A writer whose append is refused because the seq is taken (another worker took the run
//! over) or fails is broken from then on: it appends nothing more, so it can start no further
//! side effect — the fence a takeover relies on.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::location::TableLocation;
use super::records::{self, MAX_LINE, Stored, WriteError};
use super::spill::Spill;
use crate::journal::lines::{Tail, chain_records};
use crate::journal::{AppendedRecord, ChainKey, Clock, JournalError, JournalSink, chain};

/// One run's journal in the table.
pub struct TableJournal {
    location: TableLocation,
    run_id: String,
    key: Option<ChainKey>,
    clock: Option<Clock>,
    client: aws_sdk_dynamodb::Client,
    state: Mutex<State>,
}

struct State {
    tail: Tail,
    head: Option<String>,
    broken: bool,
}

impl TableJournal {
    /// A new run's journal in `table`. Nothing is written until the first record, which is
    /// refused if the run already has one.
    pub fn create(
        client: aws_sdk_dynamodb::Client,
        table: &TableLocation,
        run_id: &str,
        key: Option<ChainKey>,
    ) -> Result<TableJournal, JournalError> {
        Self::at(client, table.with_run(run_id), key, Tail::genesis(), None)
    }

    /// Reopens a run's journal after its last record, once its chain verifies.
    pub async fn open_for_resume(
        client: aws_sdk_dynamodb::Client,
        location: &TableLocation,
        key: Option<ChainKey>,
    ) -> Result<TableJournal, JournalError> {
        let bytes = export(&client, location).await?;
        let name = location.to_string();
        let verification =
            crate::journal::verify_bytes(&bytes, key.as_ref().map(ChainKey::as_bytes));
        if let Some(problem) = verification.problem {
            return Err(JournalError::Tampered {
                path: PathBuf::from(&name),
                line: problem.line,
                seq: problem.seq,
                message: problem.message,
            });
        }
        // Verified: records 1..N, each line whole; the last one's bytes make the next `prev`.
        let last = bytes[..bytes.len().saturating_sub(1)]
            .rsplit(|b| *b == b'\n')
            .next()
            .filter(|line| !line.is_empty());
        let Some(last) = last else {
            return Err(JournalError::Empty {
                path: PathBuf::from(&name),
            });
        };
        let tail = Tail {
            next_seq: verification.records as u64 + 1,
            prev: chain::digest(key.as_ref().map(ChainKey::as_bytes), last),
        };
        Self::at(client, location.clone(), key, tail, verification.head)
    }

    fn at(
        client: aws_sdk_dynamodb::Client,
        location: TableLocation,
        key: Option<ChainKey>,
        tail: Tail,
        head: Option<String>,
    ) -> Result<TableJournal, JournalError> {
        let run_id = location
            .run()
            .map_err(|message| JournalError::Store {
                location: location.to_string(),
                seq: tail.next_seq,
                message,
            })?
            .to_owned();
        Ok(TableJournal {
            location,
            run_id,
            key,
            clock: None,
            client,
            state: Mutex::new(State {
                tail,
                head,
                broken: false,
            }),
        })
    }

    /// Stamps records with `clock` instead of the wall clock (tests that compare bytes).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    pub fn location(&self) -> &TableLocation {
        &self.location
    }

    fn broken(&self) -> JournalError {
        JournalError::Broken {
            path: PathBuf::from(self.location.to_string()),
        }
    }
}

impl JournalSink for TableJournal {
    fn append_fields(
        &self,
        kind: &str,
        payload: Map<String, Value>,
    ) -> Result<AppendedRecord, JournalError> {
        let mut appended = self.append_batch(vec![(kind, payload)])?;
        Ok(appended.remove(0))
    }

    /// One transaction (of up to 100 records; larger batches are consecutive transactions).
    fn append_batch(
        &self,
        records: Vec<(&str, Map<String, Value>)>,
    ) -> Result<Vec<AppendedRecord>, JournalError> {
        let mut state = self.state.lock().map_err(|_| self.broken())?;
        if state.broken {
            return Err(self.broken());
        }
        let key = self.key.as_ref().map(ChainKey::as_bytes);
        let chained = chain_records(&self.run_id, key, self.clock.as_ref(), &state.tail, records)?;
        let Some(last) = chained.appended.last() else {
            return Ok(chained.appended);
        };
        let first = state.tail.next_seq;
        match store(
            &self.client,
            &self.location,
            first,
            chained.lines.concat(),
            None,
        ) {
            Ok(()) => {
                state.head = Some(last.hash.clone());
                state.tail = chained.tail;
                Ok(chained.appended)
            }
            Err(error) => {
                // The tail is now unknown (or someone else's): nothing more from this writer.
                state.broken = true;
                Err(error)
            }
        }
    }

    fn path(&self) -> Option<&Path> {
        None
    }

    fn head(&self) -> Option<String> {
        self.state.lock().ok().and_then(|s| s.head.clone())
    }
}

/// Stores whole lines (newline-terminated, as a journal file holds them) as records `first..`
/// of the run `location` names, blocking until DynamoDB has them.
pub(super) fn store(
    client: &aws_sdk_dynamodb::Client,
    location: &TableLocation,
    first: u64,
    bytes: Vec<u8>,
    spill: Option<&Spill>,
) -> Result<(), JournalError> {
    let failed = |seq, message| JournalError::Store {
        location: location.to_string(),
        seq,
        message,
    };
    let run_id = location.run().map_err(|message| failed(first, message))?;
    let mut lines = Vec::new();
    for (i, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        // The newline: export puts it back.
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let seq = first + i as u64;
        if line.len() <= MAX_LINE {
            lines.push(Stored::Line(String::from_utf8_lossy(line).into_owned()));
            continue;
        }
        let Some(spill) = spill else {
            return Err(failed(
                seq,
                format!(
                    "the record is {} bytes, more than a DynamoDB item holds (400 KB), and there \
                     is no seal to spill it to",
                    line.len()
                ),
            ));
        };
        // Spilled before its item exists: an item never names an object that is not there.
        let placed = wait_for(spill.put(run_id, seq, line))
            .and_then(|placed| placed)
            .map_err(|message| {
                failed(seq, format!("spilling the record to the seal: {message}"))
            })?;
        lines.push(Stored::Spilled(placed));
    }
    let put = records::put(client, &location.table, run_id, first, &lines);
    match wait_for(put).unwrap_or_else(|message| Err(WriteError::Failed(first, message))) {
        Ok(()) => Ok(()),
        Err(WriteError::Taken(seq)) => Err(JournalError::Taken {
            location: location.to_string(),
            seq,
        }),
        Err(WriteError::Failed(seq, message)) => Err(failed(seq, message)),
    }
}

/// Runs `future` to its end from synchronous code inside (or outside) a runtime.
fn wait_for<F: std::future::Future>(future: F) -> Result<F::Output, String> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            Ok(tokio::task::block_in_place(|| handle.block_on(future)))
        }
        // Blocking the only thread would stop the reactor the write needs.
        Ok(_) => Err("the DynamoDB journal needs tokio's multi-thread runtime".into()),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|runtime| runtime.block_on(future))
            .map_err(|e| format!("starting a runtime for the write: {e}")),
    }
}

/// A run's journal as the file would hold it: every record's line and a newline, in seq order.
/// A record spilled to the seal is an error here: [`export_with`] fetches it.
pub async fn export(
    client: &aws_sdk_dynamodb::Client,
    location: &TableLocation,
) -> Result<Vec<u8>, JournalError> {
    export_with(client, None, location).await
}

/// [`export`], fetching records spilled to the seal bucket with `s3` (each checked against the
/// SHA-256 its item holds).
pub async fn export_with(
    client: &aws_sdk_dynamodb::Client,
    s3: Option<&aws_sdk_s3::Client>,
    location: &TableLocation,
) -> Result<Vec<u8>, JournalError> {
    let read_error = |message: String| JournalError::StoreRead {
        location: location.to_string(),
        message,
    };
    let run_id = location.run().map_err(read_error)?;
    let records = records::read_all(client, &location.table, run_id)
        .await
        .map_err(read_error)?;
    // As stored: a gap (an item deleted) shows as a broken chain when verified.
    let mut bytes = Vec::new();
    for (seq, stored) in &records {
        match stored {
            Stored::Line(line) => bytes.extend_from_slice(line.as_bytes()),
            Stored::Spilled(place) => {
                let s3 = s3.ok_or_else(|| {
                    read_error(format!(
                        "record {seq} is spilled to {place}, and this reader has no S3 client"
                    ))
                })?;
                let line = super::spill::get(s3, place)
                    .await
                    .map_err(|e| read_error(format!("record {seq}: {e}")))?;
                bytes.extend_from_slice(&line);
            }
        }
        bytes.push(b'\n');
    }
    Ok(bytes)
}
