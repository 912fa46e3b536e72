//! `dispatch --verify-finding`: a finding is acted on only as the service that reported it holds
//! it. Security Hub against moto (which implements `GetFindings`), through the counting proxy so
//! "nothing changed" is asserted at the wire; GuardDuty with the mock harness (moto has no
//! GuardDuty `GetFindings`).

use std::path::Path;

use aws_sdk_guardduty::operation::get_findings::{GetFindingsError, GetFindingsOutput};
use aws_sdk_guardduty::operation::list_detectors::ListDetectorsOutput;
use aws_sdk_guardduty::types::{Finding, InstanceDetails, Resource, Service};
use aws_smithy_mocks::{Rule, mock};
use aws_smithy_types::error::ErrorMetadata;
use firebreak::engine::{RunStatus, Settings, VerifyFinding};
use serde_json::Value;

use super::dispatch::{dispatch, event, journal_records, seed};
use super::unattended::instance_state;
use crate::support::aws::MockAws;
use crate::support::run::Run;
use crate::support::{firebreak, moto, output, proxy, sandbox};

fn changes() -> Vec<String> {
    proxy::changes().iter().map(|c| c.name()).collect()
}

/// The `finding` interlock records of a journal.
fn finding_checks(journal: &str) -> Vec<Value> {
    journal_records(journal)
        .into_iter()
        .filter(|r| r["type"] == "interlock" && r["check"] == "finding")
        .collect()
}

/// Dispatches `text` into a journal directory of its own; (exit, the one matched outcome, stderr).
fn dispatch_once(text: &str) -> (i32, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let (code, reports, stderr) = dispatch(dir.path(), text, &[]);
    std::mem::forget(dir); // the journal is read after
    (code, reports[0]["matched"][0].clone(), stderr)
}

/// A Security Hub event that Security Hub does not hold (written onto the queue by someone
/// else), one whose resource is not the finding's, and a finding a person resolved are refused
/// for good before any change; the real, open finding is contained.
#[tokio::test]
async fn security_hub_findings_are_acted_on_only_as_security_hub_holds_them() {
    let _moto = moto::exclusive().await;
    let ids = seed(&[]).await;
    let other = sandbox::seed_with("web-2", &[])["instance_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let genuine = event("securityhub-ec2", &ids);

    // Forged: Security Hub never reported it.
    proxy::reset();
    let (code, matched, stderr) = dispatch_once(&genuine);
    assert_eq!(code, 3, "{stderr}\n{matched:#}");
    assert_eq!(matched["run"]["status"], "refused", "{matched:#}");
    let checks = finding_checks(matched["run"]["journal"].as_str().unwrap());
    assert_eq!(checks.len(), 1, "{checks:#?}");
    assert_eq!(checks[0]["passed"], false);
    assert!(
        checks[0]["reason"]
            .as_str()
            .unwrap()
            .contains("Security Hub has no finding"),
        "{checks:#?}"
    );
    assert_eq!(
        changes(),
        Vec::<String>::new(),
        "nothing changed at the wire"
    );
    assert_eq!(proxy::count("securityhub:GetFindings"), 1);

    // Real finding, but the event names another instance.
    sandbox::import_findings(&genuine, &[]);
    proxy::reset();
    let swapped = genuine.replace(&ids.instance, &other);
    let (code, matched, stderr) = dispatch_once(&swapped);
    assert_eq!(code, 3, "{stderr}\n{matched:#}");
    let reason = finding_checks(matched["run"]["journal"].as_str().unwrap())[0]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.contains("/Resources/0") && reason.contains(&other),
        "{reason}"
    );
    assert_eq!(
        changes(),
        Vec::<String>::new(),
        "nothing changed at the wire"
    );

    // The real finding as it was reported: verified, then contained (a drill here: the
    // containment itself is tested elsewhere).
    let (code, matched, stderr) = {
        let dir = tempfile::tempdir().unwrap();
        let (code, reports, stderr) = dispatch(dir.path(), &genuine, &["--dry-run"]);
        std::mem::forget(dir);
        (code, reports[0]["matched"][0].clone(), stderr)
    };
    assert!(code == 0 || code == 1, "{stderr}\n{matched:#}");
    assert_eq!(matched["outcome"], "ran", "{matched:#}");
    let checks = finding_checks(matched["run"]["journal"].as_str().unwrap());
    assert_eq!(checks[0]["passed"], true, "{checks:#?}");

    // Resolved by a person in Security Hub since: not contained.
    sandbox::import_findings(&genuine, &["Workflow.Status=RESOLVED"]);
    proxy::reset();
    let (code, matched, stderr) = dispatch_once(&genuine);
    assert_eq!(code, 3, "{stderr}\n{matched:#}");
    let reason = finding_checks(matched["run"]["journal"].as_str().unwrap())[0]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reason.contains("resolved"), "{reason}");
    assert_eq!(
        changes(),
        Vec::<String>::new(),
        "nothing changed at the wire"
    );

    // `--verify-finding off` is the operator's explicit choice: the event is taken as given.
    let dir = tempfile::tempdir().unwrap();
    let (code, reports, stderr) = dispatch(
        dir.path(),
        &genuine,
        &["--dry-run", "--verify-finding", "off"],
    );
    assert!(code == 0 || code == 1, "{stderr}\n{reports:#}");
    let journal = reports[0]["matched"][0]["run"]["journal"].as_str().unwrap();
    assert!(finding_checks(journal).is_empty());
}

