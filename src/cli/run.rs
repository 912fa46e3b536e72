//! `firebreak run` and `firebreak resume`: the engine behind a terminal.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::progress::TerminalObserver;
use super::{Exit, GlobalArgs, OutputFormat, ResumeArgs, RunArgs};
use crate::actions::shield;
use crate::engine::{self, EngineError, Mode, RunOutcome, RunStatus, Settings};

/// `--journal-dir`, else `FIREBREAK_JOURNAL_DIR`, else `$XDG_STATE_HOME/firebreak/runs`, else
/// `~/.local/state/firebreak/runs`.
pub fn journal_dir(flag: Option<&PathBuf>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.clone();
    }
    if let Some(dir) = std::env::var_os("FIREBREAK_JOURNAL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into()))
                .join(".local/state")
        });
    state.join("firebreak/runs")
}

/// The journal's HMAC key, when `FIREBREAK_JOURNAL_KEY` is set.
pub fn journal_key() -> Option<Vec<u8>> {
    std::env::var("FIREBREAK_JOURNAL_KEY")
        .ok()
        .filter(|k| !k.is_empty())
        .map(String::into_bytes)
}

pub(super) fn settings(
    global: &GlobalArgs,
    dir: Option<&PathBuf>,
    yes: bool,
    force: bool,
    preflight: bool,
) -> Settings {
    Settings {
        approvals: super::approve::from_flags(yes),
        observer: Arc::new(TerminalObserver::for_stderr()),
        force_unlock: force,
        aws: global.aws_options(),
        journal_key: journal_key(),
        preflight,
        ..Settings::new(journal_dir(dir))
    }
}

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // As for the main thread (see main.rs): a Security Hub finding's deserialization.
        .thread_stack_size(32 << 20)
        .build()
        .expect("the tokio runtime starts")
}

/// Ctrl-C once: finish the call in flight, journal the interruption, exit 130. Twice: now —
/// reads in flight are abandoned — except that an interface between its two isolation moves
/// gets its second move first. Every journal record written is durable, so the run resumes.
pub(super) fn watch_interrupts(flag: Arc<AtomicBool>) {
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if flag.swap(true, Ordering::SeqCst) {
                let moving = shield::in_flight();
                if moving > 0 {
                    eprintln!(
                        "firebreak: interrupted again; stopping once {moving} isolation move(s) in flight have finished"
                    );
                    shield::idle().await;
                } else {
                    eprintln!("firebreak: interrupted again; stopping now");
                }
                std::process::exit(Exit::Interrupted as i32);
            }
            eprintln!(
                "firebreak: interrupt received; finishing the step in flight (Ctrl-C again to stop now)"
            );
        }
    });
}

pub fn run(args: &RunArgs, global: &GlobalArgs) -> Exit {
    let custody = match custody_of(&args.custody) {
        Ok(custody) => custody,
        Err(exit) => return exit,
    };
    let (loaded, event) = match super::load_inputs(&args.file, args.event.as_deref()) {
        Ok(inputs) => inputs,
        Err(exit) => return exit,
    };
    let settings = settings(
        global,
        args.journal_dir.as_ref(),
        args.yes,
        args.force_unlock,
        !args.no_preflight,
    );
    let settings = Settings {
        max_targets: args.interlocks.max_targets,
        raise_max_targets: true,
        assume_role: args.interlocks.assume_role.clone(),
        assume_role_external_id: args.interlocks.assume_role_external_id.clone(),
        override_protection: args
            .override_protection
            .then(|| args.reason.clone().unwrap_or_default()),
        verify_finding: args.verify_finding.setting(),
        custody,
        ..settings
    };
    let mode = if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Live
    };
    let table = match super::table_args::choose(args.table.journal.as_deref(), "") {
        Ok(choice) => choice.table,
        Err(exit) => return exit,
    };
    let result = runtime().block_on(async {
        let settings = super::table_args::with_table(settings, table, global).await;
        watch_interrupts(settings.interrupted.clone());
        engine::start(loaded, &args.params, event, mode, &settings).await
    });
    report(result, args.output)
}

/// Resumes `target` (a run id, a journal, or `dynamodb://TABLE/RUN_ID`) with `settings`, in
/// the workers' table when `journal` or the target names one; exit 2 on a bad table.
pub(super) fn resume_in(
    settings: Settings,
    journal: Option<&str>,
    target: &str,
    params: &[(String, String)],
    runbook: Option<&std::path::Path>,
    global: &GlobalArgs,
) -> Result<Result<engine::RunOutcome, engine::EngineError>, Exit> {
    let choice = super::table_args::choose(journal, target)?;
    Ok(runtime().block_on(async {
        let settings = super::table_args::with_table(settings, choice.table, global).await;
        watch_interrupts(settings.interrupted.clone());
        engine::resume(&choice.target, params, runbook, &settings).await
    }))
}

