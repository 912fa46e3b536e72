//! firebreak — an incident-response runbook engine for AWS.
//!
//! The data's way through: a runbook file is loaded with positions ([`runbook::load`]),
//! validated, combined with parameters into a [`plan::Plan`] (pure, offline), and — in later
//! stages — executed step by step by the engine, which journals every step and AWS call.
//!
//! Module map:
//! - [`cli`] — commands, output formatting, exit codes
//! - [`runbook`] — the format: model, loader, validation, parameters
//! - [`template`] — strict Handlebars with typed single-expression rendering
//! - [`plan`] — runbook + parameters → rendered steps, calls, permissions
//! - [`actions`] — the closed catalogue of actions
//! - [`engine`] — runs and resumes runbooks, journaling every step and call
//! - [`aws`] — SDK configuration and error classification
//! - [`schema`] — the JSON Schema of the format
//! - [`redact`] — keeping secrets out of output

pub mod actions;
pub mod aws;
pub mod cli;
pub mod diagnostic;
pub mod engine;
pub mod event;
pub mod journal;
pub mod lock;
pub mod plan;
pub mod policy;
pub mod redact;
pub mod report;
pub mod runbook;
pub mod schema;
pub mod template;
pub mod trigger;
