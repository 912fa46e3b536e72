//! `firebreak journal seal`: completes a run's seal after a failed upload or a crash.

use std::path::PathBuf;

use super::{CustodyArgs, Exit, GlobalArgs};
use crate::engine::{self, EngineError};

pub fn run(
    target: &str,
    dir: Option<&PathBuf>,
    custody: &CustodyArgs,
    global: &GlobalArgs,
) -> Exit {
    let custody = match super::run::custody_of(custody) {
        Ok(custody) => custody,
        Err(exit) => return exit,
    };
    let settings = super::run::settings(global, dir, false, false, true);
    let result = super::run::runtime()
        .block_on(async { engine::complete_seal(target, custody, &settings).await });
    match result {
        Ok(report) if report.failures.is_empty() => {
            println!("{}", super::run::sealed_line(&report));
            Exit::Ok
        }
        Ok(report) => {
            eprintln!(
                "WARNING: SEAL STILL INCOMPLETE at {}: {}",
                report.location,
                report.failures.join("; ")
            );
            Exit::StepFailed
        }
        Err(EngineError::Invalid(message)) => {
            eprintln!("error: {message}");
            Exit::Invalid
        }
        Err(error @ (EngineError::Live(_) | EngineError::Lock(_))) => {
            eprintln!("firebreak: {error}");
            Exit::Refused
        }
        Err(error) => {
            eprintln!("error: {error}");
            Exit::StepFailed
        }
    }
}
