//! `runbooks/lambda-function-compromise.yaml` and `runbooks/lambda-release.yaml` against moto,
//! from the command line: a function with a public URL, an SQS source and a secret in its
//! environment is contained, and released to exactly what it was.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{cli_on_moto, journal, moto};

const CONTAIN: &str = "runbooks/lambda-function-compromise.yaml";
const RELEASE: &str = "runbooks/lambda-release.yaml";

pub(crate) fn script(args: &[&str]) -> Value {
    let out = std::process::Command::new(moto::python())
        .arg(crate::support::repo("tests/support/lambda_function.py"))
        .args(args)
        .arg(moto::upstream())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lambda_function.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub(crate) fn seed(name: &str) -> Value {
    script(&["seed", name])
}

pub(crate) fn describe(name: &str) -> Value {
    script(&["describe", name])
}

fn journal_of(outcome: &Value) -> PathBuf {
    PathBuf::from(outcome["journal"].as_str().expect("a journal path"))
}

fn mutating(journal: &Path) -> Vec<String> {
    journal::values(journal)
        .iter()
        .filter(|r| r["type"] == "api_call")
        .filter_map(|r| r["operation"].as_str().map(str::to_owned))
        .filter(|op| {
            !["Get", "List", "Describe"]
                .iter()
                .any(|p| op.starts_with(p))
        })
        .collect()
}

/// Every file under `dir`, as text (journals, evidence).
fn everything_written(dir: &Path) -> String {
    let mut text = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap().path();
            if entry.is_dir() {
                stack.push(entry);
            } else {
                text.push_str(&String::from_utf8_lossy(&std::fs::read(&entry).unwrap()));
            }
        }
    }
    text
}

#[tokio::test]
async fn a_compromised_function_is_contained_and_released_to_exactly_what_it_was() {
    let _moto = moto::exclusive().await;
    let seeded = seed("payments-api");
    let secret = seeded["secret"].as_str().unwrap();
    let before = describe("payments-api");
    let dir = tempfile::tempdir().unwrap();

    // A drill walks every step and sends nothing.
    let (code, drill, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            CONTAIN,
            "-p",
            "function_name=payments-api",
            "--dry-run",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{drill:#}");
    let would: Vec<String> = journal::values(&journal_of(&drill))
        .iter()
        .filter(|r| r["type"] == "api_call" && r["would_call"].is_string())
        .map(|r| r["operation"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        would,
        [
            "PutFunctionConcurrency",
            "UpdateEventSourceMapping",
            "UpdateFunctionUrlConfig",
            "RemovePermission",
            "TagResource",
            "PutRolePolicy"
        ]
    );
    assert_eq!(
        describe("payments-api"),
        before,
        "a drill changed the function"
    );

    // Contained, the role's revocation approved too (--yes).
    let (code, contained, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            CONTAIN,
            "-p",
            "function_name=payments-api",
            "-p",
            "case_id=case-fn",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{contained:#}");
    let now = describe("payments-api");
    assert_eq!(now["concurrency"], 0);
    assert_eq!(now["event_sources"][0]["State"], "Disabled");
    assert_eq!(now["url"]["AuthType"], "AWS_IAM");
    assert_eq!(
        now["url"]["FunctionUrl"], before["url"]["FunctionUrl"],
        "the URL is kept"
    );
    let sids: Vec<&str> = now["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap())
        .collect();
    assert_eq!(sids, ["s3-invoke"], "only the public statement went");
    assert_eq!(now["tags"]["firebreak:case"], "case-fn");
    let inventory = &contained["steps"][0]["outputs"];
    assert_eq!(
        inventory["environment_variable_names"],
        serde_json::json!(["PAYMENTS_API_KEY", "STAGE"])
    );
    assert_eq!(
        inventory["code_sha256"],
        before["configuration"]["CodeSha256"]
    );
    assert!(inventory["evidence"]["sha256"].is_string());

    // The secret value is nowhere: not in the journals, the evidence, or what was printed.
    let written = everything_written(dir.path());
    assert!(
        !written.contains(secret),
        "the environment value was written"
    );
    assert!(!contained.to_string().contains(secret));
    assert!(!stderr.contains(secret));

    // A rerun changes nothing.
    let (code, rerun, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            CONTAIN,
            "-p",
            "function_name=payments-api",
            "-p",
            "case_id=case-fn",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        mutating(&journal_of(&rerun)).is_empty(),
        "{:?}",
        mutating(&journal_of(&rerun))
    );

    // Released: exactly as before, concurrency removed (there was none), not set.
    let journal_param = format!("journal={}", journal_of(&contained).display());
    let (code, released, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            RELEASE,
            "-p",
            &journal_param,
            "-p",
            "function_name=payments-api",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{released:#}");
    assert_eq!(
        mutating(&journal_of(&released)),
        [
            "UntagResource",
            "AddPermission",
            "UpdateFunctionUrlConfig",
            "DeleteFunctionConcurrency",
            "UpdateEventSourceMapping"
        ]
    );
    assert_eq!(describe("payments-api"), before);
}

#[tokio::test]
async fn a_function_release_refuses_what_changed_since_unless_forced() {
    let _moto = moto::exclusive().await;
    seed("billing-worker");
    let dir = tempfile::tempdir().unwrap();
    let (code, contained, stderr) = cli_on_moto(
        dir.path(),
        &["run", CONTAIN, "-p", "function_name=billing-worker"],
    );
    // Unattended: the role question is refused, the function is contained all the same.
    assert_eq!(
        contained["steps"][1]["outputs"]["changed"], true,
        "{stderr}\n{contained:#}"
    );
    let _ = code;
    // Someone raises the concurrency by hand.
    script(&["set-concurrency", "billing-worker"]);
    let changed = describe("billing-worker");
    let journal_param = format!("journal={}", journal_of(&contained).display());
    let (code, refused, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            RELEASE,
            "-p",
            &journal_param,
            "-p",
            "function_name=billing-worker",
            "--yes",
        ],
    );
    assert_ne!(code, 0, "{refused:#}");
    assert!(
        format!("{stderr}{refused}").contains("reserved_concurrency changed since the containment"),
        "{stderr}\n{refused:#}"
    );
    assert!(mutating(&journal_of(&refused)).is_empty());
    assert_eq!(describe("billing-worker"), changed);
    let (code, _, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            RELEASE,
            "-p",
            &journal_param,
            "-p",
            "function_name=billing-worker",
            "-p",
            "force=true",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(describe("billing-worker")["concurrency"], Value::Null);
}
