//! `firebreak deploy-template`: the stack that runs `serve` for these runbooks.

use super::{DeployTemplateArgs, Exit};
use crate::deploy::{DeployOptions, worker_template};
use crate::runbook;

pub fn run(args: &DeployTemplateArgs) -> Exit {
    let loaded = match super::load_all(&args.files) {
        Ok(loaded) => loaded,
        Err(exit) => return exit,
    };
    let runbooks: Vec<&runbook::Runbook> = loaded.iter().map(|l| &l.runbook).collect();
    let options = DeployOptions {
        seal: args.seal.clone(),
        sign_key: args.sign_key.clone(),
        journal_key_parameter: args.journal_key_parameter.clone(),
    };
    let template = match worker_template(&runbooks, &options) {
        Ok(template) => template,
        Err(error) => {
            eprintln!("error: {error}");
            return Exit::Invalid;
        }
    };
    let text = serde_json::to_string_pretty(&template).expect("a template serializes") + "\n";
    match &args.output {
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => {
                eprintln!("firebreak: wrote {}", path.display());
                Exit::Ok
            }
            Err(error) => {
                eprintln!("error: failed to write {}: {error}", path.display());
                Exit::Invalid
            }
        },
        None => {
            print!("{text}");
            Exit::Ok
        }
    }
}
