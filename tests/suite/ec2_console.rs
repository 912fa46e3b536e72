//! `ec2.capture_console_output` and the evidence check of `journal verify`: against moto
//! through the real SDK, and with mocked EC2 for a pre-Nitro instance and an empty console.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{crash, firebreak, moto, sandbox};
use serde_json::Value;

use crate::support::json::str_of;
use sha2::{Digest, Sha256};

const FIXTURE: &str = "tests/fixtures/ec2/console.yaml";

fn verify(journal: &Path) -> (Option<i32>, String) {
    let out = firebreak()
        .args(["journal", "verify"])
        .arg(journal)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn capture(dir: &Path, instance: &str) -> Output {
    firebreak()
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", dir)
        .args(["run", FIXTURE, "--yes", "--output", "json"])
        .args(["-p", &format!("instance_id={instance}")])
        .output()
        .unwrap()
}

#[tokio::test]
async fn console_output_is_saved_hashed_journaled_and_verified() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = str_of(&ids["instance_id"]);
    let dir = tempfile::tempdir().unwrap();

    let out = capture(dir.path(), instance);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_id = str_of(&outcome["run_id"]);
    let outputs = &outcome["steps"][0]["outputs"];
    let artifact = &outputs["artifact"];
    let path = PathBuf::from(str_of(&artifact["path"]));
    assert_eq!(
        path,
        dir.path()
            .join(run_id)
            .join("evidence")
            .join(format!("console-{instance}.txt"))
    );

    // The file holds exactly what EC2 returns, decoded.
    let bytes = std::fs::read(&path).expect("the artifact exists");
    let direct = sandbox::ec2()
        .await
        .get_console_output()
        .instance_id(instance)
        .send()
        .await
        .unwrap();
    let expected = aws_smithy_types::base64::decode(direct.output().unwrap_or_default()).unwrap();
    assert_eq!(bytes, expected);
    assert_eq!(outputs["empty"], bytes.is_empty(), "{outputs}");
    assert!(outputs["timestamp"].is_string(), "{outputs}");
    let sha = hex::encode(Sha256::digest(&bytes));
    assert_eq!(artifact["sha256"], sha.as_str());
    assert_eq!(artifact["size"], bytes.len());

    // The journal's evidence record says the same.
    let journal = PathBuf::from(str_of(&outcome["journal"]));
    let records = crate::support::journal::values(&journal);
    let evidence: Vec<&Value> = records.iter().filter(|r| r["type"] == "evidence").collect();
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0]["step"], "console");
    assert_eq!(&evidence[0]["artifact"], artifact);

    let (code, stdout) = verify(&journal);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.starts_with("ok: "), "{stdout}");
    assert!(stdout.contains("evidence: 1 artifacts ok"), "{stdout}");

    // Edited (same size, other bytes): the hash no longer matches.
    let mut edited = bytes.clone();
    if edited.is_empty() {
        edited.push(b'x');
    } else {
        edited[0] ^= 0x20;
    }
    std::fs::write(&path, &edited).unwrap();
    let (code, stdout) = verify(&journal);
    assert_eq!(code, Some(2), "{stdout}");
    let line = format!("evidence: {}: ", path.display());
    assert!(stdout.starts_with("ok: "), "the chain is intact: {stdout}");
    assert!(stdout.contains(&line), "{stdout}");
    let expected_problem = if bytes.is_empty() {
        "size mismatch"
    } else {
        "sha256 mismatch"
    };
    assert!(stdout.contains(expected_problem), "{stdout}");

    // Appended to: the size no longer matches.
    let mut grown = bytes.clone();
    grown.extend_from_slice(b"\nplanted line\n");
    std::fs::write(&path, &grown).unwrap();
    let (code, stdout) = verify(&journal);
    assert_eq!(code, Some(2), "{stdout}");
    assert!(stdout.contains(&format!("{line}size mismatch")), "{stdout}");

    // Gone.
    std::fs::remove_file(&path).unwrap();
    let (code, stdout) = verify(&journal);
    assert_eq!(code, Some(2), "{stdout}");
    assert!(stdout.contains(&format!("{line}missing")), "{stdout}");

    // Put back as it was: all is well again.
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(verify(&journal).0, Some(0));
}

