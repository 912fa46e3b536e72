//! `firebreak journal verify|show`.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Exit, JournalCommand, OutputFormat};
use crate::journal;

pub fn run(command: &JournalCommand) -> Exit {
    match command {
        JournalCommand::Verify { journal: path } => {
            let key = super::run::journal_key();
            match journal::verify(path, key.as_deref()) {
                Ok(verification) => {
                    println!("{verification}");
                    let evidence_intact = verify_evidence(path);
                    if verification.problem.is_some() || !evidence_intact {
                        Exit::Invalid
                    } else if !verification.complete {
                        Exit::StepFailed
                    } else {
                        Exit::Ok
                    }
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    Exit::Invalid
                }
            }
        }
        JournalCommand::Show {
            journal: path,
            output,
        } => match journal::read_records(path) {
            Ok(records) => {
                match output {
                    OutputFormat::Json => println!(
                        "{}",
                        serde_json::to_string_pretty(&records).expect("records serialize")
                    ),
                    OutputFormat::Text => print!("{}", timeline(&records)),
                }
                Exit::Ok
            }
            Err(error) => {
                eprintln!("error: {error}");
                Exit::Invalid
            }
        },
    }
}

/// After the chain: every evidence artifact the journal names is still there with its
/// journaled size and SHA-256. Prints `evidence: N artifacts ok` or one line per problem;
/// `false` on any problem.
fn verify_evidence(path: &std::path::Path) -> bool {
    let records = match journal::read_records(path) {
        Ok(records) => records,
        Err(error) => {
            println!("evidence: not checked: {error}");
            return false;
        }
    };
    let problems = journal::check_artifacts(&records);
    if problems.is_empty() {
        let n = journal::evidence::artifacts(&records).len();
        println!("evidence: {n} artifacts ok");
        return true;
    }
    for problem in &problems {
        println!("evidence: {}: {problem}", problem.path);
    }
    false
}

/// A readable timeline: one line per record, with step durations and API call outcomes.
pub fn timeline(records: &[Value]) -> String {
    let mut out = String::new();
    let mut started: std::collections::HashMap<String, String> = Default::default();
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    for record in records {
        let ts = text(&record["ts"]);
        let clock = ts.get(11..23).unwrap_or(&ts).to_owned();
        let step = text(&record["step"]);
        let unit = match record.get("item_index").and_then(Value::as_u64) {
            Some(i) => format!("{step}[{i}]"),
            None => step.clone(),
        };
        let since = |key: &str| {
            started
                .get(key)
                .and_then(|start| millis_between(start, &ts))
                .map(|ms| format!(" ({ms} ms)"))
                .unwrap_or_default()
        };
        let line = match record["type"].as_str().unwrap_or_default() {
            "run_started" => format!(
                "run {} started ({}) — runbook {} (sha256 {}), by {} on {} as {}",
                text(&record["run_id"]),
                text(&record["mode"]),
                text(&record["runbook"]["name"]),
                text(&record["runbook"]["sha256"])
                    .get(..12)
                    .unwrap_or_default(),
                record["caller"]["arn"].as_str().unwrap_or("unknown caller"),
                text(&record["host"]),
                text(&record["user"]),
            ),
            "step_started" | "item_started" => {
                started.insert(unit.clone(), ts.clone());
                let input = record
                    .get("input")
                    .map(|i| format!(" with {i}"))
                    .unwrap_or_default();
                format!("▶ {unit} {}{input}", text(&record["action"]))
            }
            "step_succeeded" | "item_succeeded" => {
                format!("✔ {unit} succeeded{} → {}", since(&unit), record["outputs"])
            }
            "step_failed" | "item_failed" => format!(
                "✘ {unit} failed{} [{}] {}",
                since(&unit),
                text(&record["class"]),
                text(&record["message"])
            ),
            "step_skipped" => format!(
                "⤼ {unit} skipped (when: {} → {})",
                text(&record["condition"]),
                record["rendered"]
            ),
            "step_retry" => format!(
                "↻ {unit} attempt {} failed [{}] {}; retrying in {} ms",
                record["attempt"],
                text(&record["class"]),
                text(&record["message"]),
                record["retry_in_ms"]
            ),
            "api_call" => format!(
                "  {unit} {}:{} {}{} ({} ms, attempt {}, request {})",
                text(&record["service"]),
                text(&record["operation"]),
                text(&record["outcome"]),
                record
                    .get("code")
                    .filter(|c| !c.is_null())
                    .map(|c| format!(" {}", text(c)))
                    .unwrap_or_default(),
                record["duration_ms"],
                record["attempt"],
                text(&record["request_id"]),
            ),
            "approval" => format!(
                "? {unit} approval \"{}\": {} by {}",
                text(&record["prompt"]),
                if record["approved"] == true {
                    "approved"
                } else {
                    "denied"
                },
                text(&record["by"])
            ),
            "run_finished" => format!("run {}", text(&record["status"])),
            "run_interrupted" => "run interrupted (resume carries on)".to_owned(),
            "run_resumed" => format!(
                "run resumed by {} on {}",
                text(&record["user"]),
                text(&record["host"])
            ),
            "journal_recovered" => format!(
                "journal recovered: torn line {} truncated ({} bytes)",
                record["torn_line"], record["truncated_bytes"]
            ),
            "interlock" => format!(
                "interlock {}: {}{}",
                text(&record["check"]),
                match (record["passed"] == true, record["overridden"] == true) {
                    (true, true) => "overridden",
                    (true, false) => "passed",
                    _ => "REFUSED",
                },
                record
                    .get("reason")
                    .filter(|r| !r.is_null())
                    .map(|r| format!(" — {}", text(r)))
                    .unwrap_or_default()
            ),
            "evidence" => format!(
                "  {unit} evidence {} ({} bytes, sha256 {})",
                text(&record["artifact"]["path"]),
                record["artifact"]["size"],
                text(&record["artifact"]["sha256"])
                    .get(..16)
                    .unwrap_or_default()
            ),
            "preflight" => match record["checked"] == true {
                true => format!(
                    "preflight: permissions simulated for {}",
                    text(&record["principal"])
                ),
                false => format!("preflight: {}", text(&record["error"])),
            },
            "notification" => format!(
                "notification {} → {}: {}",
                text(&record["event"]),
                text(&record["topic_arn"]),
                text(&record["outcome"])
            ),
            other => format!("{other} {}", compact_payload(record)),
        };
        let _ = writeln!(out, "{clock}  {:>4}  {line}", text(&record["seq"]));
    }
    out
}

fn compact_payload(record: &Value) -> String {
    let mut payload = record.clone();
    if let Value::Object(map) = &mut payload {
        for key in ["seq", "ts", "run_id", "type", "prev", "hash"] {
            map.remove(key);
        }
    }
    payload.to_string()
}

fn millis_between(start: &str, end: &str) -> Option<i64> {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    let start = OffsetDateTime::parse(start, &Rfc3339).ok()?;
    let end = OffsetDateTime::parse(end, &Rfc3339).ok()?;
    Some((end - start).whole_milliseconds() as i64)
}
