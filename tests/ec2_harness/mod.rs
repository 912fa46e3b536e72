//! Support for the EC2 containment action tests (`tests/ec2_*.rs`): running a fixture runbook
//! against moto, reading its outcome and journal, and running it with aws-smithy-mocks clients
//! for what moto cannot do.
//!
//! [`run`] runs the engine in-process: the library call `firebreak run` makes
//! (`engine::start`), with firebreak's own SDK configuration pointed at moto. Not the built
//! binary: its path (`CARGO_BIN_EXE_firebreak`, `<target>/debug/firebreak`) is shared by every
//! checkout that builds into the same `CARGO_TARGET_DIR`, and after another checkout's build
//! it stays that checkout's binary (cargo does not copy a fresh unit again), so tests would run
//! someone else's actions. The command line itself is covered by `tests/run.rs` and
//! `tests/cli.rs`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use firebreak::aws::Clients;
use firebreak::engine::{Approvals, Mode, RunStatus, Settings};
use serde_json::Value;

use crate::common::moto;

/// One run of a fixture in `tests/fixtures/ec2/`.
pub struct Ran {
    /// The exit code `firebreak run` gives (or would give) this outcome.
    pub code: i32,
    /// The outcome as `firebreak run --output json` prints it.
    pub outcome: Value,
    pub journal: Vec<Value>,
    pub stderr: String,
}

impl Ran {
    /// The outputs of step `id`.
    pub fn outputs(&self, id: &str) -> &Value {
        let step = self.outcome["steps"]
            .as_array()
            .unwrap_or_else(|| panic!("no steps in {}", self.outcome))
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no step `{id}` in {}", self.outcome));
        &step["outputs"]
    }

    /// The journal's `api_call` records, as `service:Operation`.
    pub fn calls(&self) -> Vec<String> {
        api_calls(&self.journal)
            .map(|r| format!("{}:{}", str_of(&r["service"]), str_of(&r["operation"])))
            .collect()
    }

    /// The `api_call` records of mutating operations (not Describe*, Get*, List*).
    pub fn mutating_calls(&self) -> Vec<&Value> {
        api_calls(&self.journal)
            .filter(|r| is_mutating(str_of(&r["operation"])))
            .collect()
    }

    /// Succeeded, with a run outcome and a journal that verifies.
    pub fn assert_succeeded(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "run failed: {}\n{}",
            self.stderr, self.outcome
        );
        assert_eq!(self.outcome["status"], "succeeded", "{}", self.outcome);
        self
    }

    /// Nothing was changed: no mutating call at all was made (or would have been).
    pub fn assert_no_mutating_calls(&self) {
        let mutating = self.mutating_calls();
        assert!(
            mutating.is_empty(),
            "expected no mutating call, the journal has {mutating:#?}"
        );
    }
}

/// The calls steps made (the engine's own checks before the steps — interlocks — left out).
pub fn api_calls(journal: &[Value]) -> impl Iterator<Item = &Value> {
    journal
        .iter()
        .filter(|r| r["type"] == "api_call" && r["step"] != "interlocks")
}

pub fn is_mutating(operation: &str) -> bool {
    !["Describe", "Get", "List"]
        .iter()
        .any(|prefix| operation.starts_with(prefix))
}

fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// A seeded id by key (`instance_id`, `quarantine_profile_arn`…).
pub fn id(ids: &Value, key: &str) -> String {
    ids[key]
        .as_str()
        .unwrap_or_else(|| panic!("seed-sandbox.py printed no `{key}` in {ids}"))
        .to_owned()
}

/// Runs `tests/fixtures/ec2/<fixture>` with parameters against moto, live or as a drill,
/// approvals given (`--yes`), with its journal in `dir`: the engine in-process.
pub async fn run(dir: &Path, fixture: &str, params: &[(&str, &str)], dry_run: bool) -> Ran {
    let clients = Clients::new(&moto::sdk_config().await);
    let mode = if dry_run { Mode::DryRun } else { Mode::Live };
    let (outcome, journal) = run_with(dir, fixture, params, mode, clients).await;
    let code = match outcome.status {
        RunStatus::Succeeded => 0,
        RunStatus::Failed => 1,
        RunStatus::Refused => 3,
        RunStatus::Interrupted => 130,
    };
    let outcome = serde_json::to_value(&outcome).expect("an outcome serializes");
    let stderr = journal
        .iter()
        .filter(|r| r["type"].as_str().is_some_and(|t| t.ends_with("_failed")))
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    Ran {
        code,
        outcome,
        journal,
        stderr,
    }
}

