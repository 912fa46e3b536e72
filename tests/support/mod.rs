//! The one test harness. Every integration test uses these modules:
//!
//! - [`moto`] — the emulator (started or found), behind [`proxy`], the counting/fault proxy
//! - [`aws`] — [`aws::MockAws`]: every client on aws-smithy-mocks rules from one configuration,
//!   unexpected calls recorded by name and failed at teardown
//! - [`run`] — running a runbook in-process (moto or mocks) and reading what it did
//! - [`journal`] — a journal read through the typed events
//! - [`crash`] — the crash-then-resume flow of the fault-injection tests
//! - [`sandbox`] — a seeded "compromised" instance in moto
//! - [`worker`] — a background `firebreak serve`, killed when its test ends
#![allow(dead_code)]

pub mod aws;
pub mod crash;
pub mod eventbridge;
pub mod http;
pub mod journal;
pub mod json;
pub mod moto;
pub mod proxy;
pub mod run;
pub mod sandbox;
pub mod state;
pub mod worker;

use std::path::PathBuf;
use std::process::{Child, Command};

/// The built `firebreak` binary.
/// The binary under test: this checkout's, or `FIREBREAK_TEST_BIN` — to show that a test fails
/// on an older build (`FIREBREAK_TEST_BIN=/path/to/old/firebreak scripts/test NAME`).
pub fn firebreak_bin() -> PathBuf {
    match std::env::var_os("FIREBREAK_TEST_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_BIN_EXE_firebreak")),
    }
}

/// A path under the repository root.
pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A `firebreak` command with a clean AWS environment: no profile, no real credentials, no
/// instance metadata lookups. Tests add what they need.
pub fn firebreak() -> Command {
    let mut command = Command::new(firebreak_bin());
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") || key.starts_with("FIREBREAK_") {
            command.env_remove(key);
        }
    }
    command
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/firebreak-test-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/firebreak-test-credentials",
        )
        .env("NO_COLOR", "1")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

/// Spawns a helper process (moto, the proxy) that gets SIGTERM when this test process ends: the
/// parent-death signal is tied to the thread that spawned the child, so a keeper thread that
/// lives as long as the process spawns it.
pub fn spawn_tied_to_this_process(mut command: Command) -> std::io::Result<Child> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: prctl in the child before exec only sets its parent-death signal.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let _ = sender.send(command.spawn());
        loop {
            std::thread::park();
        }
    });
    receiver.recv().expect("the keeper thread answers")
}

/// A finished child process: exit code, stdout, stderr.
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command to its end.
pub fn output(command: &mut Command) -> Output {
    let out = command.output().expect("the command starts");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `firebreak ARGS --output json` against moto with the journal in `dir`: the exit code, the
/// JSON outcome (`Null` when there is none) and stderr.
pub fn cli_on_moto(dir: &std::path::Path, args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = firebreak()
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", dir)
        .args(args)
        .args(["--output", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let outcome = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), outcome, stderr)
}
