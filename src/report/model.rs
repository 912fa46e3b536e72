//! The case report's content, built only from a journal (and its evidence files): what ran,
//! who ran it, every step and AWS call with times and request ids, what changed and what it
//! was before, the evidence with re-checked hashes, and whether the journal verifies.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::journal::{self, Event, Record, Verification};

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
    /// Items that failed (a fan-out's, or a group's inner step's) and that skipped it.
    pub failed_items: usize,
    pub skipped_items: usize,
}

/// One target's time to isolation.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// The step (a group's inner step as `<group>.<inner>`).
    pub step: String,
    /// The instance: the item, or the step's `instance_id`.
    pub target: String,
    pub after_run_start_ms: u64,
    pub after_finding_ms: Option<u64>,
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
    /// Each target's time to isolation, in the order they were isolated.
    pub isolations: Vec<Isolation>,
    /// Where the run was sealed (`--seal`), and its signed statements.
    pub custody: super::custody::Custody,
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
    let records = journal::read(path)?;
    let started = records.first().and_then(|r| match &r.event {
        Event::RunStarted(started) => Some((r, started)),
        _ => None,
    });
    let start = records.first().and_then(|r| millis(&r.ts)).unwrap_or(0);
    let at = |record: &Record| millis(&record.ts).map_or(0, |ms| ms - start);
    let mut steps: Vec<Step> = Vec::new();
    let mut events = Vec::new();
    let mut status = "incomplete".to_owned();
    let mut finished = None;
    let mut last_ms = 0;
    let mut isolations = Vec::new();
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
            failed_items: 0,
            skipped_items: 0,
        });
        steps.len() - 1
    };
    for record in &records {
        let ms = at(record);
        last_ms = last_ms.max(ms);
        match &record.event {
            Event::StepStarted(e) => {
                let i = step_index(&mut steps, &e.step);
                let step = &mut steps[i];
                step.action = e.action.clone();
                // A resumed step starts again: its bar spans from the first start.
                step.start_ms.get_or_insert(ms);
                step.started.get_or_insert(record.ts.clone());
                step.status = "running".into();
                if let Some(input) = &e.input {
                    step.input = Some(input.clone());
                } else if let Some(items) = &e.for_each {
                    step.input = Some(serde_json::json!({ "for_each": items }));
                }
            }
            Event::ItemStarted(e) => {
                let i = step_index(&mut steps, &e.step);
                steps[i].start_ms.get_or_insert(ms);
                if steps[i].action.is_empty() {
                    steps[i].action = e.action.clone();
                }
            }
            Event::ItemSucceeded(e) => {
                let i = step_index(&mut steps, &e.step);
                steps[i].items += 1;
                isolations.extend(isolation(e));
            }
            Event::ItemFailed(e) => {
                let i = step_index(&mut steps, &e.step);
                steps[i].items += 1;
                steps[i].failed_items += 1;
                if steps[i].error.is_none() {
                    steps[i].error = Some(format!("[{}] {}", e.class, e.message));
                }
            }
            Event::StepSkipped(e) if e.item_index.is_some() => {
                let i = step_index(&mut steps, &e.step);
                steps[i].skipped_items += 1;
            }
            Event::StepSucceeded(e) => {
                let step = end_step(&mut steps, step_index, &e.step, "succeeded", ms);
                step.outputs = Some(e.outputs.clone());
                isolations.extend(isolation(e));
            }
            Event::StepFailed(e) => {
                let step = end_step(&mut steps, step_index, &e.step, "failed", ms);
                step.outputs = e.outputs.clone();
                step.error = Some(format!("[{}] {}", e.class, e.message));
            }
            Event::StepSkipped(e) => {
                let step = end_step(&mut steps, step_index, &e.step, "skipped", ms);
                step.outputs = None;
                step.condition = Some(format!("{} → {}", e.condition, text(&e.rendered)));
            }
            Event::StepRetry(e) => {
                let i = step_index(&mut steps, &e.step);
                steps[i].retries += 1;
            }
            Event::ApiCall(e) => {
                let call = Call {
                    at_ms: ms,
                    ts: record.ts.clone(),
                    service: e.service.clone(),
                    operation: e.operation.clone(),
                    outcome: e.outcome.clone(),
                    code: e.code.clone().flatten(),
                    request_id: e.request_id.clone().flatten(),
                    duration_ms: e.duration_ms as i64,
                    attempt: i64::from(e.attempt),
                    targets: e.targets.clone(),
                };
                let i = step_index(&mut steps, &e.step);
                steps[i].calls.push(call);
            }
            Event::Approval(e) => {
                let i = step_index(&mut steps, &e.step);
                steps[i].approvals.push(Approval {
                    at_ms: ms,
                    prompt: e.prompt.clone(),
                    approved: e.approved,
                    by: e.by.clone(),
                });
            }
            Event::RunFinished(e) => {
                status = e.status.as_str().to_owned();
                finished = Some(record.ts.clone());
            }
            Event::Decision(e) => events.push((
                record.ts.clone(),
                format!("decision on `{}`: {}", e.step, e.describe()),
            )),
            Event::RunStarted(_)
            | Event::CaseOpened(_)
            | Event::FindingJoined(_)
            | Event::Evidence(_)
            | Event::StackEvent(_)
            | Event::CommandStatus(_)
            | Event::Intent(_)
            | Event::Sealed(_)
            | Event::SealFailed(_)
            | Event::Signed(_) => {}
            Event::RunInterrupted(_) => {
                status = "interrupted".into();
                events.push((
                    record.ts.clone(),
                    "interrupted (Ctrl-C); resume carries on".into(),
                ));
            }
            Event::RunResumed(e) => events.push((
                record.ts.clone(),
                format!("resumed by {} on {}", e.user, e.host),
            )),
            Event::JournalRecovered(e) => events.push((
                record.ts.clone(),
                format!(
                    "torn line {} truncated ({} bytes)",
                    e.torn_line, e.truncated_bytes
                ),
            )),
            Event::LeaseTaken(e) => events.push((
                record.ts.clone(),
                format!(
                    "run taken up by worker {} (lease generation {})",
                    e.holder, e.generation
                ),
            )),
            Event::LockTakenOver(e) => events.push((
                record.ts.clone(),
                format!(
                    "lock on {} taken over from run {}",
                    e.resource,
                    text(&e.previous["run_id"])
                ),
            )),
            Event::Interlock(_) | Event::Preflight(_) | Event::Notification(_) => {
                events.push((record.ts.clone(), record.event.kind().to_owned()))
            }
            // A kind this firebreak does not know (a newer engine's): shown, not interpreted.
            Event::Other(other) => events.push((
                record.ts.clone(),
                format!(
                    "{}{} {}",
                    other.kind,
                    if other.malformed.is_some() {
                        " (unreadable)"
                    } else {
                        ""
                    },
                    serde_json::Value::Object(other.fields.clone())
                ),
            )),
        }
    }
    end_inner_steps(&mut steps);
    let evidence = artifacts(&records);
    let (run_id, runbook_name, runbook_path, runbook_sha256, mode, caller, host, user, parameters) =
        match started {
            Some((record, e)) => (
                record.run_id.clone(),
                e.runbook.name.clone(),
                e.runbook.path.clone(),
                e.runbook.sha256.clone(),
                e.mode.as_str().to_owned(),
                e.caller["arn"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("unknown ({})", text(&e.caller["error"]))),
                e.host.clone(),
                e.user.clone(),
                e.parameters
                    .iter()
                    .map(|(k, v)| (k.clone(), text(v)))
                    .collect(),
            ),
            None => Default::default(),
        };
    Ok(Report {
        journal: path.display().to_string(),
        verification: verification.to_string(),
        intact: verification.problem.is_none(),
        run_id,
        runbook_name,
        runbook_path,
        runbook_sha256,
        mode,
        caller,
        host,
        user,
        started: records.first().map(|r| r.ts.clone()).unwrap_or_default(),
        finished,
        status,
        parameters,
        steps,
        evidence,
        events,
        total_ms: last_ms.max(1),
        isolations,
        custody: super::custody::Custody::from_records(&records),
    })
}

