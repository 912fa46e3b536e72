use super::{Exit, ValidateArgs};
use crate::check;

pub fn run(args: &ValidateArgs) -> Exit {
    let mut exit = Exit::Ok;
    for path in &args.files {
        match check::load(path) {
            Ok(loaded) => println!(
                "{}: ok ({}, {} steps)",
                path.display(),
                loaded.runbook.name,
                loaded.runbook.steps.len()
            ),
            Err(error) => {
                let count = error.diagnostics().len();
                eprintln!("{error}");
                if count > 1 {
                    eprintln!("{}: {count} errors\n", path.display());
                } else {
                    eprintln!();
                }
                exit = Exit::Invalid;
            }
        }
    }
    exit
}
