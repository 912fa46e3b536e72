//! The SQS calls a worker makes: receive (long poll), delete, keep invisible, release.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::types::MessageSystemAttributeName;

use crate::aws::error::AwsError;

/// SQS keeps a received message invisible for at most 12 hours from its first receipt.
pub const MAX_INVISIBLE: Duration = Duration::from_secs(12 * 3600);

/// A received message.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub receipt: String,
    pub body: String,
    /// How many times SQS has handed it out (this one included).
    pub receive_count: u32,
    /// When it was sent (SQS's clock), as seconds since the epoch.
    pub sent_at: Option<u64>,
    /// Who sent it, as SQS saw it: an IAM user's id, or a role's id and session name.
    pub sender_id: Option<String>,
}

impl Received {
    /// Seconds since it was sent.
    pub fn age(&self) -> Option<u64> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        self.sent_at.map(|sent| now.saturating_sub(sent))
    }
}

#[derive(Clone, Debug)]
pub struct Queue {
    pub sqs: aws_sdk_sqs::Client,
    pub url: String,
}

impl Queue {
    /// Up to `max` messages (1–10), waiting up to `wait` for the first; each invisible for
    /// `visibility`.
    pub async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Received>, String> {
        let answer = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .visibility_timeout(visibility.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_system_attribute_names(MessageSystemAttributeName::SenderId)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("sqs", "ReceiveMessage", e).to_string())?;
        Ok(answer
            .messages()
            .iter()
            .filter_map(|m| {
                let attribute = |name: MessageSystemAttributeName| {
                    m.attributes().and_then(|a| a.get(&name)).cloned()
                };
                Some(Received {
                    id: m.message_id()?.to_owned(),
                    receipt: m.receipt_handle()?.to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    receive_count: attribute(MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(1),
                    sent_at: attribute(MessageSystemAttributeName::SentTimestamp)
                        .and_then(|ms| ms.parse::<u64>().ok())
                        .map(|ms| ms / 1000),
                    sender_id: attribute(MessageSystemAttributeName::SenderId),
                })
            })
            .collect())
    }

    /// The longest delay SQS allows on one message.
    pub const MAX_DELAY: Duration = Duration::from_secs(900);

    /// Puts a message on the queue, delivered after `delay` (at most [`Self::MAX_DELAY`]).
    pub async fn send(&self, body: &str, delay: Duration) -> Result<String, String> {
        self.sqs
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(delay.min(Self::MAX_DELAY).as_secs() as i32)
            .send()
            .await
            .map(|answer| answer.message_id().unwrap_or_default().to_owned())
            .map_err(|e| AwsError::from_sdk("sqs", "SendMessage", e).to_string())
    }

    /// Done with it: it never comes back.
    pub async fn delete(&self, receipt: &str) -> Result<(), String> {
        self.sqs
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("sqs", "DeleteMessage", e).to_string())
    }

    /// Keeps it invisible for `visibility` from now (its run is alive).
    pub async fn keep(&self, receipt: &str, visibility: Duration) -> Result<(), String> {
        self.visibility(
            receipt,
            visibility.as_secs() as i32,
            "ChangeMessageVisibility",
        )
        .await
    }

    /// Visible again at once: another worker (or this one, later) takes it.
    pub async fn release(&self, receipt: &str) -> Result<(), String> {
        self.visibility(receipt, 0, "ChangeMessageVisibility").await
    }

    async fn visibility(
        &self,
        receipt: &str,
        seconds: i32,
        operation: &'static str,
    ) -> Result<(), String> {
        self.sqs
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("sqs", operation, e).to_string())
    }
}
