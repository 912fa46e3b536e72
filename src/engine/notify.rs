//! Run notifications (`notify:` in a runbook): a short summary to an SNS topic when the run
//! starts and ends — run id, runbook, targets, status, journal path, never parameters or
//! secrets. A notification that cannot be sent is journaled and never fails the run.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Mode;
use super::context::{Shared, StepContext};
use crate::runbook::Runbook;
use crate::runbook::model::NotifyEvent;

fn name(event: NotifyEvent) -> &'static str {
    match event {
        NotifyEvent::Started => "started",
        NotifyEvent::Succeeded => "succeeded",
        NotifyEvent::Failed => "failed",
        NotifyEvent::Refused => "refused",
        NotifyEvent::Interrupted => "interrupted",
    }
}

pub(crate) async fn send(
    shared: &Arc<Shared>,
    runbook: &Runbook,
    context: &Value,
    event: NotifyEvent,
    journal: &str,
) {
    let Some(notify) = &runbook.notify else {
        return;
    };
    if !notify.on.contains(&event) {
        return;
    }
    let ctx = StepContext {
        run_id: shared.run_id.clone(),
        step_id: "notify".into(),
        item_index: None,
        idempotency_key: format!("{}.notify.{}", shared.run_id, name(event)),
        mode: shared.mode,
        attempt: 1,
        shared: shared.clone(),
    };
    let topic = match shared.templates.render_string(&notify.topic_arn, context) {
        Ok(topic) => topic,
        Err(e) => {
            let _ = shared.record(
                "notification",
                json!({"event": name(event), "outcome": "error", "error": e.to_string()}),
            );
            return;
        }
    };
    let summary = json!({
        "firebreak": {
            "event": name(event),
            "run_id": shared.run_id,
            "runbook": runbook.name,
            "mode": shared.mode.as_str(),
            "targets": shared.targets,
            "journal": journal,
            "host": super::identity::host(),
        }
    });
    let subject = format!(
        "firebreak: {} {} ({})",
        runbook.name,
        name(event),
        shared.run_id
    );
    let message = shared.redact(&summary.to_string());
    let input = json!({"topic_arn": topic, "subject": subject, "message": message});
    let result = ctx
        .change("sns", "Publish", &[&topic], input, || {
            shared
                .clients
                .sns
                .publish()
                .topic_arn(&topic)
                .subject(subject.chars().take(100).collect::<String>())
                .message(&message)
                .send()
        })
        .await;
    let record = match result {
        Ok(Some(output)) => {
            json!({"event": name(event), "topic_arn": topic, "outcome": "sent", "message_id": output.message_id()})
        }
        Ok(None) => {
            json!({"event": name(event), "topic_arn": topic, "outcome": "not-sent (dry run)"})
        }
        Err(error) => {
            eprintln!("firebreak: notification to {topic} failed: {error}");
            json!({"event": name(event), "topic_arn": topic, "outcome": "error", "error": error.to_string()})
        }
    };
    let _ = shared.record("notification", record);
    debug_assert!(shared.mode == Mode::Live || shared.mode == Mode::DryRun);
}
