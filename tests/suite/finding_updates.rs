//! `update_finding: true` with the mock harness (moto has no `BatchUpdateFindings`): a run marks
//! its Security Hub finding `NOTIFIED` with a note naming the runbook, run and case when it
//! starts, and notes the outcome (status, journal head, how to read the report) when it ends —
//! succeeded, failed or waiting — and never sets `RESOLVED`. The update itself would come back
//! as a "Findings - Imported" event; no shipped trigger matches it.

use std::path::Path;
use std::sync::{Arc, Mutex};

use aws_sdk_securityhub::operation::batch_update_findings::{
    BatchUpdateFindingsInput, BatchUpdateFindingsOutput,
};
use aws_sdk_securityhub::types::WorkflowStatus;
use aws_smithy_mocks::mock;
use firebreak::engine::{Approvals, RunStatus, Settings};
use serde_json::{Value, json};

use crate::support::aws::MockAws;
use crate::support::run::{Ran, Run};

const FINDING_ID: &str =
    "arn:aws:securityhub:us-east-1:123456789012:subscription/guardduty/finding/f-1";
const PRODUCT: &str = "arn:aws:securityhub:us-east-1::product/aws/guardduty";

fn event() -> Value {
    json!({
        "version": "0",
        "id": "e-1",
        "source": "aws.securityhub",
        "detail-type": "Security Hub Findings - Imported",
        "account": "123456789012",
        "region": "us-east-1",
        "detail": {"findings": [{"Id": FINDING_ID, "ProductArn": PRODUCT}]}
    })
}

/// What each `BatchUpdateFindings` asked: (workflow status, note text, finding ids).
type Asked = Arc<Mutex<Vec<(Option<WorkflowStatus>, String, Vec<String>)>>>;

async fn run_with_updates(dir: &Path, body: &str, approvals: Approvals) -> (Ran, Asked) {
    let asked: Asked = Arc::default();
    let seen = asked.clone();
    let rule = mock!(aws_sdk_securityhub::Client::batch_update_findings)
        .match_requests(move |input: &BatchUpdateFindingsInput| {
            seen.lock().unwrap().push((
                input.workflow().and_then(|w| w.status()).cloned(),
                input
                    .note()
                    .and_then(|n| n.text())
                    .unwrap_or_default()
                    .to_owned(),
                input
                    .finding_identifiers()
                    .iter()
                    .filter_map(|f| f.id().map(str::to_owned))
                    .collect(),
            ));
            true
        })
        .then_output(|| BatchUpdateFindingsOutput::builder().build());
    let aws = MockAws::new().securityhub([rule]).build();
    let text = format!(
        "version: 1\nname: noted\nparameters:\n  case_id: {{ type: string, default: case-7 }}\nsteps:\n{body}"
    );
    let ran = Run::yaml(dir, &text)
        .event(event())
        .clients(aws.clients.clone())
        .approvals(approvals)
        .settings(|s| Settings {
            update_finding: true,
            verify_finding: None,
            ..s
        })
        .start(dir)
        .await;
    (ran, asked)
}

/// The two updates of a run: NOTIFIED with the start note, then the outcome note.
fn assert_sequence(ran: &Ran, asked: &Asked, status: &str) {
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "{asked:#?}");
    let run_id = ran.run.run_id.as_str();
    let (workflow, note, ids) = &asked[0];
    assert_eq!(workflow, &Some(WorkflowStatus::Notified));
    assert_eq!(ids, &[FINDING_ID.to_owned()]);
    assert!(
        note.contains(run_id) && note.contains("noted") && note.contains("case-7"),
        "{note}"
    );
    let (workflow, note, _) = &asked[1];
    assert_eq!(
        workflow, &None,
        "the end only adds a note; RESOLVED stays with a person"
    );
    assert!(note.contains(&format!("ended {status}")), "{note}");
    assert!(note.contains("firebreak report"), "{note}");
    // The head it names is a record of the run's journal.
    let head = note
        .split("journal head ")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    assert!(
        ran.journal.values().iter().any(|r| r["hash"] == head),
        "the noted head {head} is in the chain"
    );
    // Both calls are journaled, under the engine's own pseudo-step.
    let journaled: Vec<Value> = ran
        .journal
        .values()
        .into_iter()
        .filter(|r| r["type"] == "api_call" && r["operation"] == "BatchUpdateFindings")
        .collect();
    assert_eq!(journaled.len(), 2, "{journaled:#?}");
    assert!(
        journaled
            .iter()
            .all(|r| r["step"] == "finding_update" && r["outcome"] == "ok")
    );
}

