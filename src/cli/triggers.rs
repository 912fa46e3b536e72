//! `firebreak triggers`: the runbooks' trigger patterns, as EventBridge rules want them.

use serde_json::json;

use super::{Exit, TriggersArgs};
use crate::check;

pub fn run(args: &TriggersArgs) -> Exit {
    let mut rules = Vec::new();
    for path in &args.files {
        let loaded = match check::load(path) {
            Ok(loaded) => loaded,
            Err(error) => {
                eprintln!("{error}");
                return Exit::Invalid;
            }
        };
        for trigger in &loaded.runbook.triggers {
            if args.eventbridge {
                rules.push(json!({
                    "runbook": loaded.runbook.name,
                    "trigger": trigger.name,
                    "event_pattern": trigger.pattern,
                }));
            } else {
                let params: Vec<String> = trigger
                    .parameters
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect();
                println!("{} / {}", loaded.runbook.name, trigger.name);
                if let Some(description) = &trigger.description {
                    println!("  {description}");
                }
                println!("  pattern: {}", trigger.pattern);
                for param in params {
                    println!("  sets {param}");
                }
            }
        }
    }
    if args.eventbridge {
        println!(
            "{}",
            serde_json::to_string_pretty(&rules).expect("rules serialize")
        );
    }
    Exit::Ok
}
