//! Notifications reach an SNS topic in moto (read back through a subscribed SQS queue), and
//! carry no secrets.

use crate::support::{firebreak, moto};
use serde_json::Value;

/// An SNS topic in moto with an SQS queue subscribed: (sqs client, topic ARN, queue URL).
pub(crate) async fn topic_with_inbox() -> (aws_sdk_sqs::Client, String, String) {
    let config = moto::direct_config().await;
    let sns = aws_sdk_sns::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let topic = sns
        .create_topic()
        .name("firebreak-ir")
        .send()
        .await
        .unwrap();
    let topic_arn = topic.topic_arn().unwrap().to_owned();
    let queue = sqs
        .create_queue()
        .queue_name("ir-inbox")
        .send()
        .await
        .unwrap();
    let queue_url = queue.queue_url().unwrap().to_owned();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn =
        attributes.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .unwrap();

    (sqs, topic_arn, queue_url)
}

/// The notification envelopes in the queue, waiting for at least `wanted`.
pub(crate) async fn received(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    wanted: usize,
) -> Vec<Value> {
    let mut bodies = Vec::new();
    for _ in 0..5 {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for message in received.messages() {
            bodies.push(serde_json::from_str(message.body().unwrap()).unwrap());
        }
        if bodies.len() >= wanted {
            break;
        }
    }
    bodies
}

#[tokio::test]
async fn run_notifications_and_sns_publish_reach_the_topic_without_secrets() {
    let _moto = moto::exclusive().await;
    let (sqs, topic_arn, queue_url) = topic_with_inbox().await;

    let canary = "CANARY-notify-3e7f";
    let dir = tempfile::tempdir().unwrap();
    let out = firebreak()
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", dir.path())
        .args([
            "run",
            "tests/fixtures/notify/notify.yaml",
            "--output",
            "json",
        ])
        .args([
            "-p",
            &format!("topic_arn={topic_arn}"),
            "-p",
            "instance_id=i-0123456789abcdef0",
        ])
        .args(["-p", &format!("api_token={canary}")])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();

    let bodies = received(&sqs, &queue_url, 3).await;
    assert_eq!(
        bodies.len(),
        3,
        "started, the step's message, succeeded: {bodies:#?}"
    );
    let mut events = Vec::new();
    for envelope in &bodies {
        let text = envelope["Message"].as_str().unwrap();
        assert!(!text.contains(canary), "a secret reached SNS: {text}");
        if let Ok(summary) = serde_json::from_str::<Value>(text)
            && let Some(event) = summary["firebreak"]["event"].as_str()
        {
            assert_eq!(summary["firebreak"]["run_id"], outcome["run_id"]);
            assert_eq!(summary["firebreak"]["runbook"], "notify-test");
            assert_eq!(summary["firebreak"]["journal"], outcome["journal"]);
            events.push(event.to_owned());
        } else {
            assert!(text.contains("token [redacted]"), "{text}");
        }
    }
    events.sort();
    assert_eq!(events, ["started", "succeeded"]);
}

/// A run refused because another run holds its target's lock tells the topic so, naming the
/// run that holds it: unattended, nobody reads the terminal.
#[tokio::test]
async fn a_refusal_for_a_held_lock_is_notified() {
    let _moto = moto::exclusive().await;
    let (sqs, topic_arn, queue_url) = topic_with_inbox().await;
    let dir = tempfile::tempdir().unwrap();
    let instance = "i-0123456789abcdef0";
    let holder = "20261128T000000Z-cccccc";
    let _held = super::unattended::hold_lock(dir.path(), holder, instance);
    let out = firebreak()
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", dir.path())
        .args([
            "run",
            "tests/fixtures/notify/notify.yaml",
            "--output",
            "json",
        ])
        .args(["-p", &format!("topic_arn={topic_arn}")])
        .args([
            "-p",
            &format!("instance_id={instance}"),
            "-p",
            "api_token=tok-lock-7",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bodies = received(&sqs, &queue_url, 1).await;
    let refused: Vec<Value> = bodies
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e["Message"].as_str()?).ok())
        .filter(|m| m["firebreak"]["event"] == "refused")
        .collect();
    assert_eq!(refused.len(), 1, "{bodies:#?}");
    let said = refused[0].to_string();
    assert!(
        said.contains(holder),
        "the notification names the holder: {said}"
    );
    assert_eq!(refused[0]["firebreak"]["refused_by"], "lock", "{said}");
}
