//! firebreak — an incident-response runbook engine for AWS.
//!
//! The data's way through: a runbook file is parsed with positions and held against the action
//! catalogue ([`check::load`]), combined with parameters into a [`plan::Plan`] (pure, offline),
//! and executed step by step by the [`engine`], which journals every step and AWS call.
//!
//! Floors, from the ground up; a module imports only from its own floor or below (a test keeps
//! it so: `tests/layering.rs`):
//! - leaves: [`journal`] (the hash-chained record and its typed vocabulary), [`aws`] (SDK
//!   configuration, error classification), [`lock`] and [`lease`] (who holds a resource, whether
//!   a run is alive), [`template`], [`diagnostic`], [`redact`], [`event`] (reading finding
//!   events), [`host`]
//! - [`runbook`] — the format only: model, YAML with positions, parameters, durations
//! - [`report`] — case reports built from a journal; [`custody`] — sealing journals and
//!   evidence in S3 Object Lock, signed heads, reading a seal back
//! - [`actions`] — the closed catalogue, and the context an action runs in
//! - [`check`] (a runbook held against the catalogue), [`policy`], [`schema`]
//! - [`engine`] (admission, the step loop, one unit's execution, replay), [`plan`] (offline)
//! - [`trigger`] — event matching, dispatch, de-duplication
//! - [`cli`] — commands; the only place that prints

pub mod actions;
pub mod aws;
pub mod check;
pub mod cli;
pub mod custody;
pub mod deploy;
pub mod diagnostic;
pub mod engine;
pub mod event;
pub mod host;
pub mod journal;
pub mod lease;
pub mod lock;
pub mod plan;
pub mod policy;
pub mod redact;
pub mod report;
pub mod runbook;
pub mod schema;
pub mod table;
pub mod template;
pub mod trigger;
pub mod worker;
