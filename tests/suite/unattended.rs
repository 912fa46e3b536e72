//! The unattended path, end to end as it is deployed: findings through `dispatch`, runs resumed
//! after a refusal or a crash, a person's decision that an event cannot give, findings from
//! another region, and AWS throttling the safety checks. Against moto behind the counting proxy,
//! so "nothing changed" is asserted at the wire, not from the journal firebreak wrote itself.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::dispatch::{Ids, dispatch, event, journal_records, seed};
use crate::support::{Output, crash, firebreak, firebreak_bin, moto, output, proxy, sandbox};

/// What changed at the wire since the last reset, as `service:Operation`.
fn changes() -> Vec<String> {
    proxy::changes().iter().map(|c| c.name()).collect()
}

fn run_in(dir: &Path) -> Command {
    let mut command = firebreak();
    command.envs(moto::env()).env("FIREBREAK_JOURNAL_DIR", dir);
    command
}

/// `firebreak run runbooks/ec2-instance-compromise.yaml` on `instance`, `--yes`, JSON outcome.
fn contain(dir: &Path, instance: &str) -> (Output, Value) {
    let out = output(run_in(dir).args([
        "run",
        "runbooks/ec2-instance-compromise.yaml",
        "-p",
        &format!("instance_id={instance}"),
        "--yes",
        "--output",
        "json",
    ]));
    let outcome = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    (out, outcome)
}

pub(crate) async fn instance_state(ec2: &aws_sdk_ec2::Client, instance: &str) -> String {
    ec2.describe_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap()
        .reservations()[0]
        .instances()[0]
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default()
}

/// A live run `holder` (its lease held) holding the lock on `instance` in moto's account and
/// region, until the guard is dropped.
pub(crate) fn hold_lock(
    dir: &Path,
    holder: &str,
    instance: &str,
) -> (firebreak::lease::RunLease, firebreak::lock::LockSet) {
    let lease = firebreak::lease::RunLease::acquire(dir, holder).unwrap();
    let held = firebreak::lock::acquire(
        dir,
        &[firebreak::lock::resource_key(
            "123456789012",
            "us-east-1",
            instance,
        )],
        &firebreak::lock::LockOwner::new(holder, firebreak::journal::Mode::Live),
        firebreak::lock::TakeoverPolicy::default(),
    )
    .unwrap();
    (lease, held)
}

/// Every lock file in the journal directory, as written.
fn locks(dir: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir.join("locks")) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "lock"))
        .map(|p| serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap())
        .collect()
}

