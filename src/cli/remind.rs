//! `firebreak remind`: a reminder before an approval expires. Meant to run on a schedule (cron,
//! an EventBridge Scheduler task): each waiting run whose deadline is less than `--within` away
//! is resumed with nobody to ask — every interlock runs again (a finding resolved meanwhile
//! stops the run), the run parks again at the same approval with the same deadline, and its
//! `awaiting_approval` notification goes out again marked as a reminder. Once per approval:
//! a run that parked inside the window is not reminded again. Expired approvals are left to
//! the next `approve`, `deny` or `resume`.

use std::sync::Arc;

use serde_json::json;

use crate::engine::{self, Approvals, Settings, waiting};

use super::run::{journal_dir, runtime, settings};
use super::{Exit, GlobalArgs, OutputFormat, RemindArgs};

pub fn run(args: &RemindArgs, global: &GlobalArgs) -> Exit {
    let within = match crate::runbook::duration::parse(&args.within) {
        Ok(within) => within,
        Err(e) => {
            eprintln!("error: --within: {e}");
            return Exit::Invalid;
        }
    };
    let dir = journal_dir(args.journal_dir.as_ref());
    let runs = match super::waiting::waiting_runs(&dir) {
        Ok(runs) => runs,
        Err(exit) => return exit,
    };
    let due: Vec<_> = runs
        .iter()
        .filter(|run| waiting::due_reminder(run, within))
        .collect();
    if due.is_empty() {
        eprintln!(
            "no approval in {} expires within {}",
            dir.display(),
            args.within
        );
        if args.output == OutputFormat::Json {
            println!("[]");
        }
        return Exit::Ok;
    }
    let base = settings(global, args.journal_dir.as_ref(), false, false, true);
    let settings = Settings {
        approvals: Approvals::Nobody,
        reminder: true,
        observer: Arc::new(engine::NullObserver),
        ..base
    };
    let mut exit = Exit::Ok;
    let mut reminded = Vec::new();
    let rt = runtime();
    for run in due {
        let journal = run.journal.display().to_string();
        let outcome = match rt.block_on(engine::resume(&journal, &[], None, &settings)) {
            Ok(outcome) if outcome.status == engine::RunStatus::AwaitingApproval => {
                "reminded".to_owned()
            }
            // A resume checks every interlock again: a finding resolved meanwhile ends the run.
            Ok(outcome) => format!("ended {} (see its journal)", outcome.status.as_str()),
            Err(e) => {
                exit = Exit::StepFailed;
                format!("error: {e}")
            }
        };
        reminded.push(json!({
            "run_id": run.run_id,
            "step": run.step,
            "expires_at": run.expires_at,
            "outcome": outcome,
        }));
    }
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&reminded).expect("reminders serialize")
        ),
        OutputFormat::Text => {
            for entry in &reminded {
                println!(
                    "run {} at `{}` (expires {}): {}",
                    entry["run_id"].as_str().unwrap_or_default(),
                    entry["step"].as_str().unwrap_or_default(),
                    entry["expires_at"].as_str().unwrap_or("?"),
                    entry["outcome"].as_str().unwrap_or_default()
                );
            }
        }
    }
    exit
}