/// Runs a fixture in-process with these clients; returns the outcome and the journal.
pub async fn run_with(
    dir: &Path,
    fixture: &str,
    params: &[(&str, &str)],
    mode: Mode,
    clients: Clients,
) -> (firebreak::engine::RunOutcome, Vec<Value>) {
    let loaded = firebreak::runbook::load(&self::fixture(fixture))
        .unwrap_or_else(|e| panic!("fixture {fixture} loads: {e}"));
    let settings = Settings {
        approvals: Approvals::from_flags(true),
        clients: Some(clients),
        // The drills here test the actions; the preflight is tested on its own.
        preflight: false,
        ..Settings::new(dir.to_path_buf())
    };
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let outcome = firebreak::engine::start(loaded, &params, None, mode, &settings)
        .await
        .unwrap_or_else(|e| panic!("the run of {fixture} starts: {e}"));
    let journal = read_journal(&outcome.journal);
    (outcome, journal)
}

pub fn read_journal(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).expect("a journal line is JSON"))
        .collect()
}

pub fn fixture(name: &str) -> PathBuf {
    crate::common::repo(&format!("tests/fixtures/ec2/{name}"))
}

/// Mocked clients, for what moto cannot do (waits that take time, denied dry runs, lifecycle
/// states it never reaches, DryRun on a call where it ignores it); run them with [`run_with`].
pub mod mocked {
    use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client};
    use firebreak::aws::Clients;

    macro_rules! client {
        ($krate:ident, $rules:expr) => {{
            let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
            for rule in $rules {
                interceptor = interceptor.with_rule(rule);
            }
            $krate::Client::from_conf(
                $krate::Config::builder()
                    .behavior_version($krate::config::BehaviorVersion::latest())
                    .region($krate::config::Region::new("us-east-1"))
                    .credentials_provider($krate::config::Credentials::new(
                        "a", "b", None, None, "test",
                    ))
                    .retry_config($krate::config::retry::RetryConfig::disabled())
                    .http_client(create_mock_http_client())
                    .interceptor(interceptor)
                    .build(),
            )
        }};
    }

    /// Clients whose EC2 and Auto Scaling answer by `ec2` and `autoscaling` rules; STS answers
    /// GetCallerIdentity; any other request panics (an unexpected call fails the test).
    pub fn clients(ec2: &[Rule], autoscaling: &[Rule]) -> Clients {
        let identity = aws_smithy_mocks::mock!(aws_sdk_sts::Client::get_caller_identity)
            .then_output(|| {
                aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput::builder()
                    .account("123456789012")
                    .arn("arn:aws:iam::123456789012:user/responder")
                    .user_id("AIDATEST")
                    .build()
            });
        let none: [&Rule; 0] = [];
        // The interlocks' protected-tag check (DescribeTags): no tags unless a test says otherwise.
        let no_tags =
            aws_smithy_mocks::mock!(aws_sdk_ec2::Client::describe_tags).then_output(|| {
                aws_sdk_ec2::operation::describe_tags::DescribeTagsOutput::builder().build()
            });
        let ec2: Vec<&Rule> = ec2.iter().chain(std::iter::once(&no_tags)).collect();
        Clients {
            ec2: client!(aws_sdk_ec2, ec2),
            iam: client!(aws_sdk_iam, none),
            ssm: client!(aws_sdk_ssm, none),
            cloudformation: client!(aws_sdk_cloudformation, none),
            sts: client!(aws_sdk_sts, [&identity]),
            autoscaling: client!(aws_sdk_autoscaling, autoscaling),
            sns: client!(aws_sdk_sns, none),
        }
    }
}
