//! The closed set of actions a runbook can use, and what an action sees while it runs.
//!
//! Each action is a typed input struct in its service's file implementing [`Action`] (name,
//! summary, calls, permissions) and [`Execute`]; [`catalogue`] ties names to types. An action
//! runs with a [`StepContext`]: clients, its identity in the run, and [`RunHooks`] through which
//! the engine journals what it does — the catalogue sits below the engine that drives it.

mod action;
pub mod approval;
mod batch;
mod catalogue;
pub mod cloudformation;
pub mod context;
pub mod core;
pub mod ec2;
pub mod elbv2;
mod error;
pub mod grants;
pub mod iam;
pub mod identitycenter;
pub mod lambda;
mod once;
pub(crate) mod prior;
pub mod reconcile;
pub mod s3;
pub mod shield;
pub mod sns;
pub mod ssm;
pub mod tags;
mod uploads;

pub use crate::journal::Mode;
pub use action::{Action, ActionInfo, Execute, input_schema};
pub use approval::{ApprovalRequest, Decision};
pub use batch::Batches;
pub use catalogue::{
    ACTIONS, ActionInput, ENGINE_CALLS, ENGINE_STEPS, EngineCall, EngineUse, InputError, RunUses,
    WORKER_CALLS, WorkerCall, engine_calls, engine_uses, find, names, permissions,
};
pub use context::{RunContext, RunHooks, StepContext, is_placeholder};
pub use error::ActionError;
pub use once::OnceValues;
