//! The approval loop as a responder meets it: a finding contained up to the stop approval and
//! parked; `approvals` lists it without touching anything; `approve` and `deny` write a decision
//! record (who, where, why, when) and carry the run on; a step's `approvers` refuse anyone else;
//! an approval past its deadline is denied by the next command that touches it. Against moto.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::dispatch::{dispatch, event, journal_records, seed};
use super::unattended::instance_state;
use crate::support::{cli_on_moto, moto, proxy, sandbox};

/// `firebreak approvals --output json` in `dir`.
fn waiting(dir: &Path) -> Vec<Value> {
    let (code, listed, stderr) = cli_on_moto(dir, &["approvals"]);
    assert_eq!(code, 0, "{stderr}");
    listed
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{listed:#} {stderr}"))
}

/// Dispatches a GuardDuty finding for `instance` (finding id `finding`); returns the parked
/// run's id and journal.
fn parked(dir: &Path, ids: &super::dispatch::Ids, finding: &str) -> (String, String) {
    let text = event("guardduty-ec2", ids).replace("16afba5c5c43e07c9e3e5e2e544e95df", finding);
    let (code, reports, stderr) = dispatch(dir, &text, &[]);
    assert_eq!(code, 4, "{stderr}\n{reports:#}");
    let run = &reports[0]["matched"][0]["run"];
    (
        run["run_id"].as_str().unwrap().to_owned(),
        run["journal"].as_str().unwrap().to_owned(),
    )
}

fn decisions(journal: &str) -> Vec<Value> {
    journal_records(journal)
        .into_iter()
        .filter(|r| r["type"] == "decision")
        .collect()
}

async fn caller_arn() -> String {
    let sts = aws_sdk_sts::Client::new(&moto::direct_config().await);
    let identity = sts.get_caller_identity().send().await.unwrap();
    identity.arn().unwrap().to_owned()
}

#[tokio::test]
async fn a_parked_finding_is_listed_then_approved_and_denied_with_a_decision_record() {
    let _moto = moto::exclusive().await;
    let ids = seed(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let (run_id, journal) = parked(dir.path(), &ids, "aaaa0000aaaa0000aaaa0000aaaa0001");

    // Listing: what waits, where, until when — and nothing written, nothing called.
    proxy::reset();
    let before = std::fs::read(&journal).unwrap();
    let listed = waiting(dir.path());
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let entry = &listed[0];
    assert_eq!(entry["run_id"], run_id.as_str());
    assert_eq!(entry["runbook"], "ec2-instance-compromise");
    assert_eq!(entry["step"], "approve_stop");
    assert_eq!(entry["expired"], false);
    assert!(
        entry["prompt"].as_str().unwrap().contains(&ids.instance),
        "{entry:#}"
    );
    assert!(
        entry["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().contains(&ids.instance)),
        "{entry:#}"
    );
    let since = entry["since"].as_str().unwrap();
    let expires = entry["expires_at"]
        .as_str()
        .expect("the runbook's 12h deadline");
    assert!(expires > since, "{since} .. {expires}");
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        before,
        "listing wrote nothing"
    );
    assert!(
        proxy::calls().is_empty(),
        "listing called nothing: {:?}",
        proxy::calls()
    );

    // Approve: the decision record names the decider; the run stops the instance.
    let (code, outcome, stderr) = cli_on_moto(
        dir.path(),
        &["approve", &run_id, "--reason", "memory captured; stop it"],
    );
    assert_eq!(code, 0, "{stderr}\n{outcome:#}");
    assert_eq!(outcome["status"], "succeeded", "{outcome:#}");
    let ec2 = sandbox::ec2().await;
    assert_eq!(instance_state(&ec2, &ids.instance).await, "stopped");
    let made = decisions(&journal);
    assert_eq!(made.len(), 1, "{made:#?}");
    assert_eq!(made[0]["step"], "approve_stop");
    assert_eq!(made[0]["verdict"], "approve");
    assert_eq!(made[0]["reason"], "memory captured; stop it");
    assert_eq!(made[0]["channel"], "cli");
    assert_eq!(made[0]["decided_by"]["arn"], caller_arn().await.as_str());
    assert!(!made[0]["decided_by"]["user"].as_str().unwrap().is_empty());
    assert!(!made[0]["decided_by"]["host"].as_str().unwrap().is_empty());
    assert!(made[0]["decided_at"].as_str().unwrap().ends_with('Z'));
    let records = journal_records(&journal);
    let approval = records
        .iter()
        .rev()
        .find(|r| r["type"] == "approval")
        .unwrap();
    assert_eq!(approval["approved"], true, "{approval}");
    assert!(
        approval["by"].as_str().unwrap().contains("memory captured"),
        "{approval}"
    );
    assert!(waiting(dir.path()).is_empty(), "nothing waits any more");
    let verify = crate::support::firebreak()
        .args(["journal", "verify", &journal])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // Another case, denied: the stop skips, the run succeeds with the denial recorded.
    let second = sandbox::seed("web-2");
    let other = super::dispatch::Ids {
        instance: second["instance_id"].as_str().unwrap().to_owned(),
        ..ids
    };
    let (run_2, journal_2) = parked(dir.path(), &other, "bbbb0000bbbb0000bbbb0000bbbb0002");
    let (code, outcome, stderr) = cli_on_moto(
        dir.path(),
        &[
            "deny",
            &run_2,
            "--step",
            "approve_stop",
            "--reason",
            "production database: keep it running",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{outcome:#}");
    assert_eq!(outcome["status"], "succeeded", "{outcome:#}");
    assert_eq!(instance_state(&ec2, &other.instance).await, "running");
    let made = decisions(&journal_2);
    assert_eq!(made.len(), 1);
    assert_eq!(made[0]["verdict"], "deny");
    let records = journal_records(&journal_2);
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "step_skipped" && r["step"] == "stop"),
        "the stop skipped"
    );

    // Deciding a run that does not wait is an input error, and writes nothing.
    let before = std::fs::read(&journal_2).unwrap();
    let (code, _, stderr) = cli_on_moto(dir.path(), &["approve", &run_2, "--reason", "again"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("does not wait for a decision"), "{stderr}");
    assert_eq!(std::fs::read(&journal_2).unwrap(), before);
}

/// The fixture runbook with its deadline and approvers filled in, in `dir`.
fn decide_runbook(dir: &Path, timeout: &str, approvers: &str) -> PathBuf {
    let text = std::fs::read_to_string("tests/fixtures/approvals/decide.yaml")
        .unwrap()
        .replace("TIMEOUT", timeout)
        .replace("APPROVERS", approvers);
    let path = dir.join("decide.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `firebreak run RUNBOOK` with nobody to ask: parks, exit 4; returns the run id and journal.
fn run_parked(dir: &Path, runbook: &Path) -> (String, String) {
    let (code, outcome, stderr) = cli_on_moto(dir, &["run", runbook.to_str().unwrap()]);
    assert_eq!(code, 4, "{stderr}\n{outcome:#}");
    (
        outcome["run_id"].as_str().unwrap().to_owned(),
        outcome["journal"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn only_a_named_approver_may_decide_and_anyone_else_writes_nothing() {
    let _moto = moto::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let me = caller_arn().await;

    let lead_only = decide_runbook(
        dir.path(),
        "1h",
        "[\"arn:aws:sts::*:assumed-role/IR-Lead/*\"]",
    );
    let (run_id, journal) = run_parked(dir.path(), &lead_only);
    let before = std::fs::read(&journal).unwrap();
    let (code, _, stderr) = cli_on_moto(dir.path(), &["approve", &run_id, "--reason", "go"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains(&me) && stderr.contains("IR-Lead"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        before,
        "a refused decision writes nothing"
    );
    // `--yes` is a person's decision too: it does not pass the approvers either.
    let (code, _, stderr) = cli_on_moto(dir.path(), &["resume", &run_id, "--yes"]);
    assert_eq!(code, 4, "{stderr}");
    let approval = journal_records(&journal)
        .into_iter()
        .rev()
        .find(|r| r["type"] == "approval")
        .unwrap();
    assert_eq!(approval["parked"], true);
    assert!(
        approval["by"]
            .as_str()
            .unwrap()
            .contains("not among the step's approvers")
    );

    let mine = decide_runbook(
        &dir.path().join("mine").tap_mkdir(),
        "1h",
        &format!("[\"{}\"]", me.replace("123456789012", "*")),
    );
    let (run_id, journal) = run_parked(dir.path(), &mine);
    let (code, outcome, stderr) = cli_on_moto(dir.path(), &["approve", &run_id, "--reason", "go"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(outcome["status"], "succeeded");
    assert_eq!(decisions(&journal)[0]["decided_by"]["arn"], me.as_str());
}

#[tokio::test]
async fn an_expired_approval_is_denied_by_the_next_command_never_by_listing() {
    let _moto = moto::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let runbook = decide_runbook(dir.path(), "1s", "[]");
    let (run_id, journal) = run_parked(dir.path(), &runbook);
    std::thread::sleep(std::time::Duration::from_millis(2100));

    let before = std::fs::read(&journal).unwrap();
    let listed = waiting(dir.path());
    assert_eq!(listed[0]["expired"], true, "{listed:#?}");
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        before,
        "listing decides nothing"
    );

    // A late approve is not an approve: the deadline's deny is recorded and applied.
    let (code, outcome, stderr) =
        cli_on_moto(dir.path(), &["approve", &run_id, "--reason", "late"]);
    assert_eq!(code, 3, "{stderr}\n{outcome:#}");
    assert!(stderr.contains("not approved"), "{stderr}");
    assert_eq!(
        outcome["status"], "succeeded",
        "the run finished with the denial"
    );
    let made = decisions(&journal);
    assert_eq!(made.len(), 1, "{made:#?}");
    assert_eq!(made[0]["verdict"], "deny");
    assert_eq!(made[0]["channel"], "timeout");
    let records = journal_records(&journal);
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "step_skipped" && r["step"] == "act"),
        "the approved-only step skipped"
    );

    // The same through a plain resume (a worker, a re-delivered finding).
    let (run_2, journal_2) = run_parked(&dir.path().join("second").tap_mkdir(), &runbook);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (code, _, stderr) = cli_on_moto(&dir.path().join("second"), &["resume", &run_2]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(decisions(&journal_2)[0]["channel"], "timeout");
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    /// Creates the directory and hands it back.
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

/// The waiting run's notification names the step, the deadline and the exact command lines;
/// `firebreak remind` sends it again, marked a reminder, once the deadline is near — once — and
/// never for an approval that is not yet due.
#[tokio::test]
async fn a_waiting_run_is_notified_with_the_commands_and_reminded_once() {
    let _moto = moto::exclusive().await;
    let (sqs, topic_arn, queue_url) = super::notify::topic_with_inbox().await;
    let dir = tempfile::tempdir().unwrap();
    let runbook = decide_runbook(dir.path(), "8s", "[]");
    let text = std::fs::read_to_string(&runbook).unwrap()
        + &format!("notify:\n  topic_arn: \"{topic_arn}\"\n  on: [awaiting_approval]\n");
    std::fs::write(&runbook, text).unwrap();
    let (run_id, journal) = run_parked(dir.path(), &runbook);

    let first = super::notify::received(&sqs, &queue_url, 1).await;
    assert_eq!(first.len(), 1, "{first:#?}");
    let message: Value = serde_json::from_str(first[0]["Message"].as_str().unwrap()).unwrap();
    let decide = &message["firebreak"]["decide"];
    assert_eq!(message["firebreak"]["event"], "awaiting_approval");
    assert_eq!(decide["step"], "ask");
    assert!(
        decide["expires_at"].as_str().unwrap().ends_with('Z'),
        "{decide}"
    );
    assert_eq!(
        decide["approve"],
        format!("firebreak approve {run_id} --step ask --reason \"…\"").as_str()
    );
    assert_eq!(
        decide["deny"],
        format!("firebreak deny {run_id} --step ask --reason \"…\"").as_str()
    );
    assert!(message["firebreak"].get("reminder").is_none());

    // Not yet near the deadline: nothing is sent, nothing written.
    let before = std::fs::read(&journal).unwrap();
    let (code, _, stderr) = cli_on_moto(dir.path(), &["remind", "--within", "1s"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("no approval"), "{stderr}");
    assert_eq!(std::fs::read(&journal).unwrap(), before);

    // Inside the window: one reminder, and the run still waits with the same deadline.
    std::thread::sleep(std::time::Duration::from_millis(3000));
    let (code, _, stderr) = cli_on_moto(dir.path(), &["remind", "--within", "6s"]);
    assert_eq!(code, 0, "{stderr}");
    let bodies = super::notify::received(&sqs, &queue_url, 1).await;
    assert_eq!(bodies.len(), 1, "{bodies:#?}");
    assert!(
        bodies[0]["Subject"]
            .as_str()
            .unwrap()
            .contains("(reminder)"),
        "{:#}",
        bodies[0]
    );
    let reminder: Value = serde_json::from_str(bodies[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(reminder["firebreak"]["reminder"], true);
    assert_eq!(
        reminder["firebreak"]["decide"]["expires_at"],
        decide["expires_at"]
    );
    let listed = waiting(dir.path());
    assert_eq!(listed[0]["run_id"], run_id.as_str());
    assert_eq!(listed[0]["expires_at"], decide["expires_at"]);

    // Once: a second pass finds it reminded.
    let before = std::fs::read(&journal).unwrap();
    let (code, _, stderr) = cli_on_moto(dir.path(), &["remind", "--within", "6s"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(std::fs::read(&journal).unwrap(), before, "reminded once");
}
