//! The secret canary sweep. Canary values stand in for the caller's secret access key and
//! session token (in the environment), the journal's HMAC key and a sensitive runbook
//! parameter; with `RUST_LOG=trace` and `-vvv`, every command — run live and as a drill, plan,
//! validate, resume, dispatch, journal show/verify, report in both formats, policy — writes its
//! journals, evidence, reports, stdout and stderr, and not one of them holds a canary: plain,
//! percent-encoded (as in a URL or a query string) or base64 (at every alignment, both
//! alphabets). AWS secret keys hold `/` and `+`, so the canaries do too: their encoded forms
//! differ from the plain ones.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::dispatch::{event, seed};
use crate::support::{firebreak, moto};

const SECRET_KEY: &str = "CANARY/secret+key=31c9Zq";
const SESSION_TOKEN: &str = "CANARY+session/token=8b2eWx";
const JOURNAL_KEY: &str = "CANARY/journal+key=4a2dVb";
const PARAMETER: &str = "CANARY/param+token=77f1Ty";

/// `firebreak` on moto with every canary in reach and logging at its loudest.
fn loud(dir: &Path) -> Command {
    let mut command = firebreak();
    command
        .envs(moto::env())
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
        .env("FIREBREAK_JOURNAL_KEY", JOURNAL_KEY)
        .env("RUST_LOG", "trace")
        .env("FIREBREAK_JOURNAL_DIR", dir)
        .arg("-vvv");
    command
}

/// Every text a command left: stdout and stderr, by name.
struct Seen {
    texts: Vec<(String, String)>,
}