pub fn resume(args: &ResumeArgs, global: &GlobalArgs) -> Exit {
    let custody = match custody_of(&args.custody) {
        Ok(custody) => custody,
        Err(exit) => return exit,
    };
    let settings = settings(
        global,
        args.journal_dir.as_ref(),
        args.yes,
        args.force_unlock,
        true,
    );
    let settings = Settings {
        max_targets: args.interlocks.max_targets,
        raise_max_targets: true,
        assume_role: args.interlocks.assume_role.clone(),
        assume_role_external_id: args.interlocks.assume_role_external_id.clone(),
        override_protection: args
            .override_protection
            .then(|| args.reason.clone().unwrap_or_default()),
        custody,
        ..settings
    };
    let result = match resume_in(
        settings,
        args.table.journal.as_deref(),
        &args.run,
        &args.params,
        args.runbook.as_deref(),
        global,
    ) {
        Ok(result) => result,
        Err(exit) => return exit,
    };
    report(result, args.output)
}

pub(super) fn report(result: Result<RunOutcome, EngineError>, output: OutputFormat) -> Exit {
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(EngineError::Invalid(message)) => {
            for line in message.lines() {
                eprintln!("error: {line}");
            }
            return Exit::Invalid;
        }
        Err(EngineError::Refused(message)) => {
            eprintln!("firebreak: {message}");
            return Exit::Refused;
        }
        Err(error @ (EngineError::Lock(_) | EngineError::Live(_))) => {
            eprintln!("firebreak: {error}");
            return Exit::Refused;
        }
        // Stopped, not failed: resumable like a run interrupted by Ctrl-C.
        Err(error @ EngineError::LeaseLost { .. }) => {
            eprintln!("firebreak: {error}");
            return Exit::Interrupted;
        }
        Err(error @ EngineError::Internal(_)) => {
            eprintln!("error: {error}");
            return Exit::Internal;
        }
        Err(other) => {
            eprintln!("error: {other}");
            return Exit::StepFailed;
        }
    };
    print_seal(&outcome);
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&outcome).expect("an outcome serializes")
        ),
        OutputFormat::Text => {
            for step in &outcome.steps {
                println!(
                    "{:<10} {}",
                    format!("{:?}", step.status).to_lowercase(),
                    step.id
                );
            }
            if let Some(drill) = &outcome.drill {
                println!("drill verdict:");
                println!("  would succeed:       {}", list(&drill.would_succeed));
                println!("  would be denied:     {}", list(&drill.would_be_denied));
                println!("  could not be checked: {}", list(&drill.could_not_check));
            }
            println!(
                "run {} {} ({}) — journal {}",
                outcome.run_id,
                outcome.status.as_str(),
                outcome.mode.as_str(),
                outcome.journal.display()
            );
        }
    }
    exit_of(outcome.status)
}

/// `--seal` and friends as the engine's setting; a malformed location exits 2.
pub(super) fn custody_of(
    args: &super::CustodyArgs,
) -> Result<Option<crate::journal::event::Custody>, Exit> {
    args.custody().map_err(|error| {
        eprintln!("error: {error}");
        Exit::Invalid
    })
}

/// Says where the run was sealed, and loudly when the seal is incomplete (the run's exit code
/// stays the run's: containment does not depend on the seal).
pub(super) fn print_seal(outcome: &RunOutcome) {
    let Some(seal) = &outcome.seal else {
        return;
    };
    if seal.failures.is_empty() {
        eprintln!("{}", sealed_line(seal));
    } else {
        eprintln!(
            "WARNING: SEAL INCOMPLETE for run {} at {}: {} — run `firebreak journal seal {}` to \
             complete it",
            outcome.run_id,
            seal.location,
            seal.failures.join("; "),
            outcome.run_id
        );
    }
}

/// `sealed: s3://… — journal KEY, head signed`
pub(super) fn sealed_line(seal: &crate::custody::sealer::SealReport) -> String {
    format!(
        "sealed: {}{}{}",
        seal.location,
        seal.journal_key
            .as_ref()
            .map(|k| format!(" — journal {k}"))
            .unwrap_or_default(),
        if seal.signed { ", head signed" } else { "" }
    )
}

/// The exit code of a run that ended with `status`.
pub(super) fn exit_of(status: RunStatus) -> Exit {
    match status {
        RunStatus::Succeeded => Exit::Ok,
        RunStatus::Failed => Exit::StepFailed,
        RunStatus::Refused => Exit::Refused,
        RunStatus::Interrupted => Exit::Interrupted,
        RunStatus::AwaitingApproval => Exit::AwaitingApproval,
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "—".into()
    } else {
        items.join(", ")
    }
}