/// A crash after the artifact was written and journaled, before the step's outcome: the step
/// runs again on resume and writes the artifact again under the same name; the journal then
/// names it twice and `verify` holds the file to the last record.
#[tokio::test]
async fn a_capture_run_again_after_a_crash_still_verifies() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = str_of(&ids["instance_id"]);
    let dir = tempfile::tempdir().unwrap();
    let param = format!("instance_id={instance}");
    let journal = crash::crash_at(
        "before-step-finished:console",
        dir.path(),
        &["run", FIXTURE, "--yes", "-p", &param],
    );
    let (code, stdout) = verify(&journal);
    assert_eq!(code, Some(1), "intact, not finished: {stdout}");
    assert!(stdout.contains("evidence: 1 artifacts ok"), "{stdout}");

    let resumed = crash::resume(dir.path(), &journal, &[]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    let records = crate::support::journal::values(&journal);
    let evidence: Vec<&Value> = records.iter().filter(|r| r["type"] == "evidence").collect();
    assert_eq!(evidence.len(), 2, "written once per attempt");
    // Evidence is never overwritten: the second attempt writes a second file, so the first
    // record still matches its file.
    assert_ne!(
        evidence[0]["artifact"]["path"],
        evidence[1]["artifact"]["path"]
    );
    let (code, stdout) = verify(&journal);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("evidence: 2 artifacts ok"), "{stdout}");
}

mod mocked_ec2 {
    use super::*;
    use aws_sdk_ec2::operation::get_console_output::{
        GetConsoleOutputError, GetConsoleOutputOutput,
    };
    use aws_smithy_mocks::mock;
    use aws_smithy_types::error::ErrorMetadata;
    use firebreak::engine::{Mode, RunStatus};

    const INSTANCE: &str = "i-0123456789abcdef0";

    #[tokio::test]
    async fn an_instance_without_latest_output_falls_back_to_the_buffered_output() {
        let latest = mock!(aws_sdk_ec2::Client::get_console_output)
            .match_requests(|r| r.latest() == Some(true))
            .then_error(|| {
                GetConsoleOutputError::generic(
                    ErrorMetadata::builder()
                        .code("UnsupportedOperation")
                        .message("Latest console output is only supported on Nitro instances")
                        .build(),
                )
            });
        let buffered = mock!(aws_sdk_ec2::Client::get_console_output)
            .match_requests(|r| r.latest() != Some(true))
            .then_output(|| {
                GetConsoleOutputOutput::builder()
                    .instance_id(INSTANCE)
                    .output(aws_smithy_types::base64::encode(
                        "login: \u{1b}[0m\nkernel panic\n",
                    ))
                    .timestamp(aws_smithy_types::DateTime::from_secs(1_795_000_000))
                    .build()
            });
        let dir = tempfile::tempdir().unwrap();
        let outcome = crate::support::run::mocked(
            FIXTURE,
            &[("instance_id", INSTANCE)],
            Mode::Live,
            dir.path(),
            &[&latest, &buffered],
        )
        .await;
        assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
        assert_eq!((latest.num_calls(), buffered.num_calls()), (1, 1));
        let outputs = &outcome.steps[0].outputs;
        assert_eq!(outputs["latest"], false);
        assert_eq!(outputs["empty"], false);
        assert_eq!(outputs["timestamp"], "2026-11-18T11:06:40Z");
        let path = PathBuf::from(str_of(&outputs["artifact"]["path"]));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            "login: \u{1b}[0m\nkernel panic\n".as_bytes()
        );
        assert_eq!(verify(&outcome.journal).0, Some(0));
    }

    #[tokio::test]
    async fn an_empty_console_is_saved_as_an_empty_artifact() {
        let empty = mock!(aws_sdk_ec2::Client::get_console_output).then_output(|| {
            GetConsoleOutputOutput::builder()
                .instance_id(INSTANCE)
                .build()
        });
        let dir = tempfile::tempdir().unwrap();
        let outcome = crate::support::run::mocked(
            FIXTURE,
            &[("instance_id", INSTANCE)],
            Mode::Live,
            dir.path(),
            &[&empty],
        )
        .await;
        assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
        let outputs = &outcome.steps[0].outputs;
        assert_eq!(outputs["empty"], true);
        assert_eq!(outputs["timestamp"], Value::Null);
        assert_eq!(outputs["artifact"]["size"], 0);
        assert_eq!(
            outputs["artifact"]["sha256"],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let path = PathBuf::from(str_of(&outputs["artifact"]["path"]));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        let (code, stdout) = verify(&outcome.journal);
        assert_eq!(code, Some(0), "{stdout}");
        assert!(stdout.contains("evidence: 1 artifacts ok"), "{stdout}");
    }
}