impl Seen {
    fn add(&mut self, what: &str, command: &mut Command) -> (i32, String) {
        let out = command.output().expect("firebreak runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        self.texts.push((format!("{what}: stdout"), stdout.clone()));
        self.texts.push((
            format!("{what}: stderr"),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
        (out.status.code().unwrap_or(-1), stdout)
    }

    fn last_stderr(&self) -> &str {
        let text = self.texts.last().map_or("", |(_, text)| text.as_str());
        let lines: Vec<&str> = text.lines().collect();
        let from = text.len() - lines[lines.len().saturating_sub(8)..].join("\n").len();
        &text[from..]
    }

    /// Every file under `dir` (journals, evidence, reports).
    fn add_files(&mut self, dir: &Path) {
        for path in files_under(dir) {
            let bytes = std::fs::read(&path).unwrap();
            self.texts.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// The forms a secret can leak in: itself, percent-encoded, and base64 of it at each of the
/// three alignments inside a longer value (trimmed to the characters that depend on the secret
/// alone), in the standard and URL-safe alphabets.
fn forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_owned(), percent_encoded(secret)];
    for pad in 0..3 {
        let prefixed = format!("{}{secret}", "x".repeat(pad));
        let encoded = base64(prefixed.as_bytes());
        // Skip the characters that mix the prefix in, and the last (mixes what follows).
        let skip = (pad * 4).div_ceil(3);
        let core: String = encoded.trim_end_matches('=').chars().skip(skip).collect();
        let core: String = core.chars().take(core.chars().count() - 1).collect();
        forms.push(core.clone());
        forms.push(core.replace('+', "-").replace('/', "_"));
    }
    forms
}

fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn the_encoder_finds_what_it_should() {
    assert_eq!(base64(b"Man"), "TWFu");
    assert_eq!(base64(b"Ma"), "TWE=");
    assert_eq!(percent_encoded("a/b+c="), "a%2Fb%2Bc%3D");
    // A canary base64-encoded at any offset inside a longer value is found.
    for prefix in ["", "k", "ke", "key"] {
        let text = base64(format!("{prefix}{SECRET_KEY}:and more").as_bytes());
        assert!(
            forms(SECRET_KEY).iter().skip(2).any(|f| text.contains(f)),
            "{prefix:?}: {text}"
        );
    }
}

#[tokio::test]
async fn no_canary_reaches_a_journal_a_report_or_any_output_of_any_command() {
    let _moto = moto::exclusive().await;
    let ids = seed(&[]).await;
    // The seed's deny-all profile (scripts/seed-sandbox.py names it `<name>-quarantine`).
    let quarantine = format!(
        "arn:aws:iam::{}:instance-profile/web-1-quarantine",
        "123456789012"
    );
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join("journals");
    std::fs::create_dir_all(&journals).unwrap();
    let mut seen = Seen { texts: Vec::new() };
    let param = format!("api_token={PARAMETER}");
    let four = [
        "tests/fixtures/engine/four-steps.yaml",
        "-p",
        "instance_ids=i-0123456789abcdef0,i-0fedcba9876543210",
        "-p",
        param.as_str(),
    ];

    // Containment, live and as a drill, on the seeded instance: the SDK signs every call with
    // the canary credentials.
    let instance = format!("instance_id={}", ids.instance);
    let profile = format!("quarantine_profile_arn={quarantine}");
    let contain = [
        "runbooks/ec2-instance-compromise.yaml",
        "-p",
        instance.as_str(),
        "-p",
        "case_id=canary-1",
        "-p",
        profile.as_str(),
    ];
    let (code, _) = seen.add(
        "run --dry-run",
        loud(&journals).arg("run").args(contain).arg("--dry-run"),
    );
    // 1: on moto some steps "could not be checked" (its DryRun answers are not AWS's).
    assert!(
        code == 0 || code == 1,
        "the drill ran to its verdict: {}",
        seen.last_stderr()
    );
    let (code, stdout) = seen.add(
        "run",
        loud(&journals)
            .arg("run")
            .args(contain)
            .args(["--yes", "--output", "json"]),
    );
    assert_eq!(code, 0, "the containment ran: {stdout}");
    let outcome: Value = serde_json::from_str(&stdout).unwrap();
    let contained = outcome["journal"].as_str().unwrap().to_owned();

    // A run with a sensitive parameter, parked at its approval, then resumed.
    seen.add("validate", loud(&journals).args(["validate", four[0]]));
    seen.add("plan", loud(&journals).arg("plan").args(four));
    let (code, stdout) = seen.add(
        "run (parked)",
        loud(&journals)
            .arg("run")
            .args(four)
            .args(["--output", "json"])
            .stdin(std::process::Stdio::null()),
    );
    assert_eq!(code, 4, "parked at its approval: {stdout}");
    let parked: Value = serde_json::from_str(&stdout).unwrap();
    let parked = parked["journal"].as_str().unwrap().to_owned();
    let (code, _) = seen.add(
        "resume",
        loud(&journals)
            .args(["resume", &parked, "--yes", "-p"])
            .arg(&param),
    );
    assert_eq!(code, 0, "resumed");

    // A finding dispatched.
    let finding = dir.path().join("finding.json");
    std::fs::write(&finding, event("guardduty-ec2", &ids)).unwrap();
    seen.add(
        "dispatch",
        loud(&journals)
            .args(["dispatch", "--runbooks", "runbooks", "--dry-run", "--event"])
            .arg(&finding),
    );

    // Everything that reads a journal back.
    for journal in [&contained, &parked] {
        seen.add(
            "journal show",
            loud(&journals).args(["journal", "show", journal]),
        );
        seen.add(
            "journal show --output json",
            loud(&journals).args(["journal", "show", journal, "--output", "json"]),
        );
        let (code, _) = seen.add(
            "journal verify",
            loud(&journals).args(["journal", "verify", journal]),
        );
        assert_eq!(code, 0, "verifies with the key");
        seen.add("report", loud(&journals).args(["report", journal]));
        let html = dir.path().join("report.html");
        seen.add(
            "report --format html",
            loud(&journals)
                .args(["report", journal, "--format", "html", "-o"])
                .arg(&html),
        );
    }
    seen.add(
        "policy",
        loud(&journals).args(["policy", "runbooks/ec2-instance-compromise.yaml", four[0]]),
    );
    seen.add_files(dir.path());

    let canaries = [
        ("the secret access key", SECRET_KEY),
        ("the session token", SESSION_TOKEN),
        ("the journal key", JOURNAL_KEY),
        ("the sensitive parameter", PARAMETER),
    ];
    let mut hits = Vec::new();
    for (what, text) in &seen.texts {
        for (name, canary) in canaries {
            for form in forms(canary) {
                if text.contains(&form) {
                    hits.push(format!("{name} ({form}) in {what}"));
                }
            }
        }
    }
    assert!(hits.is_empty(), "canaries found:\n{}", hits.join("\n"));
    // The sweep looked at something: trace logs and both journals at least.
    let bytes: usize = seen.texts.iter().map(|(_, t)| t.len()).sum();
    assert!(
        seen.texts.len() > 30 && bytes > 100_000,
        "{} texts, {bytes} bytes",
        seen.texts.len()
    );
    eprintln!(
        "canary sweep: {} texts, {bytes} bytes, 0 hits",
        seen.texts.len()
    );
}
