//! `firebreak report`.

use super::{Exit, ReportArgs, ReportFormat};
use crate::report;

pub fn run(args: &ReportArgs) -> Exit {
    let key = super::run::journal_key();
    let built = match report::build(&args.journal, key.as_deref()) {
        Ok(built) => built,
        Err(error) => {
            eprintln!("error: {error}");
            return Exit::Invalid;
        }
    };
    let text = match args.format {
        ReportFormat::Markdown => report::markdown::render(&built),
        ReportFormat::Html => report::html::render(&built),
    };
    match &args.output {
        Some(path) => {
            if let Err(error) = std::fs::write(path, text) {
                eprintln!("error: failed to write {}: {error}", path.display());
                return Exit::Invalid;
            }
            eprintln!("firebreak: report written to {}", path.display());
        }
        None => print!("{text}"),
    }
    if !built.intact {
        eprintln!(
            "firebreak: the journal does not verify: {}",
            built.verification
        );
    }
    Exit::Ok
}
