//! The command line as a user meets it: the built binary on fixture runbooks.

use crate::support::{firebreak, repo};

fn output(command: &mut std::process::Command) -> (i32, String, String) {
    let out = command.output().expect("firebreak runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_accepts_shipped_runbooks_one_line_each() {
    let mut files: Vec<_> = std::fs::read_dir(repo("runbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.push(repo("tests/fixtures/valid/fan-out.yaml"));
    let (code, stdout, stderr) = output(firebreak().arg("validate").args(&files));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), files.len(), "{stdout}");
    assert!(stdout.lines().all(|l| l.contains(": ok (")), "{stdout}");
}

#[test]
fn validate_reports_every_error_with_position_and_exit_2() {
    let (code, stdout, stderr) = output(
        firebreak()
            .arg("validate")
            .arg("tests/fixtures/invalid/three-errors.yaml"),
    );
    assert_eq!(code, 2);
    assert!(stdout.is_empty(), "{stdout}");
    let file = "tests/fixtures/invalid/three-errors.yaml";
    for expected in [
        format!("{file}:7:13: unknown action `core.lg`"),
        "= help: did you mean `core.log`?".to_owned(),
        format!("{file}:8:25: unknown parameter `instance`"),
        format!("{file}:11:14: invalid duration `forever`"),
        format!("{file}: 3 errors"),
        "7 |     action: core.lg".to_owned(),
        "  |             ^^^^^^^".to_owned(),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing `{expected}` in:\n{stderr}"
        );
    }
}

#[test]
fn validate_goes_on_after_a_bad_file() {
    let (code, stdout, stderr) = output(firebreak().args([
        "validate",
        "tests/fixtures/invalid/duplicate-key.yaml",
        "runbooks/incident-kickoff.yaml",
        "tests/fixtures/missing.yaml",
    ]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("tests/fixtures/invalid/duplicate-key.yaml:7:5: invalid YAML"),
        "{stderr}"
    );
    assert!(stderr.contains("duplicate"), "{stderr}");
    assert!(
        stderr.contains("failed to read runbook tests/fixtures/missing.yaml"),
        "{stderr}"
    );
    assert!(
        stdout.contains("runbooks/incident-kickoff.yaml: ok"),
        "{stdout}"
    );
}

#[test]
fn plan_works_offline_and_redacts_sensitive_values() {
    // No credentials, no region, and an endpoint nothing listens on: any AWS call would fail.
    let canary = "CANARY-5ecret-9f3c1";
    let (code, stdout, stderr) = output(
        firebreak()
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .args(["plan", "tests/fixtures/valid/fan-out.yaml"])
            .args(["-p", "instance_ids=i-0123456789abcdef0,i-0fedcba9876543210"])
            .args(["-p", &format!("api_token={canary}")]),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stdout.contains(canary) && !stderr.contains(canary),
        "secret leaked:\n{stdout}\n{stderr}"
    );
    for expected in [
        "Plan: fan-out",
        "api_token    = [redacted]",
        "1. each — core.log",
        "for each of: [\"i-0123456789abcdef0\",\"i-0fedcba9876543210\"]  (at most 2 at once)",
        "with message: case {{run.id}}: {{item}} (token [redacted])",
        "timeout 30s, up to 3 attempts",
        "2. approve — core.approve  DECISION",
        "asks the operator: \"Stop 2 instances?\"",
        "only if: {{and steps.approve.outputs.approved (gt (len params.instance_ids) 0)}}",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
}

#[test]
fn plan_json_is_a_document() {
    let (code, stdout, stderr) = output(firebreak().args([
        "plan",
        "runbooks/incident-kickoff.yaml",
        "-p",
        "summary=miner found",
        "--output",
        "json",
    ]));
    assert_eq!(code, 0, "{stderr}");
    let plan: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(plan["runbook"], "incident-kickoff");
    assert_eq!(plan["steps"].as_array().unwrap().len(), 4);
    assert_eq!(
        plan["steps"][0]["input"]["message"],
        "case {{run.id}} declared (high): miner found"
    );
    assert_eq!(plan["parameters"]["pager_token"], "[redacted]");
}

#[test]
fn plan_rejects_bad_parameters_with_exit_2() {
    let (code, _, stderr) = output(firebreak().args([
        "plan",
        "tests/fixtures/valid/fan-out.yaml",
        "-p",
        "instance_ids=i-12345678,I-BAD",
        "-p",
        "instanceids=x",
    ]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("`instance_ids` value `I-BAD` does not match pattern"),
        "{stderr}"
    );
    assert!(
        stderr.contains("unknown parameter `instanceids`; did you mean `instance_ids`?"),
        "{stderr}"
    );
    assert!(
        stderr.contains("missing required parameter `api_token`"),
        "{stderr}"
    );
}

#[test]
fn plan_renders_event_and_reports_bad_event_json() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\n  \"detail\": [1,\n}\n").unwrap();
    let (code, _, stderr) = output(
        firebreak()
            .args([
                "plan",
                "runbooks/incident-kickoff.yaml",
                "-p",
                "summary=x",
                "--event",
            ])
            .arg(&bad),
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains(&format!("{}:3:1: invalid event JSON", bad.display())),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_2_and_help_documents_exit_codes() {
    let (code, _, _) = output(firebreak().args(["plan"]));
    assert_eq!(code, 2);
    let (code, stdout, _) = output(firebreak().arg("--help"));
    assert_eq!(code, 0);
    for expected in [
        "Exit codes:",
        "130",
        "validate",
        "plan",
        "schema",
        "--endpoint-url",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in --help:\n{stdout}"
        );
    }
}

#[test]
fn schema_matches_the_checked_in_copy() {
    let (code, stdout, _) = output(firebreak().arg("schema"));
    assert_eq!(code, 0);
    let checked_in = std::fs::read_to_string(repo("schema/runbook.schema.json"))
        .expect("schema/runbook.schema.json exists");
    assert!(
        stdout == checked_in,
        "schema/runbook.schema.json is out of date; regenerate it with\n  cargo run -- schema > schema/runbook.schema.json"
    );
    let schema: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let actions = &schema["definitions"]["Step"]["properties"]["action"]["enum"];
    assert!(
        actions
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "core.approve"),
        "{actions}"
    );
    assert!(schema["definitions"]["action:core.log"]["properties"]["message"].is_object());
}
