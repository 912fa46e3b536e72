//! `firebreak run` and `resume` end to end: the built binary against moto, journals checked.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{firebreak, moto};
use serde_json::Value;

const CANARY: &str = "CANARY-tok-7d41e9";

fn cmd(journal_dir: &Path) -> Command {
    let mut command = firebreak();
    command
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", journal_dir);
    command
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

fn ran(command: &mut Command) -> Ran {
    let out = command.output().expect("firebreak runs");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn four_steps(dir: &Path) -> Command {
    let mut command = cmd(dir);
    command.args([
        "run",
        "tests/fixtures/engine/four-steps.yaml",
        "-p",
        "instance_ids=i-0123456789abcdef0,i-0fedcba9876543210,i-00000000000000001",
        "-p",
        &format!("api_token={CANARY}"),
        "--output",
        "json",
    ]);
    command
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn of_type<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == kind).collect()
}

fn verify(path: &Path) -> Ran {
    ran(firebreak().args(["journal", "verify"]).arg(path))
}

#[test]
fn a_run_journals_every_step_and_verifies() {
    let _moto = moto::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let run = ran(four_steps(dir.path()).arg("--yes"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outcome: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(outcome["status"], "succeeded");
    assert_eq!(outcome["mode"], "live");
    let ids: Vec<&str> = outcome["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["declare", "each", "approve", "after"]);
    // Fan-out outputs are per item, in item order.
    let items: Vec<&str> = outcome["steps"][1]["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["item"].as_str().unwrap())
        .collect();
    assert_eq!(
        items,
        [
            "i-0123456789abcdef0",
            "i-0fedcba9876543210",
            "i-00000000000000001"
        ]
    );
    assert_eq!(outcome["steps"][2]["outputs"]["approved"], true);
    assert_eq!(
        outcome["steps"][3]["outputs"]["message"],
        "approved by flag (--yes)"
    );

    let journal = PathBuf::from(outcome["journal"].as_str().unwrap());
    let run_id = outcome["run_id"].as_str().unwrap();
    assert_eq!(journal, dir.path().join(format!("{run_id}.jsonl")));
    assert!(
        run.stderr.contains(&format!("run {run_id} started")),
        "{}",
        run.stderr
    );
    let records = records(&journal);
    let first = &records[0];
    assert_eq!(first["type"], "run_started");
    assert_eq!(first["caller"]["account"], "123456789012");
    assert_eq!(first["parameters"]["api_token"], "[redacted]");
    assert_eq!(first["runbook"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(of_type(&records, "item_succeeded").len(), 3);
    let approval = of_type(&records, "approval");
    assert_eq!(approval.len(), 1);
    assert_eq!(approval[0]["by"], "flag (--yes)");
    assert_eq!(records.last().unwrap()["type"], "run_finished");
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record["seq"], (i + 1) as u64);
        assert_eq!(record["run_id"], run_id);
    }
    let verified = verify(&journal);
    assert_eq!(verified.code, 0, "{}", verified.stdout);
    assert!(
        verified
            .stdout
            .starts_with(&format!("ok: {} records, head ", records.len())),
        "{}",
        verified.stdout
    );

    let shown = ran(firebreak().args(["journal", "show"]).arg(&journal));
    assert_eq!(shown.code, 0);
    for expected in [
        "▶ declare core.log",
        "✔ each[2] succeeded",
        "? approve approval",
        "run succeeded",
    ] {
        assert!(
            shown.stdout.contains(expected),
            "missing `{expected}` in\n{}",
            shown.stdout
        );
    }
}

#[test]
fn secrets_never_reach_journal_logs_or_output() {
    let _moto = moto::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let secret_key = "CANARY-secret-access-key-31c9";
    let session_token = "CANARY-session-token-8b2e";
    let run = ran(four_steps(dir.path())
        .env("AWS_SECRET_ACCESS_KEY", secret_key)
        .env("AWS_SESSION_TOKEN", session_token)
        .args(["--yes", "-vvv"]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let journal = std::fs::read_to_string(
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .unwrap(),
    )
    .unwrap();
    for (what, text) in [
        ("journal", &journal),
        ("stdout", &run.stdout),
        ("stderr", &run.stderr),
    ] {
        assert!(!text.contains(CANARY), "the canary leaked into {what}");
        assert!(
            !text.contains(secret_key),
            "the secret access key leaked into {what}"
        );
        assert!(
            !text.contains(session_token),
            "the session token leaked into {what}"
        );
    }
    assert!(
        journal.contains("declared with token [redacted]"),
        "{journal}"
    );
}

/// Nobody to ask (no terminal, no `--yes`): the run waits for a person — exit 4, status
/// `awaiting_approval`, nothing after the approval done — and `resume --yes` finishes it.
#[test]
fn approval_without_terminal_or_yes_waits_with_exit_4() {
    let _moto = moto::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let run = ran(four_steps(dir.path()).stdin(std::process::Stdio::null()));
    assert_eq!(run.code, 4, "{}", run.stderr);
    let outcome: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(outcome["status"], "awaiting_approval");
    let journal = PathBuf::from(outcome["journal"].as_str().unwrap());
    let waiting = records(&journal);
    let approval = &of_type(&waiting, "approval")[0];
    assert_eq!(approval["parked"], true, "{approval}");
    assert_eq!(approval["approved"], false);
    assert!(
        of_type(&waiting, "step_started")
            .iter()
            .all(|r| r["step"] != "after")
    );
    assert_eq!(waiting.last().unwrap()["status"], "awaiting_approval");
    assert!(
        run.stderr.contains("resume"),
        "tells what to do: {}",
        run.stderr
    );

    let resumed = ran(cmd(dir.path()).args(["resume"]).arg(&journal).args([
        "-p",
        &format!("api_token={CANARY}"),
        "--yes",
    ]));
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let records = records(&journal);
    assert!(
        of_type(&records, "step_started")
            .iter()
            .any(|r| r["step"] == "after"),
        "the step after the approval ran on resume"
    );
    assert_eq!(records.last().unwrap()["status"], "succeeded");
}

#[test]
fn continue_goes_on_abort_stops_and_exit_is_1() {
    let _moto = moto::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let run = ran(cmd(dir.path()).args([
        "run",
        "tests/fixtures/engine/failures.yaml",
        "--output",
        "json",
    ]));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let outcome: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(outcome["status"], "failed");
    let statuses: Vec<(&str, &str)> = outcome["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("first", "succeeded"),
            ("tolerated", "failed"),
            ("skipped", "skipped"),
            ("fatal", "failed")
        ]
    );
    let records = records(Path::new(outcome["journal"].as_str().unwrap()));
    let skipped = of_type(&records, "step_skipped");
    assert_eq!(skipped[0]["rendered"], false);
    let failed = of_type(&records, "step_failed");
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0]["continued"], true);
    assert_eq!(failed[1]["continued"], false);
    assert!(
        failed[1]["message"]
            .as_str()
            .unwrap()
            .contains("steps.first.outputs.missing"),
        "{}",
        failed[1]
    );
    assert!(!records.iter().any(|r| r["step"] == "never_reached"));
}

#[test]
fn a_held_lock_refuses_a_second_run_with_the_holders_id() {
    let _moto = moto::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    // A live run: it holds its lease (this process is its process).
    let owner =
        firebreak::lock::LockOwner::new("20261128T000000Z-aaaaaa", firebreak::journal::Mode::Live);
    let _lease = firebreak::lease::RunLease::acquire(dir.path(), &owner.run_id).unwrap();
    let held = firebreak::lock::acquire(
        dir.path(),
        &[moto_key("i-0fedcba9876543210")],
        &owner,
        firebreak::lock::TakeoverPolicy {
            resume_of: None,
            force: false,
        },
    )
    .unwrap();
    let run = ran(four_steps(dir.path()).args(["--yes", "--force-unlock"]));
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("20261128T000000Z-aaaaaa"),
        "{}",
        run.stderr
    );
    // The refusal is journaled (M12), and nothing ran.
    let outcome: Value = serde_json::from_str(&run.stdout).unwrap();
    let refused = records(Path::new(outcome["journal"].as_str().unwrap()));
    assert_eq!(refused.last().unwrap()["refused_by"], "lock");
    assert!(of_type(&refused, "step_started").is_empty());
    held.release().unwrap();
    let run = ran(four_steps(dir.path()).arg("--yes"));
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn tampering_is_named_and_incomplete_is_not_tampering() {
    let _moto = moto::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let run = ran(four_steps(dir.path()).arg("--yes"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outcome: Value = serde_json::from_str(&run.stdout).unwrap();
    let journal = PathBuf::from(outcome["journal"].as_str().unwrap());
    let text = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let write = |name: &str, lines: &[String], newline: bool| -> PathBuf {
        let path = dir.path().join(name);
        let mut body = lines.join("\n");
        if newline {
            body.push('\n');
        }
        std::fs::write(&path, body).unwrap();
        path
    };
    let owned: Vec<String> = lines.iter().map(|l| l.to_string()).collect();

    // Edit the first step's recorded action.
    let started = owned
        .iter()
        .position(|l| l.contains("\"type\":\"step_started\""))
        .unwrap();
    let mut edited = owned.clone();
    edited[started] = edited[started].replacen("core.log", "core.LOG", 1);
    assert_ne!(edited[started], owned[started]);
    let check = verify(&write("edited.jsonl", &edited, true));
    assert_eq!(check.code, 2);
    assert!(
        check
            .stdout
            .contains(&format!("tampered: line {}", started + 1)),
        "{}",
        check.stdout
    );

    let mut deleted = owned.clone();
    deleted.remove(4);
    let check = verify(&write("deleted.jsonl", &deleted, true));
    assert_eq!(check.code, 2);
    assert!(
        check.stdout.contains("tampered: line 5"),
        "{}",
        check.stdout
    );

    let mut inserted = owned.clone();
    inserted.insert(2, owned[1].clone());
    let check = verify(&write("inserted.jsonl", &inserted, true));
    assert_eq!(check.code, 2);
    assert!(
        check.stdout.contains("tampered: line 3"),
        "{}",
        check.stdout
    );

    let mut reordered = owned.clone();
    reordered.swap(5, 6);
    let check = verify(&write("reordered.jsonl", &reordered, true));
    assert_eq!(check.code, 2);
    assert!(
        check.stdout.contains("tampered: line 6"),
        "{}",
        check.stdout
    );

    let truncated: Vec<String> = owned[..owned.len() - 2].to_vec();
    let check = verify(&write("truncated.jsonl", &truncated, true));
    assert_eq!(check.code, 1, "{}", check.stdout);
    assert!(check.stdout.starts_with("incomplete:"), "{}", check.stdout);

    let mut torn = owned.clone();
    let last = torn.pop().unwrap();
    torn.push(last[..last.len() / 2].to_owned());
    let check = verify(&write("torn.jsonl", &torn, false));
    assert_eq!(check.code, 2);
    assert!(
        check
            .stdout
            .starts_with(&format!("torn: line {}", owned.len())),
        "{}",
        check.stdout
    );
}

#[test]
fn a_step_that_outlives_its_timeout_fails_naming_it() {
    let _moto = moto::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let run = ran(cmd(dir.path()).args([
        "run",
        "tests/fixtures/engine/slow.yaml",
        "-p",
        "wait=10ms",
        "--output",
        "json",
    ]));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let outcome: Value = serde_json::from_str(&run.stdout).unwrap();
    let records = records(Path::new(outcome["journal"].as_str().unwrap()));
    let failed = of_type(&records, "step_failed");
    assert_eq!(failed[0]["step"], "bounded");
    assert_eq!(failed[0]["class"], "timeout");
    assert!(
        failed[0]["message"]
            .as_str()
            .unwrap()
            .contains("timed out after 1s"),
        "{}",
        failed[0]
    );
}

#[test]
fn ctrl_c_finishes_the_step_journals_the_interruption_and_resume_carries_on() {
    let _moto = moto::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let child = cmd(dir.path())
        .args(["run", "tests/fixtures/engine/slow.yaml", "-p", "wait=2s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the first step is in flight (its start is journaled).
    wait_for_record(dir.path(), "step_started");
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let journal = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let before = records(&journal);
    // The step in flight finished before the run stopped.
    assert_eq!(of_type(&before, "step_succeeded")[0]["step"], "pause");
    assert_eq!(before.last().unwrap()["type"], "run_interrupted");
    assert!(!before.iter().any(|r| r["step"] == "bounded"));
    let resumed = ran(cmd(dir.path()).arg("resume").arg(&journal));
    assert_eq!(resumed.code, 1, "{}", resumed.stderr); // `bounded` times out, as designed
    let after = records(&journal);
    assert_eq!(of_type(&after, "step_succeeded").len(), 1, "pause ran once");
    assert_eq!(of_type(&after, "run_resumed").len(), 1);
    assert_eq!(verify(&journal).code, 0);
}

#[test]
fn a_keyed_chain_verifies_only_with_its_key() {
    let _moto = moto::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let key = "journal-key-for-tests";
    let run = ran(four_steps(dir.path())
        .env("FIREBREAK_JOURNAL_KEY", key)
        .arg("--yes"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outcome: Value = serde_json::from_str(&run.stdout).unwrap();
    let journal = PathBuf::from(outcome["journal"].as_str().unwrap());
    assert_eq!(records(&journal)[0]["chain"], "hmac-sha256");
    let keyed = ran(firebreak()
        .env("FIREBREAK_JOURNAL_KEY", key)
        .args(["journal", "verify"])
        .arg(&journal));
    assert_eq!(keyed.code, 0, "{}", keyed.stdout);
    let unkeyed = verify(&journal);
    assert_eq!(unkeyed.code, 2, "{}", unkeyed.stdout);
    assert!(
        unkeyed.stdout.contains("tampered: line 1"),
        "{}",
        unkeyed.stdout
    );
    assert!(unkeyed.stdout.contains("key"), "{}", unkeyed.stdout);
}

/// The lock key of a resource in moto's account and region.
fn moto_key(resource: &str) -> String {
    firebreak::lock::resource_key("123456789012", "us-east-1", resource)
}

/// A lock file left by a run whose process is gone (nobody holds its lease).
fn stale_lock(dir: &Path, resource: &str, run_id: &str) {
    let owner = firebreak::lock::LockOwner::new(run_id, firebreak::journal::Mode::Live);
    let locks = firebreak::lock::acquire(
        dir,
        &[moto_key(resource)],
        &owner,
        firebreak::lock::TakeoverPolicy::default(),
    )
    .unwrap();
    std::mem::forget(locks); // leave the file behind, as a crash would
}

#[test]
fn a_crashed_runs_lock_is_taken_over_only_with_force_unlock() {
    let _moto = moto::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    stale_lock(dir.path(), "i-0123456789abcdef0", "20261128T000000Z-dead00");
    let refused = ran(four_steps(dir.path()).arg("--yes"));
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("20261128T000000Z-dead00"),
        "{}",
        refused.stderr
    );
    let forced = ran(four_steps(dir.path()).args(["--yes", "--force-unlock"]));
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    let outcome: Value = serde_json::from_str(&forced.stdout).unwrap();
    let records = records(Path::new(outcome["journal"].as_str().unwrap()));
    let taken = of_type(&records, "lock_taken_over");
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0]["resource"], moto_key("i-0123456789abcdef0"));
    assert_eq!(taken[0]["previous"]["run_id"], "20261128T000000Z-dead00");
}

#[test]
fn resume_truncates_a_torn_last_line_and_journals_the_recovery() {
    let _moto = moto::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let child = cmd(dir.path())
        .args(["run", "tests/fixtures/engine/slow.yaml", "-p", "wait=2s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_record(dir.path(), "step_started");
    // SAFETY: killing our own child, like a power cut.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait_with_output();
    let journal = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let good = records(&journal).len();
    // A partial write of the next record.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    std::io::Write::write_all(&mut file, br#"{"seq":99,"ts":"2026-"#).unwrap();
    drop(file);
    assert!(verify(&journal).stdout.starts_with("torn:"));
    let resumed = ran(cmd(dir.path())
        .args(["resume", "--journal-dir"])
        .arg(dir.path())
        .arg(journal.file_stem().unwrap()));
    assert_eq!(resumed.code, 1, "{}", resumed.stderr); // `bounded` times out, as designed
    let after = records(&journal);
    let recovered = of_type(&after, "journal_recovered");
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0]["torn_line"], (good + 1) as u64);
    assert_eq!(after[good]["type"], "journal_recovered");
    assert_eq!(verify(&journal).code, 0);
}

/// Waits (at most 30 s) until the run's journal in `dir` has a record of type `kind`.
fn wait_for_record(dir: &Path, kind: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let found = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .any(|p| {
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .contains(&format!("\"type\":\"{kind}\""))
            });
        if found {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {kind} record within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
