//! Run notifications (`notify:` in a runbook): a short summary to an SNS topic when the run
//! starts and ends — run id, runbook, targets, status, journal path, never parameters or
//! secrets. A notification that cannot be sent is journaled and never fails the run.

use std::sync::Arc;

use serde_json::{Value, json};

use super::observe::Progress;
use super::state::RunState;
use crate::journal::Event;
use crate::journal::event::{Notification, Refusal};
use crate::runbook::Runbook;
use crate::runbook::model::NotifyEvent;

fn name(event: NotifyEvent) -> &'static str {
    match event {
        NotifyEvent::Started => "started",
        NotifyEvent::Succeeded => "succeeded",
        NotifyEvent::Failed => "failed",
        NotifyEvent::Refused => "refused",
        NotifyEvent::Interrupted => "interrupted",
        NotifyEvent::AwaitingApproval => "awaiting_approval",
    }
}

/// Why a run ended as it did, for the people the notification reaches: unattended, nobody
/// reads the terminal.
#[derive(Default)]
pub(crate) struct Why<'a> {
    pub reason: Option<&'a str>,
    pub refused_by: Option<Refusal>,
}

/// What a person needs to decide a parked approval: the exact command lines and the deadline.
fn decide_hint(run_id: &str, step: &str, expires_at: Option<&str>) -> Value {
    json!({
        "step": step,
        "expires_at": expires_at,
        "after_expiry": "denied by the next approve, deny or resume that touches the run",
        "approve": format!("firebreak approve {run_id} --step {step} --reason \"…\""),
        "deny": format!("firebreak deny {run_id} --step {step} --reason \"…\""),
        "list": "firebreak approvals",
    })
}

pub(crate) async fn send(
    state: &Arc<RunState>,
    runbook: &Runbook,
    context: &Value,
    event: NotifyEvent,
    journal: &str,
    why: Why<'_>,
) {
    let Some(notify) = &runbook.notify else {
        return;
    };
    if !notify.on.contains(&event) {
        return;
    }
    // From the home account: an assumed role in a member account has no business publishing.
    let mut ctx = state.home_context("notify");
    ctx.idempotency_key = format!("{}.notify.{}", state.run_id, name(event));
    let topic = match state.templates.render_string(&notify.topic_arn, context) {
        Ok(topic) => topic,
        Err(e) => {
            let _ = state.write(Event::Notification(Notification {
                event: name(event).into(),
                topic_arn: None,
                outcome: "error".into(),
                message_id: None,
                error: Some(e.to_string()),
            }));
            return;
        }
    };
    let mut summary = json!({
        "firebreak": {
            "event": name(event),
            "run_id": state.run_id,
            "runbook": runbook.name,
            "mode": state.mode.as_str(),
            "targets": state.targets,
            "journal": journal,
            "host": crate::host::host(),
        }
    });
    if let Some(reason) = why.reason {
        summary["firebreak"]["reason"] = json!(reason);
    }
    if let Some(kind) = why.refused_by {
        summary["firebreak"]["refused_by"] = json!(kind);
    }
    // A recheck tells what drifted: the changes it had to make again.
    if let Some(recheck) = &state.recheck
        && event != NotifyEvent::Started
    {
        let records = crate::journal::read(std::path::Path::new(journal)).unwrap_or_default();
        let changes = super::recheck::changes(&records);
        summary["firebreak"]["recheck_of"] = json!(recheck.case_run);
        summary["firebreak"]["drift"] = json!(if changes.is_empty() {
            "none: the containment held".to_owned()
        } else {
            format!("{} change(s) made again", changes.len())
        });
        summary["firebreak"]["changes"] = json!(changes);
    }
    if event == NotifyEvent::AwaitingApproval
        && let Some((step, expires_at)) = state.parked.lock().expect("parked").clone()
    {
        summary["firebreak"]["decide"] = decide_hint(&state.run_id, &step, expires_at.as_deref());
        if state.reminder {
            summary["firebreak"]["reminder"] = json!(true);
        }
    }
    let subject = format!(
        "firebreak: {} {}{} ({})",
        runbook.name,
        name(event),
        if state.reminder && event == NotifyEvent::AwaitingApproval {
            " (reminder)"
        } else {
            ""
        },
        state.run_id
    );
    let message = state.redact(&summary.to_string());
    let input = json!({"topic_arn": topic, "subject": subject, "message": message});
    let result = ctx
        .change("sns", "Publish", &[&topic], input, || {
            state
                .home
                .sns
                .publish()
                .topic_arn(&topic)
                .subject(subject.chars().take(100).collect::<String>())
                .message(&message)
                .send()
        })
        .await;
    let (outcome, message_id, error) = match result {
        Ok(Some(output)) => ("sent", Some(output.message_id().map(str::to_owned)), None),
        Ok(None) => ("not-sent (dry run)", None, None),
        Err(error) => {
            state.observe(Progress::Notice {
                text: &format!("notification to {topic} failed: {error}"),
            });
            ("error", None, Some(error.to_string()))
        }
    };
    let _ = state.write(Event::Notification(Notification {
        event: name(event).into(),
        topic_arn: Some(topic),
        outcome: outcome.into(),
        message_id,
        error,
    }));
}
