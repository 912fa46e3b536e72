//! Shared state in one DynamoDB table, for workers that share no disk: the journal's records
//! (one item per line, stored verbatim, written only if that seq is not there yet), run leases
//! (holder, expiry, generation), finding claims and resource locks.
//!
//! Files: `location` (`dynamodb://TABLE[/RUN_ID]`), `records` (the items and their conditional
//! writes), `journal` (the journal sink over them), `lease` (leases with a fencing generation,
//! and their keeper), `replica` (a worker's local journal mirrored into the table), `shared`
//! (what the engine and dispatch keep there: journals, run leases, finding claims), `locks`
//! (resource locks), `spill` (records too large for an item, in the seal), `condition` (a
//! refused conditional write told from a failure).

mod condition;
pub mod journal;
pub mod lease;
pub mod location;
pub mod locks;
mod records;
pub mod replica;
pub mod shared;
pub mod spill;

pub use journal::TableJournal;
pub use location::TableLocation;
pub use shared::{Claimed, Shared};
