//! An IAM Identity Center user whose sign-in is compromised. Runs in the management (or
//! delegated administrator) account, in Identity Center's home region. Evidence first
//! (`inventory_user`: account assignments, group memberships), then the user's access is taken
//! away — direct account assignments deleted, group memberships removed, both recorded so the
//! release re-creates exactly them — and, where the runbook says so, a per-user deny is added
//! to the inline policies of the permission sets the user could use, provisioned to their
//! accounts (asynchronous: waited for). `AWSReservedSSO_*` roles are never edited directly:
//! Identity Center owns them and overwrites such edits.

mod deny;
mod inventory;
mod release;
mod remove;
mod user;

pub use deny::DenyUserInPermissionSets;
pub use inventory::InventoryUser;
pub use release::ReleaseUser;
pub use remove::RemoveUserAccess;

use super::{ActionError, StepContext};
