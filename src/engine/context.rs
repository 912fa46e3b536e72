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
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::request_id::RequestId;

use crate::aws::{AwsError, Clients, ErrorClass};
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
    /// Where journals live; evidence goes to `<journal_dir>/<run_id>/evidence/`.
    pub journal_dir: std::path::PathBuf,
    /// The runbook's folder: files a runbook names (scripts, templates) are relative to it.
    pub runbook_dir: std::path::PathBuf,
    /// The resources the run acts on (for notifications and reports).
    pub targets: Vec<String>,
    /// Grows when actions meet secrets (e.g. a created access key), so nothing later prints them.
    pub redactor: Mutex<Redactor>,
}

impl Shared {
    pub fn evidence_dir(&self) -> std::path::PathBuf {
        self.journal_dir.join(&self.run_id).join("evidence")
    }

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

    /// The runbook's folder; paths in inputs (scripts, templates) are relative to it.
    pub fn runbook_dir(&self) -> &std::path::Path {
        &self.shared.runbook_dir
    }

    /// Reads a file a runbook names (relative to the runbook), with its SHA-256 for the
    /// journal. Absolute paths are refused, so a runbook names only files shipped beside it
    /// (`scripts/collect.sh`, `../clean-room/forensic-vpc.yaml`).
    pub fn read_runbook_file(&self, relative: &str) -> Result<(Vec<u8>, String), ActionError> {
        use sha2::{Digest, Sha256};
        let path = std::path::Path::new(relative);
        if path.is_absolute() {
            return Err(ActionError::Failed(format!(
                "`{relative}`: give files relative to the runbook, not absolute paths"
            )));
        }
        let full = self.shared.runbook_dir.join(path);
        let bytes = std::fs::read(&full)
            .map_err(|e| ActionError::Failed(format!("failed to read {}: {e}", full.display())))?;
        let sha = hex::encode(Sha256::digest(&bytes));
        Ok((bytes, sha))
    }

    /// Journals something the action observed (stack events, command status…), so the record
    /// shows what happened while the step waited.
    pub fn journal_event(
        &self,
        kind: &str,
        mut payload: Map<String, Value>,
    ) -> Result<(), ActionError> {
        payload.insert("step".into(), json!(self.step_id));
        if let Some(index) = self.item_index {
            payload.insert("item_index".into(), json!(index));
        }
        self.shared.record(kind, Value::Object(payload))
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

    /// A read-only AWS call (Describe*, Get*, List*): made in every mode, journaled (service,
    /// operation, targets, outcome or error code, request id, duration, attempt) before it
    /// returns.
    pub async fn call<T, E, F, Fut>(
        &self,
        service: &'static str,
        operation: &'static str,
        targets: &[&str],
        call: F,
    ) -> Result<T, ActionError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        T: RequestId,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let started = Instant::now();
        let result = call().await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let mut record = self.call_record(service, operation, targets, duration_ms);
        match result {
            Ok(output) => {
                record.insert("outcome".into(), json!("ok"));
                record.insert("request_id".into(), json!(output.request_id()));
                self.shared.record("api_call", Value::Object(record))?;
                Ok(output)
            }
            Err(error) => {
                let error = AwsError::from_sdk(service, operation, error);
                insert_error(&mut record, &error);
                self.shared.record("api_call", Value::Object(record))?;
                Err(error.into())
            }
        }
    }

