//! Running a runbook in-process — the library call `firebreak run` makes (`engine::start`) — on
//! moto (through the proxy) or on mocked clients, and reading what it did.
//!
//! In-process rather than the built binary where the command line is not the point: the binary's
//! path (`CARGO_BIN_EXE_firebreak`) is shared by every checkout that builds into the same target
//! directory. The command line itself is tested by the CLI tests.

use std::path::{Path, PathBuf};

use firebreak::aws::Clients;
use firebreak::engine::{self, Approvals, EngineError, Mode, RunOutcome, RunStatus, Settings};
use serde_json::Value;

use super::journal::Journal;

/// A run to start: the runbook, its parameters, and how.
pub struct Run {
    runbook: PathBuf,
    params: Vec<(String, String)>,
    event: Option<Value>,
    mode: Mode,
    clients: Option<Clients>,
    approvals: Approvals,
    preflight: bool,
    adjust: Option<Box<dyn FnOnce(Settings) -> Settings>>,
}

impl Run {
    /// A runbook under `tests/fixtures/`.
    pub fn fixture(name: &str) -> Run {
        Run::path(super::repo(&format!("tests/fixtures/{name}")))
    }

    /// A runbook under the repository root (`runbooks/…`).
    pub fn repo(path: &str) -> Run {
        Run::path(super::repo(path))
    }

    pub fn path(path: impl Into<PathBuf>) -> Run {
        Run {
            runbook: path.into(),
            params: Vec::new(),
            event: None,
            mode: Mode::Live,
            clients: None,
            approvals: Approvals::Yes,
            preflight: false,
            adjust: None,
        }
    }

    /// A runbook written from `text` into `dir/runbook.yaml`.
    pub fn yaml(dir: &Path, text: &str) -> Run {
        let path = dir.join("runbook.yaml");
        std::fs::write(&path, text).expect("the runbook is written");
        Run::path(path)
    }

    pub fn param(mut self, key: &str, value: &str) -> Run {
        self.params.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn params(mut self, params: &[(&str, &str)]) -> Run {
        for (key, value) in params {
            self = self.param(key, value);
        }
        self
    }

    pub fn event(mut self, event: Value) -> Run {
        self.event = Some(event);
        self
    }

    /// A drill (no preflight unless [`Run::preflight`]).
    pub fn dry_run(mut self) -> Run {
        self.mode = Mode::DryRun;
        self
    }

    pub fn mode(mut self, mode: Mode) -> Run {
        self.mode = mode;
        self
    }

    /// These clients instead of moto's.
    pub fn clients(mut self, clients: Clients) -> Run {
        self.clients = Some(clients);
        self
    }

    /// Who approves (default `--yes`).
    pub fn approvals(mut self, approvals: Approvals) -> Run {
        self.approvals = approvals;
        self
    }

    /// Drills simulate permissions first.
    pub fn preflight(mut self) -> Run {
        self.preflight = true;
        self
    }

    /// Any other setting.
    pub fn settings(mut self, adjust: impl FnOnce(Settings) -> Settings + 'static) -> Run {
        self.adjust = Some(Box::new(adjust));
        self
    }

    pub fn runbook_path(&self) -> &Path {
        &self.runbook
    }

    /// Starts the run with its journal in `dir`; the engine's own error, if it could not start.
    pub async fn try_start(self, dir: &Path) -> Result<RunOutcome, EngineError> {
        let loaded = firebreak::check::load(&self.runbook)
            .unwrap_or_else(|e| panic!("{} loads: {e}", self.runbook.display()));
        let clients = match self.clients {
            Some(clients) => clients,
            None => super::moto::clients().await,
        };
        let mut settings = Settings {
            approvals: self.approvals,
            clients: Some(clients),
            preflight: self.preflight,
            ..Settings::new(dir.to_path_buf())
        };
        if let Some(adjust) = self.adjust {
            settings = adjust(settings);
        }
        engine::start(loaded, &self.params, self.event, self.mode, &settings).await
    }

    /// Starts the run with its journal in `dir` (panics if it could not start).
    pub async fn start(self, dir: &Path) -> Ran {
        let name = self.runbook.display().to_string();
        let outcome = self
            .try_start(dir)
            .await
            .unwrap_or_else(|e| panic!("the run of {name} starts: {e}"));
        Ran::from(outcome)
    }
}

/// A finished run: its outcome (typed and as `run --output json` prints it), the exit code the
/// command line would give, and its journal.
pub struct Ran {
    pub run: RunOutcome,
    /// The exit code `firebreak run` gives this outcome.
    pub code: i32,
    pub outcome: Value,
    pub journal: Journal,
}

impl From<RunOutcome> for Ran {
    fn from(run: RunOutcome) -> Ran {
        let code = match run.status {
            RunStatus::Succeeded => 0,
            RunStatus::Failed => 1,
            RunStatus::Refused => 3,
            RunStatus::AwaitingApproval => 4,
            RunStatus::Interrupted => 130,
        };
        let outcome = serde_json::to_value(&run).expect("an outcome serializes");
        let journal = Journal::read(&run.journal);
        Ran {
            run,
            code,
            outcome,
            journal,
        }
    }
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

