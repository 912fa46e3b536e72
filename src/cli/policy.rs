//! `firebreak policy`: the least-privilege IAM policy for runbooks.

use super::{Exit, OutputFormat, PolicyArgs};
use crate::actions::RunUses;
use crate::{policy, runbook};

pub fn run(args: &PolicyArgs) -> Exit {
    let loaded = match super::load_all(&args.files) {
        Ok(loaded) => loaded,
        Err(exit) => return exit,
    };
    let runbooks: Vec<&runbook::Runbook> = loaded.iter().map(|l| &l.runbook).collect();
    let seal = match args
        .seal
        .as_deref()
        .map(crate::custody::SealTarget::parse)
        .transpose()
    {
        Ok(seal) => seal,
        Err(error) => {
            eprintln!("error: --seal: {error}");
            return Exit::Invalid;
        }
    };
    let uses = RunUses {
        drills: !args.no_drills,
        assume_role: args.assume_role.is_some(),
        seal: seal.is_some(),
        sign: args.sign_key.is_some(),
    };
    let scope = policy::EngineScope {
        assume_role: args.assume_role.as_deref(),
        seal_bucket: seal.as_ref().map(|s| s.bucket.as_str()),
        sign_key: args.sign_key.as_deref(),
        worker: args
            .queue_arn
            .as_deref()
            .map(|queue_arn| policy::WorkerScope {
                queue_arn,
                table: args.table.as_deref(),
                journal_key_parameter: args.journal_key_parameter.as_deref(),
            }),
    };
    let document = policy::document(&runbooks, uses, scope);
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&document).expect("a policy serializes")
        ),
        OutputFormat::Text => {
            let names: Vec<&str> = runbooks.iter().map(|r| r.name.as_str()).collect();
            println!("IAM policy for firebreak running: {}", names.join(", "));
            for statement in document["Statement"].as_array().into_iter().flatten() {
                println!("\n{}:", statement["Sid"].as_str().unwrap_or_default());
                for action in statement["Action"].as_array().into_iter().flatten() {
                    println!("  allow {}", action.as_str().unwrap_or_default());
                }
                for resource in statement["Resource"].as_array().into_iter().flatten() {
                    println!("    on {}", resource.as_str().unwrap_or_default());
                }
                if let Some(condition) = statement.get("Condition") {
                    println!("    when {condition}");
                }
            }
            println!(
                "\n(`--output json` prints the policy document to attach to the engine's role)"
            );
        }
    }
    Exit::Ok
}
