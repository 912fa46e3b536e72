//! The Lambda handler's logic (`worker::lambda`), called as the runtime would call it, against
//! moto through the proxy: an SQS batch whose run would outlast the invocation stops at its
//! next step boundary before the deadline, its message is a batch item failure, and the next
//! invocation with the same message resumes the run to its stop decision — the snapshot
//! requested once. A malformed record is a batch item failure too; an EventBridge event sent
//! straight to the function is handled or, malformed, answered with an error (a retry).

use std::sync::Arc;
use std::time::Duration;

use firebreak::engine::{Mode, Settings};
use firebreak::worker::lambda::Handler;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::custody::seed_evidence;
use crate::support::{moto, proxy, repo, sandbox};

fn finding(instance: &str) -> String {
    std::fs::read_to_string(repo("tests/fixtures/events/guardduty-ec2.json"))
        .unwrap()
        .replace("INSTANCE_ID", instance)
}

fn batch(records: &[(&str, &str)]) -> Value {
    json!({"Records": records.iter().map(|(id, body)| json!({
        "messageId": id, "receiptHandle": format!("r-{id}"), "body": body,
        "eventSource": "aws:sqs", "awsRegion": "us-east-1",
    })).collect::<Vec<_>>()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_split_over_two_invocations_completes_with_each_effect_once() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = ids["instance_id"].as_str().unwrap().to_owned();
    let evidence = seed_evidence(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (runbooks, errors) = firebreak::trigger::dispatch::load_runbooks(&repo("runbooks"));
    assert!(errors.is_empty(), "{errors:?}");
    let lines: Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
    let collected = lines.clone();
    let handler = Handler {
        runbooks: Arc::new(runbooks),
        settings: Settings {
            clients: Some(moto::clients().await),
            custody: Some(firebreak::journal::event::Custody {
                seal: evidence.seal.clone(),
                owner: String::new(),
                min_retention_days: 1,
                sign_key: None,
            }),
            ..Settings::new(dir.path().to_path_buf())
        },
        mode: Mode::Live,
        log: Arc::new(move |line| collected.lock().unwrap().push(line)),
        margin: Duration::from_millis(500),
    };
    let event = batch(&[("m-1", &finding(&instance)), ("m-2", "not an event")]);

    // First invocation: 2 s left, and the snapshot request takes 4 s.
    proxy::faults(
        5,
        json!([{"service": "ec2", "operation": "CreateSnapshots", "fault": "delay", "delay_ms": 4000}]),
    );
    let first = handler
        .invoke(event.clone(), Instant::now() + Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(
        first,
        json!({"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]})
    );
    let journal = crate::support::journal::only_journal(dir.path());
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(text.contains("\"type\":\"run_interrupted\""), "{text}");
    assert!(!text.contains("\"status\":\"awaiting_approval\""));

    // Second invocation, the same message again (SQS redelivered it), time enough.
    proxy::faults(5, json!([]));
    let second = handler
        .invoke(
            batch(&[("m-1", &finding(&instance))]),
            Instant::now() + Duration::from_secs(120),
        )
        .await
        .unwrap();
    assert_eq!(second, json!({"batchItemFailures": []}));
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(text.contains("\"type\":\"run_resumed\""), "{text}");
    assert!(text.contains("\"status\":\"awaiting_approval\""), "{text}");
    assert_eq!(proxy::count("ec2:CreateSnapshots"), 1);
    assert!(
        firebreak::journal::verify(&journal, None)
            .unwrap()
            .is_intact()
    );
    // Logged by message id; the malformed body never.
    let logged = serde_json::to_string(&*lines.lock().unwrap()).unwrap();
    assert!(logged.contains("\"message_id\":\"m-2\"") && !logged.contains("not an event"));

    // Straight from EventBridge: the same finding again is done (the case holds it); a
    // malformed event is an error, so Lambda retries it.
    let direct: Value = serde_json::from_str(&finding(&instance)).unwrap();
    let done = handler
        .invoke(direct, Instant::now() + Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done, json!({}));
    let broken = handler
        .invoke(
            json!({"id": "e-9", "source": "aws.guardduty"}),
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .unwrap_err();
    assert!(
        broken.contains("e-9") && broken.contains("retry"),
        "{broken}"
    );
}