/// The finding is read again on every resume: a dispatched run waits for a person at the stop;
/// meanwhile the finding is resolved as a false positive; the person's resume is refused and the
/// instance is not stopped.
#[tokio::test]
async fn a_resume_reads_the_finding_again() {
    let _moto = moto::exclusive().await;
    let ids = seed(&[]).await;
    let genuine = event("securityhub-ec2", &ids);
    sandbox::import_findings(&genuine, &[]);
    let dir = tempfile::tempdir().unwrap();
    let (code, reports, stderr) = dispatch(dir.path(), &genuine, &[]);
    assert_eq!(code, 4, "{stderr}\n{reports:#}");
    let run = &reports[0]["matched"][0]["run"];
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    let journal = run["journal"].as_str().unwrap().to_owned();
    assert_eq!(
        journal_records(&journal)[0]["verify_finding"],
        "security_hub"
    );

    sandbox::import_findings(&genuine, &["Workflow.Status=RESOLVED"]);
    proxy::reset();
    let resumed = output(
        firebreak()
            .envs(moto::env())
            .env("FIREBREAK_JOURNAL_DIR", dir.path())
            .args(["resume", &run_id, "--yes"]),
    );
    assert_eq!(
        resumed.code,
        Some(3),
        "{}{}",
        resumed.stdout,
        resumed.stderr
    );
    assert!(resumed.stderr.contains("resolved"), "{}", resumed.stderr);
    assert_eq!(
        changes(),
        Vec::<String>::new(),
        "nothing changed at the wire"
    );
    let checks = finding_checks(&journal);
    assert_eq!(checks.len(), 2, "checked at the start and on the resume");
    assert_eq!(checks[1]["passed"], false);
    let ec2 = sandbox::ec2().await;
    assert_eq!(instance_state(&ec2, &ids.instance).await, "running");
}

const INSTANCE: &str = "i-0123456789abcdef0";
const FINDING: &str = "16afba5c5c43e07c9e3e5e2e544e95df";

const NOTE: &str = r#"
version: 1
name: note-on-finding
steps:
  - id: note
    action: core.log
    with: { message: "acting on the finding" }
"#;

fn guardduty_event() -> Value {
    let text = std::fs::read_to_string("tests/fixtures/events/guardduty-ec2.json")
        .unwrap()
        .replace("INSTANCE_ID", INSTANCE);
    serde_json::from_str(&text).unwrap()
}

fn detectors(ids: &'static [&'static str]) -> Rule {
    mock!(aws_sdk_guardduty::Client::list_detectors).then_output(move || {
        ListDetectorsOutput::builder()
            .set_detector_ids(Some(ids.iter().map(|s| s.to_string()).collect()))
            .build()
    })
}

fn finding(instance: &'static str, archived: bool) -> Rule {
    mock!(aws_sdk_guardduty::Client::get_findings)
        .match_requests(|r| {
            r.detector_id() == Some("det-1") && r.finding_ids() == [FINDING.to_owned()]
        })
        .then_output(move || {
            GetFindingsOutput::builder()
                .findings(
                    Finding::builder()
                        .id(FINDING)
                        .account_id("123456789012")
                        .region("us-east-1")
                        .r#type("CryptoCurrency:EC2/BitcoinTool.B!DNS")
                        .resource(
                            Resource::builder()
                                .resource_type("Instance")
                                .instance_details(
                                    InstanceDetails::builder().instance_id(instance).build(),
                                )
                                .build(),
                        )
                        .service(Service::builder().archived(archived).build())
                        .build(),
                )
                .build()
        })
}