impl Isolation {
    /// The time since the finding as a report cell: `1234 ms`, or `—` without a finding.
    pub fn after_finding(&self) -> String {
        self.after_finding_ms
            .map(|ms| format!("{ms} ms"))
            .unwrap_or_else(|| "—".into())
    }
}

impl Report {
    /// "48 targets isolated: first 1.2 s, median 4.0 s, last 11.3 s after the run started"
    /// (and after the finding, when a finding started the run); `None` if nothing was.
    pub fn isolation_summary(&self) -> Option<String> {
        let spread = |mut ms: Vec<u64>| -> Option<String> {
            ms.sort_unstable();
            let seconds = |v: u64| format!("{:.1} s", v as f64 / 1000.0);
            Some(format!(
                "first {}, median {}, last {}",
                seconds(*ms.first()?),
                seconds(ms[ms.len() / 2]),
                seconds(*ms.last()?)
            ))
        };
        let run = spread(
            self.isolations
                .iter()
                .map(|i| i.after_run_start_ms)
                .collect(),
        )?;
        let n = self.isolations.len();
        let mut text = format!(
            "{n} target{} isolated: {run} after the run started",
            if n == 1 { "" } else { "s" }
        );
        if let Some(finding) = spread(
            self.isolations
                .iter()
                .filter_map(|i| i.after_finding_ms)
                .collect(),
        ) {
            text.push_str(&format!("; {finding} after the finding was last updated"));
        }
        Some(text)
    }
}