/// H9: a standards-control finding ("rotate keys every 90 days", "use IMDSv2") and a finding
/// any principal could import under the name "GuardDuty" start nothing: no runbook matches,
/// and no AWS call is made at all.
#[tokio::test]
async fn posture_and_imported_findings_start_nothing() {
    let _moto = moto::exclusive().await;
    let ids = seed(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    for fixture in [
        "securityhub-control-iam3",
        "securityhub-control-ec2",
        "securityhub-custom-product",
    ] {
        let (code, reports, stderr) = dispatch(dir.path(), &event(fixture, &ids), &[]);
        assert_eq!(code, 0, "{fixture}: {stderr}");
        assert_eq!(reports[0]["matched"], json!([]), "{fixture}: {reports:#}");
    }
    assert_eq!(proxy::calls().len(), 0, "{:#?}", proxy::calls());

    // The trigger as firebreak shipped it before (any Security Hub finding on an instance) is
    // refused by `validate`, naming the line and what to write instead.
    let old = output(firebreak().args([
        "validate",
        "tests/fixtures/journals/format-1/runbooks/ec2-instance-compromise.yaml",
    ]));
    assert_eq!(old.code, Some(2), "{}{}", old.stdout, old.stderr);
    let said = format!("{}{}", old.stdout, old.stderr);
    assert!(
        said.contains("must name the products it trusts")
            && said.contains("::product/aws/guardduty"),
        "{said}"
    );
}

/// H5: an event never approves for a person. A dispatched finding is contained up to the stop
/// approval, then waits: exit 4, instance isolated but running, its locks parked (a responder's
/// run on it is refused, naming the run), later deliveries are duplicates. A person at a
/// terminal finishes it with `resume --yes`.
#[tokio::test]
async fn a_dispatched_finding_isolates_then_waits_for_a_person() {
    let _moto = moto::exclusive().await;
    let ids = seed(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let finding = event("guardduty-ec2", &ids);

    let (code, _, stderr) = dispatch(dir.path(), &finding, &["--yes"]);
    assert_eq!(code, 2, "dispatch has no --yes: {stderr}");
    assert!(stderr.contains("never approves for a person"), "{stderr}");
    assert_eq!(proxy::calls().len(), 0);

    let (code, reports, stderr) = dispatch(dir.path(), &finding, &[]);
    assert_eq!(code, 4, "{stderr}\n{reports:#}");
    let run = &reports[0]["matched"][0]["run"];
    assert_eq!(run["status"], "awaiting_approval", "{run:#}");
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    let records = journal_records(run["journal"].as_str().unwrap());
    let approval = records.iter().find(|r| r["type"] == "approval").unwrap();
    assert_eq!(approval["parked"], true, "{approval}");
    assert_eq!(approval["step"], "approve_stop");
    assert!(
        !records
            .iter()
            .any(|r| r["type"] == "step_started" && r["step"] == "stop"),
        "nothing after the approval ran"
    );
    assert!(
        !proxy::changes()
            .iter()
            .any(|c| c.operation == "StopInstances")
    );

    let ec2 = sandbox::ec2().await;
    assert_eq!(instance_state(&ec2, &ids.instance).await, "running");
    let isolation = sandbox::firebreak_groups(&ec2, "isolation").await;
    assert_eq!(isolation.len(), 1, "{isolation:?}");
    assert!(
        !sandbox::interfaces_in(&ec2, &ids.instance, &isolation[0])
            .await
            .is_empty(),
        "the instance is isolated while it waits"
    );
    let held = locks(dir.path());
    assert!(!held.is_empty());
    assert!(
        held.iter()
            .all(|l| l["parked"] == true && l["run_id"] == run_id.as_str()),
        "{held:#?}"
    );

    // Waiting is in progress: the next delivery is a duplicate, and a responder's own run on
    // the instance is refused while the decision is pending.
    let (code, reports, _) = dispatch(dir.path(), &finding, &[]);
    assert_eq!(code, 0);
    assert_eq!(reports[0]["matched"][0]["outcome"], "duplicate");
    assert_eq!(reports[0]["matched"][0]["status"], "awaiting_approval");
    let (refused, _) = contain(dir.path(), &ids.instance);
    assert_eq!(refused.code, Some(3), "{}", refused.stderr);
    assert!(refused.stderr.contains(&run_id), "{}", refused.stderr);

    // A person, at a terminal.
    let screen = at_a_terminal(dir.path(), &format!("resume {run_id} --yes"));
    let records = journal_records(run["journal"].as_str().unwrap());
    assert_eq!(records.last().unwrap()["status"], "succeeded", "{screen}");
    let approvals: Vec<&Value> = records.iter().filter(|r| r["type"] == "approval").collect();
    assert_eq!(approvals.last().unwrap()["approved"], true);
    assert_eq!(approvals.last().unwrap()["by"], "flag (--yes)");
    assert_eq!(instance_state(&ec2, &ids.instance).await, "stopped");
    assert!(locks(dir.path()).is_empty(), "released when it ended");
}

/// Runs `firebreak <args>` under a pseudo-terminal (util-linux `script`); returns the screen.
fn at_a_terminal(dir: &Path, args: &str) -> String {
    let command = format!("{} {args}", firebreak_bin().display());
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", dir)
        .env("NO_COLOR", "1")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs (apt-get install bsdutils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// H1: a run refused by a policy interlock is never resumed — not even after the protection
/// is gone, since the refusal was the decision — and the attempt makes no AWS call at all.
#[tokio::test]
async fn resume_of_an_interlock_refusal_is_refused_and_calls_nothing() {
    let _moto = moto::exclusive().await;
    let ids = seed(&["--protected"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (refused, outcome) = contain(dir.path(), &ids.instance);
    assert_eq!(refused.code, Some(3), "{}", refused.stderr);
    assert_eq!(changes(), Vec::<String>::new());
    let run_id = outcome["run_id"].as_str().unwrap().to_owned();

    let ec2 = sandbox::ec2().await;
    ec2.delete_tags()
        .resources(&ids.instance)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("firebreak:protected")
                .build(),
        )
        .send()
        .await
        .unwrap();
    proxy::reset();
    let resumed = output(run_in(dir.path()).args(["resume", &run_id, "--yes"]));
    assert_eq!(resumed.code, Some(3), "{}", resumed.stderr);
    assert!(
        resumed.stderr.contains("a refusal is final"),
        "{}",
        resumed.stderr
    );
    assert_eq!(proxy::calls().len(), 0, "{:#?}", proxy::calls());
    assert_eq!(instance_state(&ec2, &ids.instance).await, "running");
}

/// H1: every interlock runs again on resume. A run that crashed after its first step, on an
/// instance protected since, is refused on resume before any change.
#[tokio::test]
async fn a_resumed_run_checks_the_interlocks_again() {
    let _moto = moto::exclusive().await;
    let ids = seed(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = crash::crash_at(
        "after-step-finished:describe",
        dir.path(),
        &[
            "run",
            "runbooks/ec2-instance-compromise.yaml",
            "-p",
            &format!("instance_id={}", ids.instance),
            "--yes",
        ],
    );
    let ec2 = sandbox::ec2().await;
    ec2.create_tags()
        .resources(&ids.instance)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("firebreak:protected")
                .value("true")
                .build(),
        )
        .send()
        .await
        .unwrap();
    proxy::reset();
    let resumed = crash::resume(dir.path(), &journal, &[]);
    assert_eq!(resumed.code, Some(3), "{}", resumed.stderr);
    assert_eq!(changes(), Vec::<String>::new());
    let records = journal_records(journal.to_str().unwrap());
    let resumed_at = records
        .iter()
        .position(|r| r["type"] == "run_resumed")
        .unwrap();
    let check = records[resumed_at..]
        .iter()
        .find(|r| r["type"] == "interlock" && r["check"] == "protected_tags")
        .expect("the protected-tag interlock ran on resume");
    assert_eq!(check["passed"], false, "{check}");
    assert_eq!(records.last().unwrap()["status"], "refused");
    assert_eq!(records.last().unwrap()["refused_by"], "interlock");
}

/// The region of a finding decides where firebreak acts: a GuardDuty finding from us-west-2 is
/// contained in us-west-2 (configured region us-east-1); an explicit `--region` that disagrees
/// is refused, naming both.
#[tokio::test]
async fn a_finding_from_another_region_is_contained_there() {
    let _moto = moto::exclusive().await;
    let west = sandbox::seed_with("web-west", &["--region", "us-west-2"]);
    let ids = Ids {
        instance: west["instance_id"].as_str().unwrap().to_owned(),
        role: "web-west-app".into(),
        key: String::new(),
        user: String::new(),
    };
    let dir = tempfile::tempdir().unwrap();
    let finding = event("guardduty-ec2", &ids).replace("us-east-1", "us-west-2");

    let (code, reports, stderr) = dispatch(
        dir.path(),
        &finding.replace("16afba5c", "46afba5c"),
        &["--region", "us-east-1"],
    );
    assert_eq!(code, 3, "{stderr}");
    let reason = reports[0]["matched"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("us-west-2") && reason.contains("--region says us-east-1"),
        "{reports:#}"
    );
    assert_eq!(changes(), Vec::<String>::new());

    let (code, reports, stderr) = dispatch(dir.path(), &finding, &[]);
    assert_eq!(code, 4, "{stderr}\n{reports:#}");
    let run = &reports[0]["matched"][0]["run"];
    let records = journal_records(run["journal"].as_str().unwrap());
    assert_eq!(records[0]["region"], "us-west-2");
    let west_ec2 = sandbox::ec2_in("us-west-2").await;
    let isolation = sandbox::firebreak_groups(&west_ec2, "isolation").await;
    assert_eq!(
        isolation.len(),
        1,
        "the isolation group was made in us-west-2"
    );
    assert!(
        !sandbox::interfaces_in(&west_ec2, &ids.instance, &isolation[0])
            .await
            .is_empty()
    );
    let east = sandbox::ec2().await;
    assert!(
        sandbox::firebreak_groups(&east, "isolation")
            .await
            .is_empty()
    );
}

/// H7: an identity call that fails (throttled every time) ends the run `failed` before any
/// change, never refused for good; the next delivery of the finding resumes that run.
#[tokio::test]
async fn a_throttled_identity_fails_the_run_and_the_next_delivery_resumes_it() {
    let _moto = moto::exclusive().await;
    let ids = seed(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let finding = event("guardduty-ec2", &ids);
    proxy::faults(
        7,
        json!([{"service": "sts", "operation": "GetCallerIdentity", "fault": "throttle", "rate": 1.0}]),
    );
    let (code, reports, stderr) = dispatch(dir.path(), &finding, &[]);
    assert_eq!(code, 1, "{stderr}\n{reports:#}");
    let run = &reports[0]["matched"][0]["run"];
    assert_eq!(run["status"], "failed");
    assert_eq!(changes(), Vec::<String>::new());
    let records = journal_records(run["journal"].as_str().unwrap());
    assert!(
        records.last().unwrap()["reason"]
            .as_str()
            .unwrap()
            .contains("cannot confirm the account"),
        "{:#}",
        records.last().unwrap()
    );
    assert!(records.last().unwrap()["refused_by"].is_null());

    proxy::faults(7, json!([]));
    let (code, reports, stderr) = dispatch(dir.path(), &finding, &[]);
    assert_eq!(code, 4, "{stderr}\n{reports:#}");
    assert_eq!(reports[0]["matched"][0]["outcome"], "resumed");
    assert_eq!(reports[0]["matched"][0]["run"]["run_id"], run["run_id"]);
}

/// Forty-eight instances, half of the interlock's DescribeTags calls throttled: the protected
/// one among them is still found (the check retries like a step), and the run is refused
/// before any change rather than failing on the check — or passing without it.
#[tokio::test]
async fn the_interlock_holds_under_half_throttling() {
    let _moto = moto::exclusive().await;
    let protected = sandbox::seed_with("web-protected", &["--protected"]);
    let protected = protected["instance_id"].as_str().unwrap().to_owned();
    let mut fleet: Vec<String> = (1..48u64).map(|n| format!("i-0f{n:015x}")).collect();
    fleet.insert(23, protected.clone());
    // The first three attempts throttled (as many as the SDK's own retries make), then half:
    // only firebreak's own retries of the check get through.
    proxy::faults(
        11,
        json!([
            {"service": "ec2", "operation": "DescribeTags", "fault": "throttle", "max": 3},
            {"service": "ec2", "operation": "DescribeTags", "fault": "throttle", "rate": 0.5},
        ]),
    );
    let dir = tempfile::tempdir().unwrap();
    let out = output(run_in(dir.path()).args([
        "run",
        "runbooks/ec2-fleet-containment.yaml",
        "-p",
        &format!("instance_ids={}", fleet.join(",")),
        "--yes",
        "--output",
        "json",
    ]));
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    let outcome: Value = serde_json::from_str(&out.stdout).unwrap();
    let records = journal_records(outcome["journal"].as_str().unwrap());
    let check = records
        .iter()
        .find(|r| r["type"] == "interlock" && r["check"] == "protected_tags")
        .unwrap();
    assert_eq!(check["passed"], false);
    assert_eq!(
        check["protected"][0]["resource"],
        protected.as_str(),
        "{check}"
    );
    let throttled = proxy::calls()
        .iter()
        .filter(|c| c.operation == "DescribeTags" && c.fault.as_deref() == Some("throttle"))
        .count();
    assert!(
        throttled >= 3,
        "the proxy throttled DescribeTags {throttled} times"
    );
    assert_eq!(changes(), Vec::<String>::new());
    assert_eq!(outcome["status"], "refused");
}

/// M12: a lock-held refusal is journaled (an `interlock` record `lock`) — the responder sees
/// which run holds the resource in the journal, not only on a terminal that may be gone.
#[tokio::test]
async fn a_lock_held_refusal_is_journaled() {
    let _moto = moto::exclusive().await;
    let ids = seed(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let holder = "20261128T000000Z-bbbbbb";
    let _held = hold_lock(dir.path(), holder, &ids.instance);
    let (refused, outcome) = contain(dir.path(), &ids.instance);
    assert_eq!(refused.code, Some(3), "{}", refused.stderr);
    let records = journal_records(outcome["journal"].as_str().unwrap());
    let lock = records
        .iter()
        .find(|r| r["type"] == "interlock" && r["check"] == "lock")
        .expect("the refusal is journaled");
    assert!(lock["reason"].as_str().unwrap().contains(holder), "{lock}");
    assert_eq!(records.last().unwrap()["refused_by"], "lock");
    assert_eq!(changes(), Vec::<String>::new());
}
