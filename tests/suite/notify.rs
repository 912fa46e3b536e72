//! Notifications reach an SNS topic in moto (read back through a subscribed SQS queue), and
//! carry no secrets.

use crate::support::{firebreak, moto};
use serde_json::Value;

#[tokio::test]
async fn run_notifications_and_sns_publish_reach_the_topic_without_secrets() {
    let _moto = moto::exclusive().await;
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

    let mut bodies = Vec::new();
    for _ in 0..5 {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for message in received.messages() {
            let envelope: Value = serde_json::from_str(message.body().unwrap()).unwrap();
            bodies.push(envelope);
        }
        if bodies.len() >= 3 {
            break;
        }
    }
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
