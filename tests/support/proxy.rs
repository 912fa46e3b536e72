//! The counting, fault-injecting proxy in front of moto (`tests/support/fault_proxy.py`, plain
//! Python, started once per test process). Every request a client makes through it is recorded
//! — service, operation, DryRun, status, injected fault — so tests assert exact call counts and
//! "zero mutating calls" at the wire. Faults (throttling in each protocol's own format, 500s,
//! lost responses, delays, hangs) are decided per request from a hash of (seed, operation,
//! body, attempt), so concurrent runs are reproducible.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Value, json};

use super::http;

/// One request the proxy saw.
#[derive(Debug, Clone, Deserialize)]
pub struct WireCall {
    pub seq: u64,
    pub service: String,
    pub operation: String,
    pub mutating: bool,
    pub dry_run: bool,
    #[serde(default)]
    pub target_ids: Vec<String>,
    pub status: Option<u16>,
    pub fault: Option<String>,
    /// The SigV4 access key the call was signed with (tells two workers apart).
    #[serde(default)]
    pub access_key: Option<String>,
}

impl WireCall {
    /// `service:Operation`
    pub fn name(&self) -> String {
        format!("{}:{}", self.service, self.operation)
    }

    /// A call that could change something: mutating and not a DryRun.
    pub fn changes(&self) -> bool {
        self.mutating && !self.dry_run
    }
}

/// The proxy's base URL, starting it (in front of moto) on first use.
pub fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(start)
}

fn start() -> String {
    let upstream = super::moto::upstream();
    let script = super::repo("tests/support/fault_proxy.py");
    let mut command = Command::new("python3");
    command
        .arg(&script)
        .args(["--upstream", upstream, "--port", "0"])
        .args(["--parent-pid", &std::process::id().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = super::spawn_tied_to_this_process(command).unwrap_or_else(|e| {
        panic!(
            "failed to start the test proxy ({}): {e}; python3 is needed to run the tests",
            script.display()
        )
    });
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the proxy says where it listens");
    let url = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("the test proxy said {line:?} instead of `listening URL`"))
        .to_owned();
    // The child handle is dropped, not waited for: it lives until this process ends.
    std::mem::forget(child);
    url
}

fn control(method: &str, path: &str, body: &str) -> String {
    let url = endpoint();
    http::request(url, method, path, body)
        .unwrap_or_else(|e| panic!("the test proxy at {url} refused {method} {path}: {e}"))
}

/// Tells the proxy which principal is behind each access key, so SQS messages sent with that
/// key carry its principal id as their SenderId (as SQS stamps it; moto stamps a constant).
pub fn principals(map: Value) {
    control("POST", "/__proxy/principals", &map.to_string());
}

/// Forgets every recorded call and fault rule.
pub fn reset() {
    control("POST", "/__proxy/reset", "");
}

/// Every call recorded since the last reset, in arrival order.
pub fn calls() -> Vec<WireCall> {
    serde_json::from_str(&control("GET", "/__proxy/calls", "")).expect("the proxy's calls are JSON")
}

/// The calls that could have changed something (mutating, not DryRun).
pub fn changes() -> Vec<WireCall> {
    calls().into_iter().filter(WireCall::changes).collect()
}

/// How many calls of `service:Operation` were made.
pub fn count(name: &str) -> usize {
    calls().iter().filter(|c| c.name() == name).count()
}

/// Injects faults: each rule `{"service"?, "operation"? (glob), "fault": "throttle" |
/// "error500" | "lost" | "delay" | "hang", "rate"?, "delay_ms"?, "hang_s"?, "max"?,
/// "dry_run"?}`; the first rule whose die says yes decides a request's fate.
pub fn faults(seed: u64, rules: Value) {
    control(
        "POST",
        "/__proxy/faults",
        &json!({"seed": seed, "rules": rules}).to_string(),
    );
}
