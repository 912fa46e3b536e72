//! `firebreak dispatch`: EventBridge events in, matching runbooks run.

use serde_json::Value;

use super::{DispatchArgs, Exit, GlobalArgs, OutputFormat};
use crate::engine::{Mode, RunStatus, Settings};
use crate::trigger::dispatch::{self, Outcome};

pub fn run(args: &DispatchArgs, global: &GlobalArgs) -> Exit {
    let events = match super::read_event(&args.event) {
        Ok(Value::Array(events)) => events,
        Ok(event) => vec![event],
        Err(error) => {
            eprintln!("error: {error}");
            return Exit::Invalid;
        }
    };
    let (runbooks, errors) = dispatch::load_runbooks(&args.runbooks);
    for error in &errors {
        eprintln!("{error}");
    }
    if runbooks.is_empty() {
        eprintln!("error: no valid runbooks in {}", args.runbooks.display());
        return Exit::Invalid;
    }
    let base = super::run::settings(
        global,
        args.journal_dir.as_ref(),
        args.yes,
        false,
        !args.no_preflight,
    );
    // Break-glass is a person's decision on the command line, never something an event can ask for.
    let settings = Settings {
        max_targets: args.interlocks.max_targets,
        assume_role: args.interlocks.assume_role.clone(),
        override_protection: None,
        ..base
    };
    let mode = if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Live
    };
    let reports = super::run::runtime().block_on(async {
        super::run::watch_interrupts(settings.interrupted.clone());
        dispatch::dispatch(&events, &runbooks, mode, &settings).await
    });

    let mut exit = Exit::Ok;
    let mut worse = |candidate: Exit| {
        let rank = |e: Exit| match e {
            Exit::Ok => 0,
            Exit::StepFailed => 1,
            Exit::Refused => 2,
            Exit::Invalid => 3,
            Exit::Internal => 4,
            Exit::Interrupted => 5,
        };
        if rank(candidate) > rank(exit) {
            exit = candidate;
        }
    };
    for report in &reports {
        for matched in &report.matched {
            match &matched.outcome {
                Outcome::Ran { run } | Outcome::Resumed { run } => worse(match run.status {
                    RunStatus::Succeeded => Exit::Ok,
                    RunStatus::Failed => Exit::StepFailed,
                    RunStatus::Refused => Exit::Refused,
                    RunStatus::Interrupted => Exit::Interrupted,
                }),
                Outcome::Duplicate { .. } => {}
                Outcome::Invalid { .. } => worse(Exit::Invalid),
                Outcome::Refused { .. } => worse(Exit::Refused),
                Outcome::Failed { .. } => worse(Exit::StepFailed),
            }
        }
    }
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&reports).expect("reports serialize")
        ),
        OutputFormat::Text => {
            for report in &reports {
                let id = report.event_id.as_deref().unwrap_or("(no id)");
                let kind = report.detail_type.as_deref().unwrap_or("(no detail-type)");
                if report.matched.is_empty() {
                    println!("event {id} ({kind}): no runbook matches; nothing to do");
                }
                for matched in &report.matched {
                    let what = match &matched.outcome {
                        Outcome::Ran { run } => {
                            format!("ran {} → {}", run.run_id, run.status.as_str())
                        }
                        Outcome::Resumed { run } => {
                            format!("resumed {} → {}", run.run_id, run.status.as_str())
                        }
                        Outcome::Duplicate { run_id, status, .. } => {
                            format!("duplicate of run {run_id} ({status}); skipped")
                        }
                        Outcome::Invalid { reason } => {
                            format!("refused, invalid parameters: {reason}")
                        }
                        Outcome::Refused { reason } => format!("refused: {reason}"),
                        Outcome::Failed { reason } => format!("failed: {reason}"),
                    };
                    println!(
                        "event {id} ({kind}): {} via trigger {}: {what}",
                        matched.runbook, matched.trigger
                    );
                }
            }
        }
    }
    exit
}
