//! `update_finding: true`: the security console shows what firebreak did. When the run starts,
//! its Security Hub finding goes to Workflow `NOTIFIED` with a note naming the runbook, the run
//! and the case; when it ends (succeeded, failed, refused, waiting), a note with the outcome,
//! the journal's head and how to read the report. Never `RESOLVED`: closing stays with a person,
//! so a recurrence still reaches the analysts' queue.
//!
//! Called where the event came from (the aggregation region when aggregation is on), from the
//! home account. Every call is journaled; an update that fails is journaled and noticed, and
//! never fails the run — containment matters more than the console.

use std::sync::Arc;

use aws_sdk_securityhub::types::{
    AwsSecurityFindingIdentifier, NoteUpdate, WorkflowStatus, WorkflowUpdate,
};
use serde_json::{Value, json};

use super::interlocks::retried_as;
use super::observe::Progress;
use super::state::RunState;
use crate::journal::RunStatus;

/// The journal's pseudo-step for these calls.
const STEP: &str = "finding_update";
/// Security Hub's limit on a note's text.
const NOTE_LIMIT: usize = 512;
const ATTEMPTS: u32 = 3;

/// What the finding is told.
pub(crate) enum Moment<'a> {
    Started {
        runbook: &'a str,
        case: Option<&'a str>,
    },
    Ended {
        status: RunStatus,
        head: Option<&'a str>,
        journal: &'a str,
        reason: Option<&'a str>,
    },
}

/// The (id, product ARN) of each Security Hub finding in the event.
fn identifiers(event: &Value) -> Vec<(String, String)> {
    if event["source"].as_str() != Some("aws.securityhub") {
        return Vec::new();
    }
    event["detail"]["findings"]
        .as_array()
        .map(|findings| {
            findings
                .iter()
                .filter_map(|f| {
                    Some((
                        f["Id"].as_str()?.to_owned(),
                        f["ProductArn"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The note for a moment, within Security Hub's length limit.
pub(crate) fn note(run_id: &str, moment: &Moment<'_>) -> String {
    let text = match moment {
        Moment::Started { runbook, case } => format!(
            "firebreak run {run_id} ({runbook}) started containment{}.",
            case.map(|c| format!(" for case {c}")).unwrap_or_default()
        ),
        Moment::Ended {
            status,
            head,
            journal,
            reason,
        } => format!(
            "firebreak run {run_id} ended {}{}; journal head {}; report: firebreak report {journal}",
            status.as_str(),
            reason.map(|r| format!(" ({r})")).unwrap_or_default(),
            head.unwrap_or("none"),
        ),
    };
    if text.chars().count() <= NOTE_LIMIT {
        return text;
    }
    let cut: String = text.chars().take(NOTE_LIMIT - 1).collect();
    format!("{cut}…")
}

/// Updates the event's findings for `moment`: `NOTIFIED` and a note at the start, a note at the
/// end. Journaled; failures are noticed, never fatal.
pub(crate) async fn update(state: &Arc<RunState>, event: &Value, moment: Moment<'_>) {
    let findings = identifiers(event);
    if findings.is_empty() {
        return;
    }
    let home = state.home_run(event["region"].as_str());
    let text = state.redact(&note(&state.run_id, &moment));
    let notified = matches!(moment, Moment::Started { .. });
    let ids: Vec<&str> = findings.iter().map(|(id, _)| id.as_str()).collect();
    let input = json!({
        "findings": findings.iter().map(|(id, product)| json!({"Id": id, "ProductArn": product})).collect::<Vec<_>>(),
        "workflow": notified.then_some("NOTIFIED"),
        "note": text,
    });
    let (findings, text, ids) = (&findings, &text, &ids);
    let result = retried_as(state, &home, STEP, ATTEMPTS, |ctx| {
        let input = input.clone();
        async move {
            ctx.change("securityhub", "BatchUpdateFindings", ids, input, || {
                let mut request = ctx.clients().securityhub.batch_update_findings();
                for (id, product) in findings {
                    request = request.finding_identifiers(
                        AwsSecurityFindingIdentifier::builder()
                            .id(id)
                            .product_arn(product)
                            .build(),
                    );
                }
                if notified {
                    request = request.workflow(
                        WorkflowUpdate::builder()
                            .status(WorkflowStatus::Notified)
                            .build(),
                    );
                }
                request
                    .note(
                        NoteUpdate::builder()
                            .text(text)
                            .updated_by("firebreak")
                            .build(),
                    )
                    .send()
            })
            .await
        }
    })
    .await;
    match result {
        // Security Hub answers per finding: one it could not update is in the answer, not an
        // error.
        Ok(Some(answer)) => {
            for unprocessed in answer.unprocessed_findings() {
                let id = unprocessed
                    .finding_identifier()
                    .and_then(|f| f.id())
                    .unwrap_or("?");
                state.observe(Progress::Notice {
                    text: &format!(
                        "Security Hub did not update finding {id}: {} {}",
                        unprocessed.error_code().unwrap_or_default(),
                        unprocessed.error_message().unwrap_or_default()
                    ),
                });
            }
        }
        Ok(None) => {}
        Err(error) => {
            state.observe(Progress::Notice {
                text: &format!("the finding could not be updated in Security Hub: {error}"),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_name_the_run_and_stay_within_the_limit() {
        let started = note(
            "R1",
            &Moment::Started {
                runbook: "ec2-instance-compromise",
                case: Some("gd-1"),
            },
        );
        assert_eq!(
            started,
            "firebreak run R1 (ec2-instance-compromise) started containment for case gd-1."
        );
        let long = "x".repeat(2000);
        let ended = note(
            "R1",
            &Moment::Ended {
                status: RunStatus::Failed,
                head: Some("abc"),
                journal: "/j.jsonl",
                reason: Some(&long),
            },
        );
        assert_eq!(ended.chars().count(), NOTE_LIMIT);
        assert!(ended.starts_with("firebreak run R1 ended failed ("));
    }

    #[test]
    fn only_security_hub_findings_are_updated() {
        let guardduty = json!({"source": "aws.guardduty", "detail": {"id": "x"}});
        assert!(identifiers(&guardduty).is_empty());
        let hub = json!({"source": "aws.securityhub", "detail": {"findings": [{"Id": "f", "ProductArn": "p"}]}});
        assert_eq!(identifiers(&hub), vec![("f".to_owned(), "p".to_owned())]);
    }
}
