//! Shared test support. Each integration test binary compiles this module and uses a part of it.
#![allow(dead_code)]

pub mod mocked;
pub mod mocks;
pub mod moto;
pub mod sandbox;

use std::path::PathBuf;

/// The built `firebreak` binary.
pub fn firebreak_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_firebreak"))
}

/// A path under the repository root.
pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A `firebreak` command with a clean AWS environment: no profile, no real credentials, no
/// instance metadata lookups. Tests add what they need.
pub fn firebreak() -> std::process::Command {
    let mut command = std::process::Command::new(firebreak_bin());
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