#[tokio::test]
async fn a_succeeded_run_notifies_its_finding_then_notes_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let body = "  - id: say\n    action: core.log\n    with: { message: contained }\n";
    let (ran, asked) = run_with_updates(dir.path(), body, Approvals::Yes).await;
    assert_eq!(ran.run.status, RunStatus::Succeeded);
    assert_sequence(&ran, &asked, "succeeded");
}

#[tokio::test]
async fn a_failed_run_notes_its_failure() {
    let dir = tempfile::tempdir().unwrap();
    let body = "  - id: pause\n    action: core.wait\n    with: { duration: soon }\n";
    let (ran, asked) = run_with_updates(dir.path(), body, Approvals::Yes).await;
    assert_eq!(ran.run.status, RunStatus::Failed);
    assert_sequence(&ran, &asked, "failed");
}

#[tokio::test]
async fn a_waiting_run_notes_that_it_waits_for_a_person() {
    let dir = tempfile::tempdir().unwrap();
    let body = "  - id: ask\n    action: core.approve\n    with: { prompt: stop it? }\n";
    let (ran, asked) = run_with_updates(dir.path(), body, Approvals::Nobody).await;
    assert_eq!(ran.run.status, RunStatus::AwaitingApproval);
    assert_sequence(&ran, &asked, "awaiting_approval");
}

/// `runbook/trigger` of every shipped trigger that matches the event (one finding at a time).
fn matched(event: &Value) -> Vec<String> {
    use firebreak::trigger::dispatch::{focuses, load_runbooks, matching_trigger};
    let (runbooks, errors) = load_runbooks(Path::new("runbooks"));
    assert!(errors.is_empty(), "{errors:?}");
    focuses(event)
        .iter()
        .flat_map(|focus| {
            runbooks
                .iter()
                .filter_map(|r| {
                    matching_trigger(r, focus).map(|t| format!("{}/{}", r.runbook.name, t.name))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Firebreak's own update comes back as an imported finding whose workflow is NOTIFIED: no
/// shipped runbook runs on it — while the same finding as first imported (NEW) does.
#[test]
fn the_update_firebreak_makes_starts_nothing() {
    let fixture = std::fs::read_to_string("tests/fixtures/events/securityhub-ec2.json").unwrap();
    let imported: Value = serde_json::from_str(&fixture).unwrap();
    let mut updated = imported.clone();
    for finding in updated["detail"]["findings"].as_array_mut().unwrap() {
        finding["Workflow"]["Status"] = json!("NOTIFIED");
        finding["Note"] =
            json!({"Text": "firebreak run … started containment", "UpdatedBy": "firebreak"});
    }
    assert_eq!(
        matched(&imported),
        ["ec2-instance-compromise/securityhub-ec2"]
    );
    assert!(matched(&updated).is_empty(), "{:?}", matched(&updated));
}

/// A Security Hub custom action ("Contain with firebreak", chosen by an analyst in the console)
/// starts containment for the findings it carries, whichever product wrote them — matched by
/// the action target's ARN, never by its name; another action starts nothing.
#[test]
fn a_custom_action_starts_containment_by_its_action_target() {
    let fixture = std::fs::read_to_string("tests/fixtures/events/securityhub-ec2.json").unwrap();
    let mut action: Value = serde_json::from_str(&fixture).unwrap();
    action["detail-type"] = json!("Security Hub Findings - Custom Action");
    action["resources"] =
        json!(["arn:aws:securityhub:us-east-1:123456789012:action/custom/FirebreakContain"]);
    action["detail"]["actionName"] = json!("Contain with firebreak");
    // A person may send a finding of any product, an already NOTIFIED one included.
    action["detail"]["findings"][0]["ProductArn"] =
        json!("arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default");
    action["detail"]["findings"][0]["Workflow"]["Status"] = json!("NOTIFIED");
    assert_eq!(
        matched(&action),
        ["ec2-instance-compromise/securityhub-custom-action"]
    );
    let mut other = action.clone();
    other["resources"] =
        json!(["arn:aws:securityhub:us-east-1:123456789012:action/custom/SendToTicketing"]);
    assert!(matched(&other).is_empty(), "{:?}", matched(&other));
}
