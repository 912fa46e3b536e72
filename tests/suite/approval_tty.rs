//! `core.approve` on a terminal: the operator is shown the prompt and the step's context and
//! answers; the answer is journaled as the operator's. Runs the binary under a pseudo-terminal
//! (util-linux `script`).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{firebreak_bin, moto};
use serde_json::Value;

fn run_on_a_terminal(dir: &std::path::Path, answer: &str) -> (String, Vec<Value>) {
    let command = format!(
        "{} run tests/fixtures/engine/four-steps.yaml -p instance_ids=i-0123456789abcdef0 -p api_token=tty-test-token",
        firebreak_bin().display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs (apt-get install bsdutils)");
    // Answer once the question is on the screen.
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    stdin.write_all(answer.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    let journal = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap_or_else(|| panic!("no journal; screen:\n{screen}"));
    (screen, crate::support::journal::values(&journal))
}

#[test]
fn the_operator_is_asked_on_a_terminal() {
    let _moto = moto::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let (screen, records) = run_on_a_terminal(dir.path(), "y\n");
    assert!(
        screen.contains("step `approve` asks for approval"),
        "{screen}"
    );
    assert!(screen.contains("Contain 1 instances? [y/N]"), "{screen}");
    let approval = records.iter().find(|r| r["type"] == "approval").unwrap();
    assert_eq!(approval["by"], "operator");
    assert_eq!(approval["approved"], true);
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "step_succeeded" && r["step"] == "after")
    );

    let dir = tempfile::tempdir().unwrap();
    let (_, records) = run_on_a_terminal(dir.path(), "n\n");
    let approval = records.iter().find(|r| r["type"] == "approval").unwrap();
    assert_eq!(approval["approved"], false);
    assert_eq!(
        approval["refused"], false,
        "a no is a decision, not a refusal"
    );
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "step_skipped" && r["step"] == "after")
    );
    assert_eq!(records.last().unwrap()["status"], "succeeded");
}
