//! moto's EventBridge as an oracle (`tests/support/eventbridge_oracle.py`): which of `events`
//! each pattern's rule delivers, as EventBridge itself decides.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// `{"delivered": [[event index, ...] per pattern], "as_sent": [event per index]}`.
pub fn deliver(patterns: &[Value], events: &[Value]) -> Value {
    let request =
        json!({"endpoint": super::moto::upstream(), "patterns": patterns, "events": events});
    let mut child = Command::new(super::moto::python())
        .arg(super::repo("tests/support/eventbridge_oracle.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the oracle runs (scripts/venv installs boto3 with moto)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