    /// A mutating EC2 call, which supports `DryRun`. `call(dry_run)` sends it. Live, it is sent
    /// as is; in a drill it is sent with `DryRun=true` and the answer (`DryRunOperation`: would
    /// succeed; `UnauthorizedOperation`: denied) is journaled, and `None` is returned.
    pub async fn ec2_change<T, E, F, Fut>(
        &self,
        operation: &'static str,
        targets: &[&str],
        call: F,
    ) -> Result<Option<T>, ActionError>
    where
        F: FnOnce(bool) -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        T: RequestId,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match self.mode {
            Mode::Live => self
                .call("ec2", operation, targets, || call(false))
                .await
                .map(Some),
            // A target that is a placeholder (made by a step that did not really run) cannot be
            // checked by AWS either: say what would be called instead.
            Mode::DryRun if targets.iter().any(|t| is_placeholder(t)) => {
                self.would_call(
                    "ec2",
                    operation,
                    targets,
                    json!({ "targets": targets }),
                    "not-sent (depends on a step that did not run)",
                )?;
                Ok(None)
            }
            Mode::DryRun => {
                let started = Instant::now();
                let result = call(true).await;
                let duration_ms = started.elapsed().as_millis() as u64;
                let mut record = self.call_record("ec2", operation, targets, duration_ms);
                record.insert("dry_run".into(), json!(true));
                let outcome = match result {
                    Ok(_) => {
                        // The service ignored DryRun: the change may have happened. Say so.
                        record.insert("outcome".into(), json!("applied-despite-dry-run"));
                        Err(ActionError::Failed(format!(
                            "ec2:{operation} with DryRun=true answered success instead of DryRunOperation; the change may have been applied"
                        )))
                    }
                    Err(error) => {
                        let error = AwsError::from_sdk("ec2", operation, error);
                        insert_error(&mut record, &error);
                        match error.class {
                            ErrorClass::DryRunWouldSucceed => {
                                record.insert("outcome".into(), json!("would-succeed"));
                                Ok(None)
                            }
                            ErrorClass::AccessDenied => {
                                record.insert("outcome".into(), json!("would-be-denied"));
                                Err(error.into())
                            }
                            _ => Err(error.into()),
                        }
                    }
                };
                self.shared.record("api_call", Value::Object(record))?;
                outcome
            }
        }
    }

    /// A mutating call of a service without `DryRun` (IAM, SSM, CloudFormation, Auto Scaling…).
    /// In a drill it is not sent: the journal records "would call" with the input, and `None`
    /// is returned.
    pub async fn change<T, E, F, Fut>(
        &self,
        service: &'static str,
        operation: &'static str,
        targets: &[&str],
        input: Value,
        call: F,
    ) -> Result<Option<T>, ActionError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        T: RequestId,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match self.mode {
            Mode::Live => self.call(service, operation, targets, call).await.map(Some),
            Mode::DryRun => {
                self.would_call(service, operation, targets, input, "not-sent (dry run)")?;
                Ok(None)
            }
        }
    }

    /// Journals a call that a drill does not send.
    fn would_call(
        &self,
        service: &str,
        operation: &str,
        targets: &[&str],
        input: Value,
        outcome: &str,
    ) -> Result<(), ActionError> {
        let mut record = self.call_record(service, operation, targets, 0);
        record.insert("outcome".into(), json!(outcome));
        record.insert("would_call".into(), json!(format!("{service}:{operation}")));
        record.insert("input".into(), input);
        self.shared.record("api_call", Value::Object(record))
    }

    fn call_record(
        &self,
        service: &str,
        operation: &str,
        targets: &[&str],
        duration_ms: u64,
    ) -> Map<String, Value> {
        let mut record = Map::new();
        record.insert("step".into(), json!(self.step_id));
        if let Some(index) = self.item_index {
            record.insert("item_index".into(), json!(index));
        }
        record.insert("service".into(), json!(service));
        record.insert("operation".into(), json!(operation));
        record.insert("targets".into(), json!(targets));
        record.insert("attempt".into(), json!(self.attempt));
        record.insert("duration_ms".into(), json!(duration_ms));
        record
    }

    /// Writes an evidence file under `<journal-dir>/<run-id>/evidence/` and journals its path,
    /// size and SHA-256 (which `journal verify` re-checks). Written to a temporary name first
    /// and renamed, so a crash never leaves a half file under the final name.
    pub fn write_evidence(&self, name: &str, bytes: &[u8]) -> Result<Value, ActionError> {
        use sha2::{Digest, Sha256};
        let dir = self.shared.evidence_dir();
        let failed = |what: &str, e: std::io::Error| {
            ActionError::Failed(format!(
                "failed to {what} evidence {name} in {}: {e}",
                dir.display()
            ))
        };
        std::fs::create_dir_all(&dir).map_err(|e| failed("create the folder for", e))?;
        // Never overwrite evidence: a step run again (after a crash) writes a second file, so
        // the first record's hash still matches its file.
        let mut path = dir.join(name);
        let mut copy = 1;
        while path.exists() {
            copy += 1;
            let (stem, extension) = match name.rsplit_once('.') {
                Some((stem, extension)) => (stem, format!(".{extension}")),
                None => (name, String::new()),
            };
            path = dir.join(format!("{stem}-{copy}{extension}"));
        }
        let temporary = dir.join(format!(".{name}.partial"));
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&temporary).map_err(|e| failed("create", e))?;
            file.write_all(bytes).map_err(|e| failed("write", e))?;
            file.sync_all().map_err(|e| failed("sync", e))?;
        }
        std::fs::rename(&temporary, &path).map_err(|e| failed("rename", e))?;
        let artifact = json!({
            "path": path.display().to_string(),
            "size": bytes.len(),
            "sha256": hex::encode(Sha256::digest(bytes)),
        });
        let mut record = Map::new();
        record.insert("step".into(), json!(self.step_id));
        record.insert("artifact".into(), artifact.clone());
        self.shared.record("evidence", Value::Object(record))?;
        Ok(artifact)
    }
}

/// Drill outputs stand in for ids a step would have made: `<would be created by step x>`.
pub fn is_placeholder(value: &str) -> bool {
    value.starts_with("<would")
}

fn insert_error(record: &mut Map<String, Value>, error: &AwsError) {
    record.insert("outcome".into(), json!("error"));
    record.insert("class".into(), json!(error.class.as_str()));
    record.insert("code".into(), json!(error.code));
    record.insert("message".into(), json!(error.message));
    record.insert("request_id".into(), json!(error.request_id));
}