/// A group's inner steps end with their group: failed if an item failed there, skipped if
/// every item skipped it, else succeeded.
fn end_inner_steps(steps: &mut [Step]) {
    let ends: Vec<(String, Option<i64>, String)> = steps
        .iter()
        .filter(|s| s.status != "running" && !s.id.contains('.'))
        .map(|s| (s.id.clone(), s.end_ms, s.status.clone()))
        .collect();
    for step in steps.iter_mut().filter(|s| s.status == "running") {
        let Some((group, _)) = step.id.split_once('.') else {
            continue;
        };
        let Some((_, end_ms, _)) = ends.iter().find(|(id, _, _)| id == group) else {
            continue;
        };
        step.end_ms = *end_ms;
        step.status = if step.failed_items > 0 {
            "failed"
        } else if step.items == 0 && step.skipped_items > 0 {
            "skipped"
        } else {
            "succeeded"
        }
        .into();
    }
}

fn isolation(e: &crate::journal::event::StepSucceeded) -> Option<Isolation> {
    let isolated = e.isolated?;
    let target = match &e.item {
        Some(item) => text(item),
        None => text(&e.outputs["instance_id"]),
    };
    Some(Isolation {
        step: e.step.clone(),
        target,
        after_run_start_ms: isolated.after_run_start_ms,
        after_finding_ms: isolated.after_finding_ms,
    })
}

/// A step's end: its status and end time.
fn end_step<'s>(
    steps: &'s mut Vec<Step>,
    index: impl Fn(&mut Vec<Step>, &str) -> usize,
    id: &str,
    status: &str,
    ms: i64,
) -> &'s mut Step {
    let i = index(steps, id);
    let step = &mut steps[i];
    step.status = status.to_owned();
    step.start_ms.get_or_insert(ms);
    step.end_ms = Some(ms);
    step
}

/// Every evidence file the journal names, re-hashed now.
fn artifacts(records: &[Record]) -> Vec<Artifact> {
    use sha2::{Digest, Sha256};
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Evidence(e) => Some(e),
            _ => None,
        })
        .map(|e| {
            let path = e.artifact.path.clone();
            let size = e.artifact.size;
            let sha256 = e.artifact.sha256.clone();
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
                step: e.step.clone(),
                path,
                size,
                sha256,
                problem,
            }
        })
        .collect()
}
