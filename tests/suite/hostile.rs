//! The hostile input corpus (`tests/fixtures/bad/cases.tsv`): runbooks, parameters and events
//! crafted to break the loader, the templates, the parameter checks and the event path. Each
//! case must end with its exit code and message, having sent nothing to AWS that could change
//! anything — templates and shell syntax in an event are data, never evaluated.
//!
//! `FIREBREAK_BAD_DISCOVER=1` prints what each case does instead of checking it (for writing a
//! new case's row).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::{firebreak, moto, proxy};

const TABLE: &str = "tests/fixtures/bad/cases.tsv";

struct Case {
    name: String,
    command: String,
    input: String,
    args: Vec<String>,
    exit: i32,
    message: String,
}

fn unescape(text: &str) -> String {
    text.replace("\\n", "\n").replace("\\u0000", "\0")
}

fn cases() -> Vec<Case> {
    std::fs::read_to_string(TABLE)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            assert_eq!(cells.len(), 6, "{TABLE}: six cells: {line}");
            Case {
                name: cells[0].to_owned(),
                command: cells[1].to_owned(),
                input: unescape(cells[2]),
                args: cells[3]
                    .split(' ')
                    .filter(|a| !a.is_empty())
                    .map(unescape)
                    .collect(),
                exit: cells[4].parse().unwrap(),
                message: cells[5].to_owned(),
            }
        })
        .collect()
}

/// The GuardDuty EC2 finding fixture with `edit` applied.
fn guardduty(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let text = std::fs::read_to_string("tests/fixtures/events/guardduty-ec2.json")
        .unwrap()
        .replace("INSTANCE_ID", "i-0123456789abcdef0");
    let mut event: Value = serde_json::from_str(&text).unwrap();
    edit(&mut event);
    serde_json::to_vec(&event).unwrap()
}

/// The bytes of a generated input.
fn generate(spec: &str) -> Vec<u8> {
    let (name, argument) = spec.split_once(':').unwrap_or((spec, ""));
    let argument = argument.to_owned();
    match name {
        // Nine levels of ten aliases each: a billion strings if expanded.
        "alias-bomb" => {
            let mut text = String::from("version: 1\nname: t\nsteps: []\nx0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
            for level in 1..10 {
                let refs = vec![format!("*x{}", level - 1); 10].join(", ");
                text.push_str(&format!("x{level}: &x{level} [{refs}]\n"));
            }
            text.into_bytes()
        }
        "deep-yaml" => format!(
            "version: 1\nname: t\nsteps:\n  - id: a\n    action: core.log\n    with: {{ message: {}{} }}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        )
        .into_bytes(),
        "big-event" => guardduty(|e| {
            e["detail"]["service"]["additionalInfo"]["padding"] = json!("A".repeat(10 << 20))
        }),
        "deep-event" => format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        "gd-instance" => guardduty(|e| {
            e["detail"]["resource"]["instanceDetails"]["instanceId"] = json!(argument)
        }),
        "gd-id" => guardduty(|e| e["detail"]["id"] = json!(argument)),
        "gd-account" => guardduty(|e| {
            e["account"] = json!(argument);
            e["detail"]["accountId"] = json!(argument);
        }),
        other => panic!("{TABLE}: no generator `{other}`"),
    }
}

/// The input's path: a file of the corpus, or a generated one written to `dir`.
fn input(case: &Case, dir: &Path) -> PathBuf {
    match case.input.strip_prefix('@') {
        Some(spec) => {
            let path = dir.join("input");
            std::fs::write(&path, generate(spec)).unwrap();
            path
        }
        None => Path::new("tests/fixtures/bad").join(&case.input),
    }
}

struct Ran {
    exit: i32,
    stderr: String,
    calls: usize,
    changes: Vec<String>,
}

fn run(case: &Case, dir: &Path) -> Ran {
    let mut command = firebreak();
    command
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", dir.join("journals"));
    match case.command.as_str() {
        "run" => {
            command.arg("run").arg(input(case, dir)).arg("--yes");
        }
        "run-shipped" => {
            command.args(["run", "runbooks/ec2-instance-compromise.yaml", "--yes"]);
        }
        "run-fleet" => {
            let count: usize = case.input.trim_start_matches("@ids:").parse().unwrap();
            let ids: Vec<String> = (1..=count).map(|n| format!("i-{n:017x}")).collect();
            command.args(["run", "runbooks/ec2-fleet-containment.yaml", "--yes", "-p"]);
            command.arg(format!("instance_ids={}", ids.join(",")));
        }
        "dispatch" => {
            command
                .args(["dispatch", "--runbooks", "runbooks", "--event"])
                .arg(input(case, dir));
        }
        other => panic!("{TABLE}: no command `{other}`"),
    }
    command.args(&case.args);
    proxy::reset();
    let out = command.output().unwrap();
    let calls = proxy::calls();
    Ran {
        exit: out.status.code().unwrap_or(-1),
        // `dispatch` reports each event's outcome on stdout, errors go to stderr.
        stderr: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ),
        calls: calls.len(),
        changes: calls
            .iter()
            .filter(|c| c.changes())
            .map(|c| c.name())
            .collect(),
    }
}

#[test]
fn every_hostile_input_is_refused_with_its_message_and_changes_nothing() {
    let _moto = moto::exclusive_blocking();
    let discover = std::env::var_os("FIREBREAK_BAD_DISCOVER").is_some();
    let all = cases();
    assert!(all.len() >= 60, "{} cases", all.len());
    let mut wrong = Vec::new();
    for case in &all {
        let dir = tempfile::tempdir().unwrap();
        let ran = run(case, dir.path());
        let line = ran
            .stderr
            .lines()
            .find(|l| {
                l.contains("error")
                    || l.contains("refused")
                    || l.contains("nothing to do")
                    || l.contains("must")
            })
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect::<String>();
        if discover {
            println!(
                "{}\t{}\t{}\tcalls {}\tchanges {:?}\t{line}",
                case.name, ran.exit, case.exit, ran.calls, ran.changes
            );
            continue;
        }
        if ran.exit != case.exit {
            wrong.push(format!(
                "{}: exit {} (expected {}): {line}",
                case.name, ran.exit, case.exit
            ));
        }
        if !ran.stderr.contains(&case.message) {
            wrong.push(format!(
                "{}: stderr lacks {:?}:\n{}",
                case.name,
                case.message,
                ran.stderr.chars().take(600).collect::<String>()
            ));
        }
        if !ran.changes.is_empty() {
            wrong.push(format!("{}: sent changes {:?}", case.name, ran.changes));
        }
        // Refused before it began: not one call. (A refused event or target may read first.)
        if case.exit == 2 && ran.calls != 0 {
            wrong.push(format!(
                "{}: {} AWS calls before refusing",
                case.name, ran.calls
            ));
        }
    }
    assert!(!discover, "discovery run: nothing checked");
    assert!(
        wrong.is_empty(),
        "{} of {} cases:\n{}",
        wrong.len(),
        all.len(),
        wrong.join("\n")
    );
}
