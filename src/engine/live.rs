//! A run's liveness, wherever runs are kept: on one host, a `flock`ed lease file
//! ([`crate::lease`]); across workers that share no disk, a lease in the shared table kept
//! renewed ([`crate::table::lease::Keeper`]), whose fence the run's clients and journal check
//! before every call and every record.

use super::{EngineError, Settings};
use crate::aws::fence::Fence;
use crate::lease::{LeaseError, RunLease};
use crate::table::lease::{Keeper, LeaseError as TableLeaseError};

/// The run's lease, held until the run ends or its holder dies.
pub enum RunHold {
    File(RunLease),
    Table(Keeper),
}

impl std::fmt::Debug for RunHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunHold::File(lease) => write!(f, "RunHold::File({})", lease.path().display()),
            RunHold::Table(keeper) => write!(f, "RunHold::Table(lost: {})", keeper.lost()),
        }
    }
}

impl From<LeaseError> for EngineError {
    fn from(error: LeaseError) -> Self {
        // As before leases had a second home: a lease file that cannot be taken refuses the run.
        EngineError::Live(error.to_string())
    }
}

impl From<TableLeaseError> for EngineError {
    fn from(error: TableLeaseError) -> Self {
        match error {
            TableLeaseError::Held { .. }
            | TableLeaseError::Lost { .. }
            | TableLeaseError::KeptHere { .. } => {
                EngineError::Live(format!("the run is live on another worker ({error})"))
            }
            TableLeaseError::Table { .. } => EngineError::Table(error.to_string()),
        }
    }
}

impl RunHold {
    /// Takes run `run_id`'s lease where the settings keep runs.
    pub async fn take(settings: &Settings, run_id: &str) -> Result<RunHold, EngineError> {
        match &settings.shared {
            Some(shared) => Ok(RunHold::Table(shared.hold_run(run_id).await?)),
            None => Ok(RunHold::File(RunLease::acquire(
                &settings.journal_dir,
                run_id,
            )?)),
        }
    }

    /// What the run's clients and journal check before acting; none for a local lease (the
    /// kernel ends it only with the process, which then acts no more).
    pub fn fence(&self) -> Option<Fence> {
        match self {
            RunHold::File(_) => None,
            RunHold::Table(keeper) => Some(keeper.fence()),
        }
    }

    /// Gives the lease up at the run's end, so another worker may take the run at once.
    pub async fn release(self) {
        match self {
            RunHold::File(lease) => drop(lease),
            RunHold::Table(keeper) => {
                if let Err(e) = keeper.release().await {
                    tracing::warn!("failed to release the run's lease (it expires anyway): {e}");
                }
            }
        }
    }

    /// Gives up a reservation that was not used (its run id known to nobody).
    pub async fn discard(self) {
        match self {
            RunHold::File(lease) => lease.discard(),
            table => table.release().await,
        }
    }
}
