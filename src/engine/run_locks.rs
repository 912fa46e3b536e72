//! A run's resource locks, wherever runs are kept: lock files in the journal directory, or
//! items in the workers' shared table. The same rules decide both ([`crate::lock::decide`]).

use super::Settings;
use crate::journal::Mode;
use crate::lock::{self, LockError, LockOwner, LockSet, TakenOver, TakeoverPolicy};
use crate::table::locks::TableLockSet;

#[derive(Debug)]
pub enum RunLocks {
    File(LockSet),
    Table(TableLockSet),
}

impl Default for RunLocks {
    /// No locks (a run refused before it locked anything).
    fn default() -> Self {
        RunLocks::File(LockSet::default())
    }
}

impl RunLocks {
    /// Locks `keys` for run `run_id`, all or none; a resume takes back its own (stale or
    /// parked) locks, `--force-unlock` a crashed foreign run's.
    pub async fn acquire(
        settings: &Settings,
        keys: &[String],
        run_id: &str,
        mode: Mode,
        resuming: bool,
    ) -> Result<RunLocks, LockError> {
        let owner = LockOwner::new(run_id, mode);
        let policy = TakeoverPolicy {
            resume_of: resuming.then(|| run_id.to_owned()),
            force: settings.force_unlock,
        };
        match &settings.shared {
            Some(shared) => Ok(RunLocks::Table(
                TableLockSet::acquire(shared, keys, &owner, policy).await?,
            )),
            None => Ok(RunLocks::File(lock::acquire(
                &settings.journal_dir,
                keys,
                &owner,
                policy,
            )?)),
        }
    }

    pub fn taken_over(&self) -> Vec<TakenOver> {
        match self {
            RunLocks::File(set) => set.taken_over(),
            RunLocks::Table(set) => set.taken_over(),
        }
    }

    pub async fn release(self) -> Result<(), LockError> {
        match self {
            RunLocks::File(set) => set.release(),
            RunLocks::Table(set) => set.release().await,
        }
    }

    /// Keeps the locks, marked parked, for a run that waits for a person.
    pub async fn park(self) -> Result<(), LockError> {
        match self {
            RunLocks::File(set) => set.park(),
            RunLocks::Table(set) => set.park().await,
        }
    }
}
