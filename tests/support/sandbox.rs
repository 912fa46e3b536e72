//! A seeded "compromised" instance in moto (scripts/seed-sandbox.py, shared with the demo).

use std::process::Command;

use serde_json::Value;

/// Seeds moto (reset first by the caller via `moto::exclusive`) straight, not through the
/// proxy (so seeding is not counted), and returns the ids.
pub fn seed(name: &str) -> Value {
    seed_with(name, &[])
}

pub fn seed_with(name: &str, extra: &[&str]) -> Value {
    let python = super::repo(".venv/bin/python");
    let out = Command::new(&python)
        .arg(super::repo("scripts/seed-sandbox.py"))
        .args(["--endpoint", super::moto::upstream(), "--name", name])
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("failed to run {}: {e}; run scripts/venv", python.display()));
    assert!(
        out.status.success(),
        "seed-sandbox.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("seed-sandbox.py prints JSON")
}

/// An EC2 client straight to moto, for a test to look at the state (not counted by the proxy).
pub async fn ec2() -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&super::moto::direct_config().await)
}
