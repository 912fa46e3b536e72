//! A worker's local journal mirrored into the table: [`TableReplica`] stores every line the
//! file writer is about to write, first, as that run's records — conditional on each seq
//! being free, so of two workers only one can ever write record N — and only while the
//! worker's lease on the run holds. The table is the authority; the file is the worker's
//! working copy, which [`materialize`] rebuilds from the table on any worker that resumes the
//! run.

use std::path::Path;

use super::journal::{export_with, store};
use super::location::TableLocation;
use super::spill::Spill;
use crate::aws::fence::Fence;
use crate::journal::{JournalError, Replica};

/// The table as the second home of one run's journal.
pub struct TableReplica {
    pub client: aws_sdk_dynamodb::Client,
    /// The table and the run.
    pub location: TableLocation,
    /// The worker's lease on the run: no line is stored once it is down.
    pub fence: Option<Fence>,
    /// Where records too large for an item go (the seal).
    pub spill: Option<Spill>,
}

impl Replica for TableReplica {
    fn store(&self, first_seq: u64, lines: &[u8]) -> Result<(), JournalError> {
        if let Some(fence) = &self.fence
            && !fence.holds()
        {
            return Err(JournalError::Store {
                location: self.location.to_string(),
                seq: first_seq,
                message: fence.refusal(),
            });
        }
        store(
            &self.client,
            &self.location,
            first_seq,
            lines.to_vec(),
            self.spill.as_ref(),
        )
    }
}

/// What [`materialize`] found in the table.
#[derive(Debug, PartialEq, Eq)]
pub enum Materialized {
    /// The run has no record in the table.
    Absent,
    /// The local copy now holds the table's records (this many bytes).
    Copied(usize),
}

/// Makes `path` hold the run's journal as the table has it. A local copy that is a prefix of
/// the table's (this worker's own, behind because another worker went on) or a torn version of
/// one is replaced; a local copy with records the table lacks is refused — the table is the
/// authority, and a record that only one worker's disk holds was never fenced.
pub async fn materialize(
    client: &aws_sdk_dynamodb::Client,
    s3: Option<&aws_sdk_s3::Client>,
    location: &TableLocation,
    path: &Path,
) -> Result<Materialized, JournalError> {
    let shared = export_with(client, s3, location).await?;
    if shared.is_empty() {
        return Ok(Materialized::Absent);
    }
    let local = match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(JournalError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    if let Some(local) = &local {
        if *local == shared {
            return Ok(Materialized::Copied(shared.len()));
        }
        // Whole local lines must all be the table's: only a torn last line may differ.
        let whole = local
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |end| end + 1);
        if !shared.starts_with(&local[..whole]) {
            return Err(JournalError::StoreRead {
                location: location.to_string(),
                message: format!(
                    "the local journal {} holds records the table does not; the table is the \
                     run's record — move the local file aside to resume from the table",
                    path.display()
                ),
            });
        }
    }
    let create = |source| JournalError::Create {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(create)?;
    }
    // Written aside, synced, renamed: the working copy is never half a journal.
    let aside = path.with_extension(format!("{:016x}.tmp", fastrand::u64(..)));
    {
        use std::io::Write;
        let mut file = std::fs::File::create_new(&aside).map_err(create)?;
        file.write_all(&shared)
            .and_then(|()| file.sync_all())
            .map_err(create)?;
    }
    std::fs::rename(&aside, path).map_err(create)?;
    Ok(Materialized::Copied(shared.len()))
}
