//! What an action sees while it runs: its identity in the run (run, step, item, idempotency
//! key), the AWS clients, approvals, and a way to report AWS calls — which the engine journals,
//! so actions never write the journal themselves.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::Mode;
use super::approval::{self, Approvals, Decision};
use crate::actions::ActionError;
use crate::aws::{AwsError, Clients};
use crate::journal::JournalSink;
use crate::redact::Redactor;

/// Shared by every step of a run.
pub(crate) struct Shared {
    pub run_id: String,
    pub mode: Mode,
    pub journal: Arc<dyn JournalSink>,
    pub clients: Clients,
    pub approvals: Approvals,
    pub templates: crate::template::Engine,
    /// Grows when actions meet secrets (e.g. a created access key), so nothing later prints them.
    pub redactor: Mutex<Redactor>,
}

impl Shared {
    pub fn redact(&self, text: &str) -> String {
        self.redactor.lock().expect("redactor lock").redact(text)
    }

    pub fn redact_value(&self, value: &Value) -> Value {
        self.redactor
            .lock()
            .expect("redactor lock")
            .redact_value(value)
    }

    /// Appends a record, redacted. Journal failures are fatal to the step: an action whose
    /// effects cannot be recorded must not go on.
    pub fn record(&self, kind: &str, payload: Value) -> Result<(), ActionError> {
        let Value::Object(map) = self.redact_value(&payload) else {
            return Err(ActionError::Failed(format!(
                "journal payload for {kind} is not an object"
            )));
        };
        self.journal
            .append(kind, map)
            .map(|_| ())
            .map_err(|e| ActionError::Failed(format!("failed to write the journal: {e}")))
    }
}

pub struct StepContext {
    pub run_id: String,
    pub step_id: String,
    /// Position in a `for_each` fan-out.
    pub item_index: Option<usize>,
    /// Stable across crashes and resumes: `<run>.<step>[.<item>]`. Use it for client tokens
    /// and idempotency tags.
    pub idempotency_key: String,
    pub mode: Mode,
    pub attempt: u32,
    pub(crate) shared: Arc<Shared>,
}

impl StepContext {
    pub fn clients(&self) -> &Clients {
        &self.shared.clients
    }

    pub fn redact(&self, text: &str) -> String {
        self.shared.redact(text)
    }

    /// Marks a value as secret for the rest of the run.
    pub fn add_secret(&self, secret: &str) {
        self.shared
            .redactor
            .lock()
            .expect("redactor lock")
            .add(secret);
    }

    /// A client token derived from the idempotency key (at most 64 characters, as EC2 and
    /// CloudFormation allow).
    pub fn client_token(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = hex::encode(Sha256::digest(self.idempotency_key.as_bytes()));
        format!("fb-{}", &digest[..40])
    }

    /// Asks for (or decides) an approval and journals the decision.
    pub async fn approve(&self, prompt: &str) -> Result<Decision, ActionError> {
        let prompt = self.redact(prompt);
        let context = format!(
            "firebreak run {} — step `{}` asks for approval:",
            self.run_id, self.step_id
        );
        let decision = approval::decide(&self.shared.approvals, &prompt, &context).await;
        self.shared.record(
            "approval",
            json!({
                "step": self.step_id,
                "item_index": self.item_index,
                "prompt": prompt,
                "approved": decision.approved,
                "refused": decision.refused,
                "by": decision.by,
                "user": super::identity::user(),
            }),
        )?;
        Ok(decision)
    }

    /// Makes one AWS call and journals it (service, operation, targets, outcome or error code,
    /// request id, duration, attempt) before returning.
    pub async fn call<T, F, Fut>(
        &self,
        service: &'static str,
        operation: &'static str,
        targets: &[&str],
        call: F,
    ) -> Result<T, ActionError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(T, Option<String>), AwsError>>,
    {
        let started = Instant::now();
        let result = call().await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let mut record = Map::new();
        record.insert("step".into(), json!(self.step_id));
        record.insert("item_index".into(), json!(self.item_index));
        record.insert("service".into(), json!(service));
        record.insert("operation".into(), json!(operation));
        record.insert("targets".into(), json!(targets));
        record.insert("attempt".into(), json!(self.attempt));
        record.insert("duration_ms".into(), json!(duration_ms));
        match &result {
            Ok((_, request_id)) => {
                record.insert("outcome".into(), json!("ok"));
                record.insert("request_id".into(), json!(request_id));
            }
            Err(error) => {
                record.insert("outcome".into(), json!("error"));
                record.insert("class".into(), json!(error.class.as_str()));
                record.insert("code".into(), json!(error.code));
                record.insert("message".into(), json!(error.message));
                record.insert("request_id".into(), json!(error.request_id));
            }
        }
        self.shared.record("api_call", Value::Object(record))?;
        result.map(|(value, _)| value).map_err(ActionError::from)
    }
}
