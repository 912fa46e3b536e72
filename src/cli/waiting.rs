//! `firebreak approvals`: the runs that wait for a person, read from the journals. Prints; never
//! writes.

use crate::engine::waiting;

use super::run::journal_dir;
use super::{ApprovalsArgs, Exit, OutputFormat};

/// The waiting runs of a journal directory; journals that do not read are warned about, a
/// directory that does not read is an input error.
pub(super) fn waiting_runs(dir: &std::path::Path) -> Result<Vec<waiting::WaitingRun>, Exit> {
    let (runs, unreadable) = waiting::list(dir).map_err(|e| {
        eprintln!(
            "error: cannot read the journal directory {}: {e}",
            dir.display()
        );
        Exit::Invalid
    })?;
    for problem in &unreadable {
        eprintln!("warning: skipped a journal that does not read: {problem}");
    }
    Ok(runs)
}

pub fn run(args: &ApprovalsArgs) -> Exit {
    let dir = journal_dir(args.journal_dir.as_ref());
    let runs = match waiting_runs(&dir) {
        Ok(runs) => runs,
        Err(exit) => return exit,
    };
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&runs).expect("waiting runs serialize")
        ),
        OutputFormat::Text if runs.is_empty() => {
            eprintln!("no run waits for a decision in {}", dir.display());
        }
        OutputFormat::Text => {
            for run in &runs {
                let expires = match (&run.expires_at, run.expired) {
                    (Some(at), true) => format!("EXPIRED at {at}: the next touch denies it"),
                    (Some(at), false) => format!("expires {at}"),
                    (None, _) => "no deadline".into(),
                };
                println!(
                    "{}  {}  step `{}`  waiting since {}  {expires}",
                    run.run_id, run.runbook, run.step, run.since
                );
                println!("    targets: {}", run.targets.join(", "));
                println!("    asks: {}", printable(&run.prompt));
                println!(
                    "    decide: firebreak approve {id} --reason TEXT | firebreak deny {id} --reason TEXT",
                    id = run.run_id
                );
            }
        }
    }
    Exit::Ok
}

/// A journal's text without control characters (a prompt can carry text from an event).
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
