//! `firebreak cases`: one case per resource, as the case indexes record them. Prints; never
//! writes.

use crate::trigger::case_summary;

use super::run::{journal_dir, journal_key};
use super::{CasesArgs, Exit, OutputFormat};

pub fn run(args: &CasesArgs) -> Exit {
    let dir = journal_dir(args.journal_dir.as_ref());
    let key = journal_key();
    let (cases, problems) = case_summary::cases(&dir, key.as_deref());
    for problem in &problems {
        eprintln!("warning: a case index does not read: {problem}");
    }
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&cases).expect("cases serialize")
        ),
        OutputFormat::Text if cases.is_empty() => {
            eprintln!("no cases in {}", dir.display());
        }
        OutputFormat::Text => {
            for case in &cases {
                println!(
                    "{}  ({}; opened {}, joins until {}){}",
                    case.case_key,
                    case.runbook,
                    case.opened_at,
                    case.window_ends,
                    if case.intact {
                        ""
                    } else {
                        "  INDEX CHAIN BROKEN"
                    }
                );
                println!("    resources: {}", case.resources.join(", "));
                for run in &case.runs {
                    println!("    {} run {}: {}", run.role, run.run_id, run.status);
                }
                for finding in &case.findings {
                    println!(
                        "    finding {} {} at {}",
                        finding.finding, finding.action, finding.at
                    );
                }
                for waiting in &case.waiting {
                    println!(
                        "    waits: run {} step `{}` — firebreak approve|deny {} --reason TEXT",
                        waiting.run_id, waiting.step, waiting.run_id
                    );
                }
            }
        }
    }
    if cases.iter().any(|c| !c.intact) {
        return Exit::StepFailed;
    }
    Exit::Ok
}
