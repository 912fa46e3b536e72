//! Notifications: a message to an SNS topic (a pager, a chat channel, a ticket queue).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Action, ActionError, Execute};
use crate::actions::StepContext;

/// Publish a message to an SNS topic. Never put secrets in it: it leaves firebreak's control.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    pub topic_arn: String,
    /// At most 100 characters (SNS's limit for e-mail subjects).
    #[serde(default)]
    pub subject: Option<String>,
    pub message: String,
}

impl Action for Publish {
    const NAME: &'static str = "sns.publish";
    const SUMMARY: &'static str = "publish a message to an SNS topic";
    const CALLS: &'static [&'static str] = &["sns:Publish"];
    const PERMISSIONS: &'static [&'static str] = &["sns:Publish"];
}

impl Execute for Publish {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let message = ctx.redact(&self.message);
        let subject = self
            .subject
            .as_deref()
            .map(|s| ctx.redact(s))
            .map(|s| s.chars().take(100).collect::<String>());
        let input = json!({"topic_arn": self.topic_arn, "subject": subject, "message": message});
        let sent = ctx
            .change("sns", "Publish", &[&self.topic_arn], input, || {
                ctx.clients()
                    .sns
                    .publish()
                    .topic_arn(&self.topic_arn)
                    .set_subject(subject.clone())
                    .message(&message)
                    .send()
            })
            .await?;
        Ok(match sent {
            Some(output) => json!({"message_id": output.message_id(), "topic_arn": self.topic_arn}),
            None => json!({"dry_run": true, "topic_arn": self.topic_arn}),
        })
    }
}
