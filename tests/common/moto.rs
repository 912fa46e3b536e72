//! The moto AWS emulator in server mode, for integration tests.
//!
//! `scripts/test` starts one moto for the whole suite and exports `FIREBREAK_TEST_MOTO`. A test
//! binary run on its own (`cargo test --test x`) starts its own moto from `.venv` on a free
//! loopback port instead; it is stopped when the test process exits. Tests that use moto take
//! [`exclusive`], which serializes them within a binary and resets moto's state first.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use tokio::sync::{Mutex, MutexGuard};

const HOW_TO_FIX: &str = "run the suite with `scripts/test` (it installs moto into .venv and starts it), \
or run `scripts/venv` once so tests can start moto themselves";

/// The emulator's base URL, starting it if needed. Panics with instructions when it cannot.
pub fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| match std::env::var("FIREBREAK_TEST_MOTO") {
        Ok(url) if !url.is_empty() => {
            if let Err(e) = wait_until_up(&url, Duration::from_secs(10)) {
                panic!("moto at {url} (FIREBREAK_TEST_MOTO) is not reachable: {e}; {HOW_TO_FIX}");
            }
            url
        }
        _ => start_own(),
    })
}

fn start_own() -> String {
    let server = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server");
    if !server.exists() {
        panic!(
            "moto is not installed ({} is missing); {HOW_TO_FIX}",
            server.display()
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port");
    let (sender, receiver) = std::sync::mpsc::channel();
    let program = server.clone();
    // The keeper thread lives as long as the process; moto gets SIGTERM when it goes (the
    // parent-death signal is tied to the thread that spawned the child).
    std::thread::spawn(move || {
        let mut command = Command::new(&program);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // AWS managed IAM policies (the quarantine policy) exist in moto only with this.
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command.spawn();
        let _ = sender.send(child.map(|c| c.id()));
        loop {
            std::thread::park();
        }
    });
    match receiver.recv().expect("keeper thread answers") {
        Ok(_) => {}
        Err(e) => panic!("failed to start {}: {e}; {HOW_TO_FIX}", server.display()),
    }
    let url = format!("http://127.0.0.1:{port}");
    if let Err(e) = wait_until_up(&url, Duration::from_secs(30)) {
        panic!("moto started on {url} but does not answer: {e}; {HOW_TO_FIX}");
    }
    url
}

fn wait_until_up(url: &str, limit: Duration) -> Result<(), String> {
    let started = Instant::now();
    loop {
        match http(url, "GET", "/moto-api/") {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() > limit => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// A minimal HTTP/1.1 request to moto's own API (no HTTP client crate needed for this).
fn http(url: &str, method: &str, path: &str) -> Result<String, String> {
    let address = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    if response.starts_with("HTTP/1.1 2") || response.starts_with("HTTP/1.0 2") {
        Ok(response)
    } else {
        Err(response.lines().next().unwrap_or("no response").to_owned())
    }
}

static LOCK: Mutex<()> = Mutex::const_new(());

/// Serializes moto tests in this binary and gives each a fresh emulator.
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

fn reset() {
    let url = endpoint();
    http(url, "POST", "/moto-api/reset")
        .unwrap_or_else(|e| panic!("failed to reset moto at {url}: {e}"));
}

/// SDK configuration built by firebreak's own `aws` module, pointed at moto with dummy
/// credentials.
pub async fn sdk_config() -> SdkConfig {
    let options = firebreak::aws::AwsOptions {
        profile: None,
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint().to_owned()),
    };
    firebreak::aws::load_sdk_config(&options)
        .await
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "moto",
        )))
        .build()
}

/// Environment for a `firebreak` child process that should talk to moto.
pub fn env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint().to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}
