//! `firebreak journal verify|show|export`, on a file or on a run in a DynamoDB table.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Exit, GlobalArgs, JournalCommand, OutputFormat, verify_seal};
use crate::journal::{self, Event, Record};
use crate::table::{self, TableLocation};

pub fn run(command: &JournalCommand, global: &GlobalArgs) -> Exit {
    match command {
        JournalCommand::Verify {
            journal: target,
            against,
            kms,
            public_key,
            bucket_owner,
        } => {
            let check = verify_seal::SignatureCheck {
                kms: *kms,
                public_key: public_key.as_deref(),
            };
            if target.starts_with("s3://") {
                return verify_seal::remote(target, bucket_owner.as_deref(), check, global);
            }
            if TableLocation::is_table(target) {
                return verify_table(target, global);
            }
            let path = std::path::Path::new(target);
            let key = super::run::journal_key();
            let local = match journal::verify(path, key.as_deref()) {
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
                    return Exit::Invalid;
                }
            };
            if against.is_none() && !check.kms && check.public_key.is_none() {
                return local;
            }
            let custody = verify_seal::local(
                path,
                against.as_deref(),
                bucket_owner.as_deref(),
                check,
                global,
            );
            worst(local, custody)
        }
        JournalCommand::Seal {
            run,
            journal_dir,
            custody,
        } => super::seal::run(run, journal_dir.as_ref(), custody, global),
        JournalCommand::Bench { dir, records } => bench(dir.as_deref(), *records),
        JournalCommand::Export { journal } => match journal_bytes(journal, global) {
            Ok(bytes) => {
                use std::io::Write as _;
                let mut stdout = std::io::stdout().lock();
                match stdout.write_all(&bytes).and_then(|()| stdout.flush()) {
                    Ok(()) => Exit::Ok,
                    Err(error) => {
                        eprintln!("error: writing the export: {error}");
                        Exit::Invalid
                    }
                }
            }
            Err(error) => {
                eprintln!("error: {error}");
                Exit::Invalid
            }
        },
        JournalCommand::Show {
            journal: target,
            output,
        } => match journal_bytes(target, global).and_then(|bytes| {
            journal::read_from_bytes(std::path::Path::new(target), &bytes)
                .map_err(|e| e.to_string())
        }) {
            Ok(records) => {
                match output {
                    OutputFormat::Json => {
                        let values: Vec<Value> = records.iter().map(|r| r.to_value()).collect();
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&values).expect("records serialize")
                        )
                    }
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

/// A journal's bytes: the file's, or a table run's records in order.
pub(super) fn journal_bytes(target: &str, global: &GlobalArgs) -> Result<Vec<u8>, String> {
    if !TableLocation::is_table(target) {
        return std::fs::read(target).map_err(|e| format!("failed to read journal {target}: {e}"));
    }
    let location = TableLocation::parse(target)?;
    location.run()?;
    super::run::runtime().block_on(async {
        let config = crate::aws::load_sdk_config(&global.aws_options()).await;
        let client = aws_sdk_dynamodb::Client::new(&config);
        // A record too large for an item is in the seal bucket: fetched, its hash checked.
        let s3 = crate::aws::Clients::new(&config).s3;
        let bytes = table::journal::export_with(&client, Some(&s3), &location)
            .await
            .map_err(|e| e.to_string())?;
        if bytes.is_empty() {
            return Err(format!("{location}: the table holds no record of that run"));
        }
        Ok(bytes)
    })
}

/// `journal verify dynamodb://TABLE/RUN_ID`: the chain, as for a file.
fn verify_table(target: &str, global: &GlobalArgs) -> Exit {
    let bytes = match journal_bytes(target, global) {
        Ok(bytes) => bytes,
        Err(error) => {
            eprintln!("error: {error}");
            return Exit::Invalid;
        }
    };
    let key = super::run::journal_key();
    let verification = journal::verify_bytes(&bytes, key.as_deref());
    println!("{verification}");
    println!("evidence: in the run's seal (journal verify s3://BUCKET/PREFIX/RUN_ID)");
    if verification.problem.is_some() {
        Exit::Invalid
    } else if !verification.complete {
        Exit::StepFailed
    } else {
        Exit::Ok
    }
}

/// After the chain: every evidence artifact the journal names is still there with its
/// journaled size and SHA-256. Prints `evidence: N artifacts ok` or one line per problem;
/// `false` on any problem.
fn verify_evidence(path: &std::path::Path) -> bool {
    let records = match journal::read(path) {
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
/// Kinds this firebreak does not know are shown with their fields.
pub fn timeline(records: &[Record]) -> String {
    let mut out = String::new();
    let mut started: std::collections::HashMap<String, String> = Default::default();
    for record in records {
        let ts = &record.ts;
        let clock = printable(ts.get(11..23).unwrap_or(ts));
        let unit = match (record.event.step(), record.event.item_index()) {
            (Some(step), Some(i)) => format!("{step}[{i}]"),
            (Some(step), None) => step.to_owned(),
            _ => String::new(),
        };
        let since = |key: &str| {
            started
                .get(key)
                .and_then(|start| millis_between(start, ts))
                .map(|ms| format!(" ({ms} ms)"))
                .unwrap_or_default()
        };
        let line = match &record.event {
            Event::RunStarted(e) => format!(
                "run {} started ({}) — runbook {} (sha256 {}), by {} on {} as {}",
                record.run_id,
                e.mode.as_str(),
                e.runbook.name,
                e.runbook.sha256.get(..12).unwrap_or_default(),
                e.caller["arn"].as_str().unwrap_or("unknown caller"),
                e.host,
                e.user,
            ),
            Event::StepStarted(e) | Event::ItemStarted(e) => {
                started.insert(unit.clone(), ts.clone());
                let input = e
                    .input
                    .as_ref()
                    .map(|i| format!(" with {i}"))
                    .unwrap_or_default();
                format!("▶ {unit} {}{input}", e.action)
            }
            Event::StepSucceeded(e) | Event::ItemSucceeded(e) => {
                let isolated = e
                    .isolated
                    .map(|i| {
                        let finding = i
                            .after_finding_ms
                            .map(|ms| format!(", {ms} ms after the finding"))
                            .unwrap_or_default();
                        format!(
                            " — isolated {} ms after the run started{finding}",
                            i.after_run_start_ms
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "✔ {unit} succeeded{}{isolated} → {}",
                    since(&unit),
                    e.outputs
                )
            }
            Event::StepFailed(e) | Event::ItemFailed(e) => format!(
                "✘ {unit} failed{} [{}] {}",
                since(&unit),
                e.class,
                e.message
            ),
            Event::StepSkipped(e) => {
                format!("⤼ {unit} skipped (when: {} → {})", e.condition, e.rendered)
            }
            Event::StepRetry(e) => format!(
                "↻ {unit} attempt {} failed [{}] {}; retrying in {} ms",
                e.attempt, e.class, e.message, e.retry_in_ms
            ),
            Event::ApiCall(e) => format!(
                "  {unit} {}:{} {}{} ({} ms, attempt {}, request {})",
                e.service,
                e.operation,
                e.outcome,
                e.code
                    .clone()
                    .flatten()
                    .map(|c| format!(" {c}"))
                    .unwrap_or_default(),
                e.duration_ms,
                e.attempt,
                e.request_id.clone().flatten().unwrap_or_default(),
            ),
            Event::Approval(e) => format!(
                "? {unit} approval \"{}\": {} by {}",
                e.prompt,
                if e.approved { "approved" } else { "denied" },
                e.by
            ),
            Event::Decision(e) => format!("! decision on `{}`: {}", e.step, e.describe()),
            Event::CaseOpened(e) => format!(
                "case {} opened by run {} ({})",
                e.case_key, e.case_run, e.finding
            ),
            Event::FindingJoined(e) => format!(
                "finding {} {} the case of run {}{}",
                e.finding,
                e.action,
                e.case_run,
                e.recheck_run
                    .as_ref()
                    .map(|r| format!(" (recheck run {r})"))
                    .unwrap_or_default()
            ),
            Event::RunFinished(e) => format!("run {}", e.status.as_str()),
            Event::RunInterrupted(_) => "run interrupted (resume carries on)".to_owned(),
            Event::RunResumed(e) => format!("run resumed by {} on {}", e.user, e.host),
            Event::JournalRecovered(e) => format!(
                "journal recovered: torn line {} truncated ({} bytes)",
                e.torn_line, e.truncated_bytes
            ),
            Event::Interlock(e) => format!(
                "interlock {}: {}{}",
                e.check,
                match (e.passed, e.overridden == Some(true)) {
                    (true, true) => "overridden",
                    (true, false) => "passed",
                    _ => "REFUSED",
                },
                e.reason
                    .as_ref()
                    .map(|r| format!(" — {r}"))
                    .unwrap_or_default()
            ),
            Event::Sealed(e) => format!(
                "sealed {} → s3://{}/{} (version {}, {} until {})",
                e.what.as_str(),
                e.bucket,
                e.key,
                e.version_id.as_deref().unwrap_or("-"),
                e.retention_mode.as_deref().unwrap_or("no retention"),
                e.retain_until.as_deref().unwrap_or("-")
            ),
            Event::SealFailed(e) => format!(
                "SEAL FAILED ({}{}): {}",
                e.what.as_str(),
                e.key.as_ref().map(|k| format!(" {k}")).unwrap_or_default(),
                e.error
            ),
            Event::Signed(e) => format!(
                "signed records 1–{} (head {}) with {}",
                e.statement.records,
                e.statement.head.get(..16).unwrap_or_default(),
                e.statement.key_id
            ),
            Event::Evidence(e) => format!(
                "  {unit} evidence {} ({} bytes, sha256 {})",
                e.artifact.path,
                e.artifact.size,
                e.artifact.sha256.get(..16).unwrap_or_default()
            ),
            Event::Preflight(e) => match e.checked {
                true => format!(
                    "preflight: permissions simulated for {}",
                    e.principal.as_deref().unwrap_or_default()
                ),
                false => format!("preflight: {}", e.error.as_deref().unwrap_or_default()),
            },
            Event::Notification(e) => format!(
                "notification {} → {}: {}",
                e.event,
                e.topic_arn.as_deref().unwrap_or_default(),
                e.outcome
            ),
            Event::StackEvent(e) => format!(
                "  {unit} stack {} {} {}{}",
                e.stack_name,
                e.logical_resource_id.as_deref().unwrap_or("?"),
                e.resource_status.as_deref().unwrap_or("?"),
                e.reason
                    .as_ref()
                    .map(|r| format!(" — {r}"))
                    .unwrap_or_default()
            ),
            Event::CommandStatus(e) => format!(
                "  {unit} command {} on {}: {}",
                e.command_id, e.instance_id, e.status
            ),
            Event::Intent(e) => format!(
                "  {unit} about to {} {}: [{}] → {}",
                e.operation,
                e.resource,
                e.from.join(", "),
                e.to.join(" → ")
            ),
            Event::LeaseTaken(e) => format!(
                "run taken up by worker {} (lease generation {})",
                e.holder, e.generation
            ),
            Event::LockTakenOver(e) => format!(
                "lock on {} taken over from run {}",
                e.resource,
                e.previous["run_id"].as_str().unwrap_or("unknown")
            ),
            Event::Other(other) => format!(
                "{}{} {}",
                other.kind,
                if other.malformed.is_some() {
                    " (unreadable by this firebreak)"
                } else {
                    " (unknown to this firebreak)"
                },
                Value::Object(other.fields.clone())
            ),
        };
        let _ = writeln!(out, "{clock}  {:>4}  {}", record.seq, printable(&line));
    }
    out
}

/// Journal text without control characters: strings from events and AWS errors must not move
/// the cursor or change the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn millis_between(start: &str, end: &str) -> Option<i64> {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    let start = OffsetDateTime::parse(start, &Rfc3339).ok()?;
    let end = OffsetDateTime::parse(end, &Rfc3339).ok()?;
    Some((end - start).whole_milliseconds() as i64)
}

/// `firebreak journal bench`: durable records per second on the journal's disk.
fn bench(dir: Option<&std::path::Path>, records: usize) -> Exit {
    let dir = dir
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| super::run::journal_dir(None));
    if let Err(error) = std::fs::create_dir_all(&dir) {
        eprintln!("error: cannot create {}: {error}", dir.display());
        return Exit::Invalid;
    }
    println!(
        "durable journal appends, {records} records each way, in {}",
        dir.display()
    );
    match journal::throughput::measure(&dir, records) {
        Ok(rows) => {
            print!("{}", journal::throughput::table(&rows));
            Exit::Ok
        }
        Err(error) => {
            eprintln!(
                "error: the journal benchmark failed in {}: {error}",
                dir.display()
            );
            Exit::Invalid
        }
    }
}

/// The worse of two verification exits (2 over 1 over 0).
fn worst(a: Exit, b: Exit) -> Exit {
    let rank = |e: &Exit| match e {
        Exit::Ok => 0,
        Exit::StepFailed => 1,
        _ => 2,
    };
    if rank(&b) > rank(&a) { b } else { a }
}