    /// The calls steps made, as `service:Operation`.
    pub fn calls(&self) -> Vec<String> {
        self.journal.step_call_names()
    }

    /// Why steps failed (their `*_failed` records), for assertion messages.
    pub fn failures(&self) -> String {
        self.journal
            .values()
            .into_iter()
            .filter(|r| r["type"].as_str().is_some_and(|t| t.ends_with("_failed")))
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Succeeded, with an outcome and a journal.
    pub fn assert_succeeded(&self) -> &Self {
        assert_eq!(
            self.code,
            0,
            "run failed: {}\n{}",
            self.failures(),
            self.outcome
        );
        assert_eq!(self.outcome["status"], "succeeded", "{}", self.outcome);
        self
    }

    /// Nothing was changed: no mutating call at all was made (or would have been).
    pub fn assert_no_mutating_calls(&self) {
        let mutating = self.journal.mutating_calls();
        assert!(
            mutating.is_empty(),
            "expected no mutating call, the journal has {mutating:#?}"
        );
    }
}

/// A seeded id by key (`instance_id`, `quarantine_profile_arn`…).
pub fn id(ids: &Value, key: &str) -> String {
    ids[key]
        .as_str()
        .unwrap_or_else(|| panic!("the seed printed no `{key}` in {ids}"))
        .to_owned()
}

impl Ran {
    /// The `api_call` records of mutating step calls, as JSON objects.
    pub fn mutating_calls(&self) -> Vec<Value> {
        self.journal
            .mutating_calls()
            .into_iter()
            .map(|c| serde_json::to_value(c).expect("a call serializes"))
            .collect()
    }
}

/// Runs `tests/fixtures/ec2/<fixture>` on moto, live or as a drill, approvals given.
pub async fn ec2_fixture(dir: &Path, fixture: &str, params: &[(&str, &str)], dry_run: bool) -> Ran {
    let run = Run::fixture(&format!("ec2/{fixture}")).params(params);
    let run = if dry_run { run.dry_run() } else { run };
    run.start(dir).await
}

/// Runs `tests/fixtures/ec2/<fixture>` with these clients: the outcome and the journal's records.
pub async fn ec2_fixture_with(
    dir: &Path,
    fixture: &str,
    params: &[(&str, &str)],
    mode: Mode,
    clients: Clients,
) -> (RunOutcome, Vec<Value>) {
    let ran = Run::fixture(&format!("ec2/{fixture}"))
        .params(params)
        .mode(mode)
        .clients(clients)
        .start(dir)
        .await;
    let values = ran.journal.values();
    (ran.run, values)
}

/// Runs `runbook` (a path under the repository) on EC2 mocked by `rules`, with the SDK's
/// standard retries as in production (e.g. to see that CreateSnapshot is not retried blindly).
pub async fn mocked(
    runbook: &str,
    params: &[(&str, &str)],
    mode: Mode,
    dir: &Path,
    rules: &[&aws_smithy_mocks::Rule],
) -> RunOutcome {
    let aws = super::aws::MockAws::new()
        .ec2(rules.iter().map(|r| (*r).clone()))
        .sdk_retries()
        .build();
    Run::repo(runbook)
        .params(params)
        .mode(mode)
        .clients(aws.clients.clone())
        .start(dir)
        .await
        .run
}

/// `tests/fixtures/ec2/<fixture>` on moto for one instance, live.
pub async fn live_on(dir: &Path, fixture: &str, instance: &str) -> Ran {
    ec2_fixture(dir, fixture, &[("instance_id", instance)], false).await
}

/// `tests/fixtures/ec2/<fixture>` on moto for one instance, as a drill.
pub async fn drill_on(dir: &Path, fixture: &str, instance: &str) -> Ran {
    ec2_fixture(dir, fixture, &[("instance_id", instance)], true).await
}
