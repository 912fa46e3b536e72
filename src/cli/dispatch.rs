//! `firebreak dispatch`: EventBridge events in, matching runbooks run.

use serde_json::Value;

use super::{DispatchArgs, Exit, GlobalArgs, OutputFormat, UnattendedArgs};
use crate::engine::{Mode, Settings};
use crate::trigger::dispatch::{self, Outcome};

/// The runbooks events are matched against, and how the runs they start go (`dispatch`,
/// `serve`): nobody is asked — a run that needs a person's decision waits for one — and
/// break-glass is a person's decision on the command line, never something an event can ask
/// for. Bad input is said on stderr and gives the exit.
pub(super) fn unattended(
    global: &GlobalArgs,
    runbooks_dir: &std::path::Path,
    args: &UnattendedArgs,
    preflight: bool,
) -> Result<(Vec<crate::check::LoadedRunbook>, Settings), Exit> {
    let custody = super::run::custody_of(&args.custody)?;
    let (runbooks, errors) = dispatch::load_runbooks(runbooks_dir);
    for error in &errors {
        eprintln!("{error}");
    }
    if runbooks.is_empty() {
        eprintln!("error: no valid runbooks in {}", runbooks_dir.display());
        return Err(Exit::Invalid);
    }
    let base = super::run::settings(global, args.journal_dir.as_ref(), false, false, preflight);
    let interlocks = &args.interlocks;
    let settings = Settings {
        approvals: crate::engine::Approvals::Nobody,
        max_targets: interlocks.max_targets,
        assume_role: interlocks.assume_role.clone(),
        assume_role_external_id: interlocks.assume_role_external_id.clone(),
        override_protection: None,
        verify_finding: args.verify_finding.setting(),
        custody,
        ..base
    };
    Ok((runbooks, settings))
}

pub fn run(args: &DispatchArgs, global: &GlobalArgs) -> Exit {
    if args.yes {
        eprintln!(
            "error: dispatch never approves for a person: an event is not a decision. A run that \
             needs one waits for it (exit 4, status awaiting_approval); a person gives it with \
             `firebreak resume RUN_ID --yes` at a terminal. Drop --yes."
        );
        return Exit::Invalid;
    }
    let events = match super::read_event(&args.event) {
        Ok(Value::Array(events)) => events,
        Ok(event) => vec![event],
        Err(error) => {
            eprintln!("error: {error}");
            return Exit::Invalid;
        }
    };
    let (runbooks, settings) =
        match unattended(global, &args.runbooks, &args.unattended, !args.no_preflight) {
            Ok(loaded) => loaded,
            Err(exit) => return exit,
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
        // Worst wins: a person must look at a failure before a refusal, at a refusal before a
        // decision that waits; an internal error or an interruption above all.
        let rank = |e: Exit| match e {
            Exit::Ok => 0,
            Exit::AwaitingApproval => 1,
            Exit::StepFailed => 2,
            Exit::Refused => 3,
            Exit::Invalid => 4,
            Exit::Internal => 5,
            Exit::Interrupted => 6,
        };
        if rank(candidate) > rank(exit) {
            exit = candidate;
        }
    };
    for report in &reports {
        for matched in &report.matched {
            match &matched.outcome {
                Outcome::Ran { run }
                | Outcome::Resumed { run }
                | Outcome::Rechecked { run, .. } => {
                    super::run::print_seal(run);
                    worse(super::run::exit_of(run.status))
                }
                Outcome::Duplicate { .. } | Outcome::Joined { .. } => {}
                Outcome::Invalid { .. } => worse(Exit::Invalid),
                Outcome::Refused { .. } => worse(Exit::Refused),
                Outcome::Failed { .. } => worse(Exit::StepFailed),
                Outcome::LeaseLost { .. } => worse(Exit::Interrupted),
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
                        Outcome::Joined { run_id, status, .. } => format!(
                            "joined the case of run {run_id} ({status}); no second containment"
                        ),
                        Outcome::Rechecked {
                            case_run,
                            drift,
                            run,
                            ..
                        } => format!(
                            "rechecked the case of run {case_run} in run {} → {}; {}",
                            run.run_id,
                            run.status.as_str(),
                            if drift.is_empty() {
                                "no drift: the containment held".to_owned()
                            } else {
                                format!("drift contained again: {}", drift.join("; "))
                            }
                        ),
                        Outcome::Invalid { reason } => {
                            format!("refused, invalid parameters: {reason}")
                        }
                        Outcome::Refused { reason } => format!("refused: {reason}"),
                        Outcome::Failed { reason } => format!("failed: {reason}"),
                        Outcome::LeaseLost { run_id, reason } => format!(
                            "run {run_id} stopped, its lease no longer this process's \
                             ({reason}); `firebreak resume {run_id}` carries it on"
                        ),
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
