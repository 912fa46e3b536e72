//! The case report's content, built only from a journal (and its evidence files): what ran,
//! who ran it, every step and AWS call with times and request ids, what changed and what it
//! was before, the evidence with re-checked hashes, and whether the journal verifies.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::journal::{self, Verification};

#[derive(Debug, Clone)]
pub struct Call {
    pub at_ms: i64,
    pub ts: String,
    pub service: String,
    pub operation: String,
    pub outcome: String,
    pub code: Option<String>,
    pub request_id: Option<String>,
    pub duration_ms: i64,
    pub attempt: i64,
    pub targets: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Approval {
    pub at_ms: i64,
    pub prompt: String,
    pub approved: bool,
    pub by: String,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub action: String,
    /// succeeded | failed | skipped | running (no outcome journaled: crashed or interrupted)
    pub status: String,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub started: Option<String>,
    pub input: Option<Value>,
    pub outputs: Option<Value>,
    pub error: Option<String>,
    pub condition: Option<String>,
    pub calls: Vec<Call>,
    pub approvals: Vec<Approval>,
    pub retries: usize,
    pub items: usize,
}

impl Step {
    pub fn duration_ms(&self) -> Option<i64> {
        Some(self.end_ms? - self.start_ms?)
    }
}

#[derive(Debug, Clone)]
pub struct Artifact {
    pub step: String,
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// `None` when the file still matches; otherwise what is wrong.
    pub problem: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub journal: String,
    pub verification: String,
    pub intact: bool,
    pub run_id: String,
    pub runbook_name: String,
    pub runbook_path: String,
    pub runbook_sha256: String,
    pub mode: String,
    pub caller: String,
    pub host: String,
    pub user: String,
    pub started: String,
    pub finished: Option<String>,
    pub status: String,
    pub parameters: Vec<(String, String)>,
    pub steps: Vec<Step>,
    pub evidence: Vec<Artifact>,
    /// Interruptions, resumes, recoveries, lock takeovers: anything outside the step flow.
    pub events: Vec<(String, String)>,
    pub total_ms: i64,
}

fn millis(ts: &str) -> Option<i64> {
    OffsetDateTime::parse(ts, &Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub fn build(path: &std::path::Path, key: Option<&[u8]>) -> Result<Report, journal::JournalError> {
    let verification: Verification = journal::verify(path, key)?;
    let records = journal::read_records(path)?;
    let first = records.first().cloned().unwrap_or(Value::Null);
    let start = millis(&text(&first["ts"])).unwrap_or(0);
    let at = |record: &Value| millis(&text(&record["ts"])).map_or(0, |ms| ms - start);
    let mut steps: Vec<Step> = Vec::new();
    let mut events = Vec::new();
    let mut status = "incomplete".to_owned();
    let mut finished = None;
    let mut last_ms = 0;
    let step_index = |steps: &mut Vec<Step>, id: &str| -> usize {
        if let Some(i) = steps.iter().position(|s| s.id == id) {
            return i;
        }
        steps.push(Step {
            id: id.to_owned(),
            action: String::new(),
            status: "running".into(),
            start_ms: None,
            end_ms: None,
            started: None,
            input: None,
            outputs: None,
            error: None,
            condition: None,
            calls: Vec::new(),
            approvals: Vec::new(),
            retries: 0,
            items: 0,
        });
        steps.len() - 1
    };
    for record in &records {
        let kind = text(&record["type"]);
        let ms = at(record);
        last_ms = last_ms.max(ms);
        let step_id = text(&record["step"]);
        match kind.as_str() {
            "step_started" => {
                let i = step_index(&mut steps, &step_id);
                let step = &mut steps[i];
                step.action = text(&record["action"]);
                // A resumed step starts again: its bar spans from the first start.
                step.start_ms.get_or_insert(ms);
                step.started.get_or_insert(text(&record["ts"]));
                step.status = "running".into();
                if let Some(input) = record.get("input") {
                    step.input = Some(input.clone());
                } else if let Some(items) = record.get("for_each") {
                    step.input = Some(serde_json::json!({"for_each": items}));
                }
            }
            "item_started" => {
                let i = step_index(&mut steps, &step_id);
                steps[i].start_ms.get_or_insert(ms);
                if steps[i].action.is_empty() {
                    steps[i].action = text(&record["action"]);
                }
            }
            "item_succeeded" | "item_failed" => {
                let i = step_index(&mut steps, &step_id);
                steps[i].items += 1;
            }
            "step_succeeded" | "step_failed" | "step_skipped" => {
                let i = step_index(&mut steps, &step_id);
                let step = &mut steps[i];
                step.status = kind.trim_start_matches("step_").to_owned();
                step.start_ms.get_or_insert(ms);
                step.end_ms = Some(ms);
                step.outputs = record.get("outputs").cloned();
                if kind == "step_failed" {
                    step.error = Some(format!(
                        "[{}] {}",
                        text(&record["class"]),
                        text(&record["message"])
                    ));
                }
                if kind == "step_skipped" {
                    step.condition = Some(format!(
                        "{} → {}",
                        text(&record["condition"]),
                        text(&record["rendered"])
                    ));
                }
            }
            "step_retry" => {
                let i = step_index(&mut steps, &step_id);
                steps[i].retries += 1;
            }
            "api_call" => {
                let call = Call {
                    at_ms: ms,
                    ts: text(&record["ts"]),
                    service: text(&record["service"]),
                    operation: text(&record["operation"]),
                    outcome: text(&record["outcome"]),
                    code: record["code"].as_str().map(str::to_owned),
                    request_id: record["request_id"].as_str().map(str::to_owned),
                    duration_ms: record["duration_ms"].as_i64().unwrap_or(0),
                    attempt: record["attempt"].as_i64().unwrap_or(1),
                    targets: record["targets"]
                        .as_array()
                        .map(|t| t.iter().map(text).collect())
                        .unwrap_or_default(),
                };
                let i = step_index(&mut steps, &step_id);
                steps[i].calls.push(call);
            }
            "approval" => {
                let i = step_index(&mut steps, &step_id);
                steps[i].approvals.push(Approval {
                    at_ms: ms,
                    prompt: text(&record["prompt"]),
                    approved: record["approved"] == true,
                    by: text(&record["by"]),
                });
            }
            "run_finished" => {
                status = text(&record["status"]);
                finished = Some(text(&record["ts"]));
            }
            "run_started" | "evidence" | "stack_event" | "command_status" => {}
            "run_interrupted" => {
                status = "interrupted".into();
                events.push((
                    text(&record["ts"]),
                    "interrupted (Ctrl-C); resume carries on".into(),
                ));
            }
            "run_resumed" => events.push((
                text(&record["ts"]),
                format!(
                    "resumed by {} on {}",
                    text(&record["user"]),
                    text(&record["host"])
                ),
            )),
            "journal_recovered" => events.push((
                text(&record["ts"]),
                format!(
                    "torn line {} truncated ({} bytes)",
                    record["torn_line"], record["truncated_bytes"]
                ),
            )),
            "lock_taken_over" => events.push((
                text(&record["ts"]),
                format!(
                    "lock on {} taken over from run {}",
                    text(&record["resource"]),
                    text(&record["previous"]["run_id"])
                ),
            )),
            other => events.push((text(&record["ts"]), other.to_owned())),
        }
    }
    let evidence = artifacts(&records);
    let parameters = first["parameters"]
        .as_object()
        .map(|p| p.iter().map(|(k, v)| (k.clone(), text(v))).collect())
        .unwrap_or_default();
    Ok(Report {
        journal: path.display().to_string(),
        verification: verification.to_string(),
        intact: verification.problem.is_none(),
        run_id: text(&first["run_id"]),
        runbook_name: text(&first["runbook"]["name"]),
        runbook_path: text(&first["runbook"]["path"]),
        runbook_sha256: text(&first["runbook"]["sha256"]),
        mode: text(&first["mode"]),
        caller: first["caller"]["arn"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("unknown ({})", text(&first["caller"]["error"]))),
        host: text(&first["host"]),
        user: text(&first["user"]),
        started: text(&first["ts"]),
        finished,
        status,
        parameters,
        steps,
        evidence,
        events,
        total_ms: last_ms.max(1),
    })
}

/// Every evidence file the journal names, re-hashed now.
fn artifacts(records: &[Value]) -> Vec<Artifact> {
    use sha2::{Digest, Sha256};
    records
        .iter()
        .filter(|r| r["type"] == "evidence")
        .map(|r| {
            let artifact = &r["artifact"];
            let path = text(&artifact["path"]);
            let size = artifact["size"].as_u64().unwrap_or(0);
            let sha256 = text(&artifact["sha256"]);
            let problem = match std::fs::read(&path) {
                Err(e) => Some(format!("cannot read: {e}")),
                Ok(bytes) if bytes.len() as u64 != size => Some(format!(
                    "size is {} bytes, journal says {size}",
                    bytes.len()
                )),
                Ok(bytes) if hex::encode(Sha256::digest(&bytes)) != sha256 => {
                    Some("SHA-256 does not match the journal".into())
                }
                Ok(_) => None,
            };
            Artifact {
                step: text(&r["step"]),
                path,
                size,
                sha256,
                problem,
            }
        })
        .collect()
}