async fn guardduty_run(dir: &Path, rules: Vec<Rule>) -> (crate::support::run::Ran, Vec<String>) {
    let aws = MockAws::new().guardduty(rules).build();
    let ran = Run::yaml(dir, NOTE)
        .event(guardduty_event())
        .clients(aws.clients.clone())
        .settings(|s| Settings {
            verify_finding: Some(VerifyFinding::All),
            ..s
        })
        .start(dir)
        .await;
    (ran, aws.calls())
}

fn check_of(ran: &crate::support::run::Ran) -> Value {
    ran.journal
        .values()
        .into_iter()
        .find(|r| r["type"] == "interlock" && r["check"] == "finding")
        .expect("the finding interlock is journaled")
}

/// GuardDuty's own events with `--verify-finding all`: read back through `ListDetectors` and
/// `GetFindings`; a missing, archived or different finding refuses before the first step, a
/// GuardDuty that keeps throttling refuses as "unavailable" (a resume asks again), and the real
/// finding lets the run go on. Time is paused (and skipped while the run only waits) so the
/// eight backed-off attempts take no wall-clock time.
#[tokio::test(start_paused = true)]
async fn guardduty_findings_are_read_back_with_verify_all() {
    let dir = tempfile::tempdir().unwrap();

    let (ran, calls) = guardduty_run(
        dir.path(),
        vec![detectors(&["det-1"]), finding(INSTANCE, false)],
    )
    .await;
    assert_eq!(ran.run.status, RunStatus::Succeeded, "{}", ran.failures());
    assert_eq!(check_of(&ran)["passed"], true);
    assert!(
        calls.contains(&"guardduty:ListDetectors".to_owned())
            && calls.contains(&"guardduty:GetFindings".to_owned()),
        "{calls:?}"
    );

    let cases: Vec<(&str, Vec<Rule>, &str)> = vec![
        ("no detector", vec![detectors(&[])], "no detector"),
        (
            "no such finding",
            vec![
                detectors(&["det-1"]),
                mock!(aws_sdk_guardduty::Client::get_findings).then_output(|| {
                    GetFindingsOutput::builder()
                        .set_findings(Some(vec![]))
                        .build()
                }),
            ],
            "GuardDuty has no finding",
        ),
        (
            "archived",
            vec![detectors(&["det-1"]), finding(INSTANCE, true)],
            "archived",
        ),
        (
            "another instance",
            vec![detectors(&["det-1"]), finding("i-0ffffffffffffffff", false)],
            "/resource/instanceDetails/instanceId",
        ),
    ];
    for (what, rules, says) in cases {
        let (ran, _) = guardduty_run(dir.path(), rules).await;
        assert_eq!(ran.run.status, RunStatus::Refused, "{what}");
        let check = check_of(&ran);
        assert_eq!(check["passed"], false, "{what}");
        assert!(
            check["reason"].as_str().unwrap().contains(says),
            "{what}: {check}"
        );
        assert!(
            ran.journal
                .values()
                .iter()
                .all(|r| r["type"] != "step_started"),
            "{what}: no step ran"
        );
        let finished = ran.journal.values().into_iter().last().unwrap();
        assert_eq!(
            finished["refused_by"], "interlock",
            "{what}: final: {finished}"
        );
    }

    let throttled = mock!(aws_sdk_guardduty::Client::get_findings).then_error(|| {
        GetFindingsError::generic(
            ErrorMetadata::builder()
                .code("TooManyRequestsException")
                .message("Rate exceeded")
                .build(),
        )
    });
    let (ran, calls) = guardduty_run(dir.path(), vec![detectors(&["det-1"]), throttled]).await;
    assert_eq!(ran.run.status, RunStatus::Refused);
    let finished = ran.journal.values().into_iter().last().unwrap();
    assert_eq!(
        finished["refused_by"], "unavailable",
        "resumable: {finished}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| *c == "guardduty:GetFindings")
            .count(),
        8,
        "retried like every interlock call: {calls:?}"
    );
}
