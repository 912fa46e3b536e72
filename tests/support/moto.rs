//! The moto AWS emulator in server mode, behind the counting/fault proxy.
//!
//! `scripts/test` starts one moto for the whole suite and exports `FIREBREAK_TEST_MOTO`. A test
//! binary run on its own starts its own moto from `.venv` on a free loopback port instead. Either
//! way this process puts its own counting, fault-injecting proxy (`tests/support/fault_proxy.py`)
//! in front of it, and every client a test builds talks to the proxy: tests assert exact call
//! counts and inject faults through [`super::proxy`]. Tests that use moto take [`exclusive`],
//! which serializes them within the binary and resets moto's state and the proxy's record.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use tokio::sync::{Mutex, MutexGuard};

use super::http;

const HOW_TO_FIX: &str = "run the suite with `scripts/test` (it installs moto into .venv and starts it), \
or run `scripts/venv` once so tests can start moto themselves";

/// moto itself (not counted): for seeding and for resets.
pub fn upstream() -> &'static str {
    static UPSTREAM: OnceLock<String> = OnceLock::new();
    UPSTREAM.get_or_init(|| match std::env::var("FIREBREAK_TEST_MOTO") {
        Ok(url) if !url.is_empty() => {
            if let Err(e) = wait_until_up(&url, Duration::from_secs(10)) {
                panic!("moto at {url} (FIREBREAK_TEST_MOTO) is not reachable: {e}; {HOW_TO_FIX}");
            }
            url
        }
        _ => start_own(),
    })
}

/// Where clients send their calls: the proxy in front of moto.
pub fn endpoint() -> &'static str {
    super::proxy::endpoint()
}

fn start_own() -> String {
    let server = super::repo(".venv/bin/moto_server");
    if !server.exists() {
        panic!(
            "moto is not installed ({} is missing); {HOW_TO_FIX}",
            server.display()
        );
    }
    let port = free_port();
    let mut command = Command::new(&server);
    command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        // AWS managed IAM policies (the quarantine policy) exist in moto only with this.
        .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = super::spawn_tied_to_this_process(command)
        .unwrap_or_else(|e| panic!("failed to start {}: {e}; {HOW_TO_FIX}", server.display()));
    // Not waited for: it serves until this process ends (and then gets SIGTERM).
    std::mem::forget(child);
    let url = format!("http://127.0.0.1:{port}");
    if let Err(e) = wait_until_up(&url, Duration::from_secs(30)) {
        panic!("moto started on {url} but does not answer: {e}; {HOW_TO_FIX}");
    }
    url
}

pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_until_up(url: &str, limit: Duration) -> Result<(), String> {
    let started = Instant::now();
    loop {
        match http::request(url, "GET", "/moto-api/", "") {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() > limit => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

static LOCK: Mutex<()> = Mutex::const_new(());

/// Serializes moto tests in this binary and gives each a fresh emulator and a clean proxy
/// record (no calls, no faults).
pub async fn exclusive() -> MutexGuard<'static, ()> {
    let guard = LOCK.lock().await;
    reset();
    guard
}

/// [`exclusive`] for tests that are not async.
pub fn exclusive_blocking() -> MutexGuard<'static, ()> {
    let guard = LOCK.blocking_lock();
    reset();
    guard
}

/// A fresh emulator and proxy record, for a test that holds [`exclusive`] and wants to start
/// over part-way.
pub fn reset() {
    let url = upstream();
    http::request(url, "POST", "/moto-api/reset", "")
        .unwrap_or_else(|e| panic!("failed to reset moto at {url}: {e}"));
    super::proxy::reset();
}

/// SDK configuration built by firebreak's own `aws` module, pointed at the proxy with dummy
/// credentials.
pub async fn sdk_config() -> SdkConfig {
    config_for(endpoint()).await
}

/// The same, straight to moto: for a test to seed or inspect state without being counted.
pub async fn direct_config() -> SdkConfig {
    config_for(upstream()).await
}

async fn config_for(endpoint: &str) -> SdkConfig {
    let options = firebreak::aws::AwsOptions {
        profile: None,
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint.to_owned()),
    };
    firebreak::aws::load_sdk_config(&options)
        .await
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "moto",
        )))
        .build()
}

/// Clients of firebreak's own configuration, through the proxy to moto.
pub async fn clients() -> firebreak::aws::Clients {
    firebreak::aws::Clients::new(&sdk_config().await)
}

/// Environment for a `firebreak` child process that should talk to moto (through the proxy).
pub fn env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint().to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

/// The `.venv` Python that has boto3 (it comes with moto), for seeding scripts.
pub fn python() -> PathBuf {
    super::repo(".venv/bin/python")
}
