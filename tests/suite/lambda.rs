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
        queue: None,
        resume_delay: Duration::ZERO,
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

/// With the workers' table and queue (`FIREBREAK_JOURNAL`, `FIREBREAK_QUEUE_URL`): a run
/// stopped at an invocation's deadline is handed on as a resume request, delivered after a
/// delay, and the message that started it is done; another execution environment — its /tmp
/// empty — takes the request and finishes the run from the table, each effect once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_at_the_deadline_goes_on_elsewhere_from_its_resume_request() {
    let _moto = moto::exclusive().await;
    let (dynamodb, table) = super::journal_table::table().await;
    let ids = sandbox::seed("web-1");
    let instance = ids["instance_id"].as_str().unwrap().to_owned();
    let evidence = seed_evidence(&[]);
    let sqs = aws_sdk_sqs::Client::new(&moto::sdk_config().await);
    let (queue, _dlq) = super::serve::queues(&sqs, 5).await;
    let (runbooks, errors) = firebreak::trigger::dispatch::load_runbooks(&repo("runbooks"));
    assert!(errors.is_empty(), "{errors:?}");
    let runbooks = Arc::new(runbooks);
    let clients = moto::clients().await;
    // One execution environment: its own /tmp, the shared table and queue.
    let container = |tmp: &std::path::Path| Handler {
        runbooks: runbooks.clone(),
        settings: Settings {
            clients: Some(clients.clone()),
            custody: Some(firebreak::journal::event::Custody {
                seal: evidence.seal.clone(),
                owner: String::new(),
                min_retention_days: 1,
                sign_key: None,
            }),
            shared: Some(firebreak::table::Shared {
                lease: Duration::from_secs(10),
                ..firebreak::table::Shared::new(dynamodb.clone(), table.clone())
            }),
            ..Settings::new(tmp.to_path_buf())
        },
        mode: Mode::Live,
        log: Arc::new(|_| {}),
        margin: Duration::from_millis(500),
        queue: Some(firebreak::worker::queue::Queue {
            sqs: sqs.clone(),
            url: queue.clone(),
        }),
        resume_delay: Duration::from_secs(1),
    };
    proxy::reset();
    proxy::faults(
        5,
        json!([{"service": "ec2", "operation": "CreateSnapshots", "fault": "delay", "delay_ms": 4000}]),
    );
    let first_tmp = tempfile::tempdir().unwrap();
    let first = container(first_tmp.path())
        .invoke(
            batch(&[("m-1", &finding(&instance))]),
            Instant::now() + Duration::from_secs(2),
        )
        .await
        .unwrap();
    // The finding's message is done: its run goes on from the resume request.
    assert_eq!(first, json!({"batchItemFailures": []}));
    let (run, _) = {
        let path = crate::support::journal::only_journal(first_tmp.path());
        (path.file_stem().unwrap().to_str().unwrap().to_owned(), path)
    };
    let mut request = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while request.is_none() {
        assert!(std::time::Instant::now() < deadline, "no resume request");
        let got = sqs
            .receive_message()
            .queue_url(&queue)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        request = got
            .messages()
            .first()
            .and_then(|m| m.body())
            .map(str::to_owned);
    }
    let request = request.unwrap();
    let parsed: Value = serde_json::from_str(&request).unwrap();
    assert_eq!(parsed["firebreak"], "resume");
    assert_eq!(parsed["run_id"], run.as_str());

    proxy::faults(5, json!([]));
    let second_tmp = tempfile::tempdir().unwrap();
    let second = container(second_tmp.path())
        .invoke(
            batch(&[("m-2", &request)]),
            Instant::now() + Duration::from_secs(120),
        )
        .await
        .unwrap();
    assert_eq!(second, json!({"batchItemFailures": []}));
    let exported = firebreak::table::journal::export(&dynamodb, &table.with_run(&run))
        .await
        .unwrap();
    assert!(firebreak::journal::verify_bytes(&exported, None).is_intact());
    let text = String::from_utf8(exported).unwrap();
    for kind in ["run_interrupted", "lease_taken", "run_resumed"] {
        assert!(
            text.contains(&format!("\"type\":\"{kind}\"")),
            "no {kind}: {text}"
        );
    }
    assert!(text.contains("\"status\":\"awaiting_approval\""), "{text}");
    assert_eq!(proxy::count("ec2:CreateSnapshots"), 1);
    // The second environment's working copy is the table's journal, byte for byte.
    let copy = std::fs::read_to_string(second_tmp.path().join(format!("{run}.jsonl"))).unwrap();
    assert_eq!(copy, text);
}
