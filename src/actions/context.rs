//! What an action sees while it runs: its identity in the run (run, step, item, idempotency
//! key, mode, attempt), the AWS clients, files beside the runbook, and a way to report what it
//! does — AWS calls, evidence, observations, approvals, progress — through [`RunHooks`], which
//! the engine implements (journal, observer, approvals). Actions never write the journal
//! themselves and know nothing of the engine that drives them.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::request_id::RequestId;
use serde_json::{Value, json};

use super::ActionError;
use super::approval::{ApprovalRequest, Decision};
use crate::aws::{AwsError, Clients, ErrorClass, resend};
use crate::journal::event::{ApiCall, Approval, ArtifactRecord, Evidence};
use crate::journal::{Event, JournalError, Mode};

/// What the engine provides to every step: the journal (redacted), secrets to redact, a person
/// (or a policy) to approve, an observer for progress. Object-safe, so the engine can hand it
/// over as `Arc<dyn RunHooks>`.
pub trait RunHooks: Send + Sync {
    /// Journals an event, redacted, durably before it returns. A failure means the run cannot
    /// go on: an effect that cannot be recorded must not be followed by another.
    fn record(&self, event: Event) -> Result<(), JournalError>;
    /// Replaces the run's secrets in `text`.
    fn redact(&self, text: &str) -> String;
    /// Marks a value as secret for the rest of the run.
    fn add_secret(&self, secret: &str);
    /// Asks for (or decides) an approval; journaling the decision is the caller's job.
    fn approve(
        &self,
        request: ApprovalRequest,
    ) -> Pin<Box<dyn Future<Output = Decision> + Send + '_>>;
    /// A progress note while a step waits (snapshots, stacks, commands), for whoever watches.
    fn progress(&self, step: &str, item: Option<usize>, text: &str);
    /// Whether the operator interrupted the run (Ctrl-C): a failed call is then not sent again.
    fn interrupted(&self) -> bool {
        false
    }
}

/// What every step of a run shares.
pub struct RunContext {
    pub clients: Clients,
    /// The runbook's folder: files a runbook names (scripts, templates) are relative to it.
    pub runbook_dir: PathBuf,
    /// Where evidence files go: `<journal-dir>/<run-id>/evidence/`.
    pub evidence_dir: PathBuf,
    /// The journal chain's key, for actions that verify another run's journal.
    pub journal_key: Option<Vec<u8>>,
    pub hooks: Arc<dyn RunHooks>,
    /// Changes that must not be cut in half ([`StepContext::shielded`]): the run waits for
    /// them before it ends.
    pub shielded: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// What the run finds or makes once for all its items ([`StepContext::once`]).
    pub once: super::OnceValues,
    /// Reads of concurrent items coalesced into one call ([`StepContext::batched`]).
    pub batches: super::Batches,
    /// The run's seal, where instances upload evidence: set once the bucket passed its check
    /// (unset without `--seal`).
    pub collection: std::sync::OnceLock<crate::custody::presign::Collection>,
}

impl RunContext {
    /// Waits for every shielded change still in flight (a step's timeout dropped the step,
    /// not the change).
    pub async fn settle(&self) {
        loop {
            let pending: Vec<_> = std::mem::take(&mut *self.shielded.lock().expect("shielded"));
            if pending.is_empty() {
                return;
            }
            for handle in pending {
                let _ = handle.await;
            }
        }
    }
}

#[derive(Clone)]
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
    /// The step's deadline: calls are sent again after throttling until then. Tokio's clock,
    /// like the step's timeout (and paused with it in tests).
    deadline: Option<tokio::time::Instant>,
    /// Off for calls whose caller bounds their retries itself (see [`StepContext::sending_once`]).
    resends: bool,
    run: Arc<RunContext>,
}

impl StepContext {
    pub fn new(
        run: Arc<RunContext>,
        run_id: impl Into<String>,
        step_id: impl Into<String>,
        item_index: Option<usize>,
        idempotency_key: impl Into<String>,
        mode: Mode,
        attempt: u32,
    ) -> StepContext {
        StepContext {
            run_id: run_id.into(),
            step_id: step_id.into(),
            item_index,
            idempotency_key: idempotency_key.into(),
            mode,
            attempt,
            deadline: None,
            resends: true,
            run,
        }
    }

    /// The same context, but a failed call is not sent again by it: for a caller with its own,
    /// tighter retry policy — an isolation move must not wait out a throttling storm while the
    /// interface sits in the all-traffic group between its two moves.
    pub fn sending_once(&self) -> StepContext {
        StepContext {
            resends: false,
            ..self.clone()
        }
    }

    /// Bounds its calls' re-sends by the step's deadline (without one, each call's by
    /// [`resend::BUDGET`]).
    pub fn with_deadline(mut self, deadline: tokio::time::Instant) -> StepContext {
        self.deadline = Some(deadline);
        self
    }

    /// The run's seal, for uploads straight from instances.
    pub fn collection(&self) -> Option<&crate::custody::presign::Collection> {
        self.run.collection.get()
    }

    pub fn clients(&self) -> &Clients {
        &self.run.clients
    }

    /// Runs `work` to its end even if the step is dropped (its timeout) or the run is
    /// interrupted: for a change whose first half without its second leaves things worse than
    /// before (an interface moved into the all-traffic group but not on into isolation). The
    /// run waits for it before it ends; only the process dying stops it, and the step's intent
    /// record lets a resume finish it.
    pub async fn shielded<T, F>(&self, work: F) -> Result<T, ActionError>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        // Counted from before the task starts, so a second Ctrl-C never slips in between.
        let held = super::shield::Held::take();
        let handle = tokio::spawn(async move {
            let _ = done.send(work.await);
            drop(held);
        });
        self.run.shielded.lock().expect("shielded").push(handle);
        result
            .await
            .map_err(|_| ActionError::Failed("a shielded change panicked".into()))
    }

    /// The run's value for `key`, found or made by `init` once for every step and item of
    /// the run (concurrent callers wait for the first).
    pub async fn once<V, F, Fut>(&self, key: &str, init: F) -> Result<V, ActionError>
    where
        V: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, ActionError>>,
    {
        self.run.once.get_or_try_init(key, init).await
    }

    /// The value for `key`, read together with the keys concurrent items ask for in the same
    /// `family` (see [`super::Batches`]). `fetch` gets every key of the batch and this
    /// step's context; the call it makes is journaled as this step's.
    pub async fn batched<V, F, Fut>(
        &self,
        family: &str,
        key: &str,
        fetch: F,
    ) -> Result<Option<V>, ActionError>
    where
        V: Clone + Send + Sync + 'static,
        F: FnOnce(StepContext, Vec<String>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<std::collections::HashMap<String, V>, ActionError>>
            + Send
            + 'static,
    {
        // Only a fanned-out step has other items to wait for; the others' reads go at once
        // (still joined by whatever else asked in the same instant).
        let window = match self.item_index {
            Some(_) => super::batch::WINDOW,
            None => std::time::Duration::ZERO,
        };
        let ctx = self.clone();
        self.run
            .batches
            .get(family, key, window, move |keys| fetch(ctx, keys))
            .await
    }

    pub fn redact(&self, text: &str) -> String {
        self.run.hooks.redact(text)
    }

    /// The journal key, for verifying another run's journal.
    pub fn journal_key(&self) -> Option<&[u8]> {
        self.run.journal_key.as_deref()
    }

    /// The runbook's folder; paths in inputs (scripts, templates) are relative to it.
    pub fn runbook_dir(&self) -> &Path {
        &self.run.runbook_dir
    }

    /// Reads a file a runbook names (relative to the runbook), with its SHA-256 for the
    /// journal. Absolute paths are refused, so a runbook names only files shipped beside it
    /// (`scripts/collect.sh`, `../clean-room/forensic-vpc.yaml`).
    pub fn read_runbook_file(&self, relative: &str) -> Result<(Vec<u8>, String), ActionError> {
        use sha2::{Digest, Sha256};
        let path = Path::new(relative);
        if path.is_absolute() {
            return Err(ActionError::Input(format!(
                "`{relative}`: give files relative to the runbook, not absolute paths"
            )));
        }
        let full = self.run.runbook_dir.join(path);
        let bytes = std::fs::read(&full)
            .map_err(|e| ActionError::Failed(format!("failed to read {}: {e}", full.display())))?;
        let sha = hex::encode(Sha256::digest(&bytes));
        Ok((bytes, sha))
    }

    /// Journals something the action observed (stack events, command status…), so the record
    /// shows what happened while the step waited.
    pub fn record(&self, event: Event) -> Result<(), ActionError> {
        self.run.hooks.record(event).map_err(ActionError::from)
    }

    /// A progress note while the step waits; shown live on a terminal, never journaled.
    pub fn progress(&self, text: &str) {
        self.run
            .hooks
            .progress(&self.step_id, self.item_index, &self.redact(text));
    }

    /// Marks a value as secret for the rest of the run.
    pub fn add_secret(&self, secret: &str) {
        self.run.hooks.add_secret(secret);
    }

    /// A client token derived from the idempotency key (at most 64 characters, as EC2 and
    /// CloudFormation allow).
    pub fn client_token(&self) -> String {
        self.client_token_for("")
    }

    /// The client token of one of several things a step makes (`part` names which, e.g. the
    /// snapshot a volume is made from).
    pub fn client_token_for(&self, part: &str) -> String {
        use sha2::{Digest, Sha256};
        let key = match part {
            "" => self.idempotency_key.clone(),
            part => format!("{}/{part}", self.idempotency_key),
        };
        let digest = hex::encode(Sha256::digest(key.as_bytes()));
        format!("fb-{}", &digest[..40])
    }

    /// Asks for (or decides) an approval and journals the decision.
    pub async fn approve(
        &self,
        prompt: &str,
        approvers: &[String],
        timeout: Option<std::time::Duration>,
    ) -> Result<Decision, ActionError> {
        let prompt = self.redact(prompt);
        let request = ApprovalRequest {
            run_id: self.run_id.clone(),
            step_id: self.step_id.clone(),
            item_index: self.item_index,
            prompt: prompt.clone(),
            approvers: approvers.to_vec(),
            timeout,
        };
        let decision = self.run.hooks.approve(request).await;
        self.record(Event::Approval(Approval {
            step: self.step_id.clone(),
            item_index: self.item_index,
            prompt,
            approved: decision.approved,
            refused: decision.refused,
            by: decision.by.clone(),
            user: crate::host::user(),
            parked: decision.parked.then_some(true),
            expires_at: decision.expires_at.clone(),
        }))?;
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
        mut call: F,
    ) -> Result<T, ActionError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        T: RequestId,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let deadline = self
            .deadline
            .unwrap_or_else(|| tokio::time::Instant::now() + resend::BUDGET);
        let mut resends = 0;
        loop {
            let started = Instant::now();
            let result = call().await;
            let mut record = self.call_record(service, operation, targets, elapsed_ms(started));
            record.resend = (resends > 0).then_some(resends);
            match result {
                Ok(output) => {
                    record.outcome = "ok".into();
                    record.request_id = Some(output.request_id().map(str::to_owned));
                    self.record(Event::ApiCall(record))?;
                    return Ok(output);
                }
                Err(error) => {
                    let error = AwsError::from_sdk(service, operation, error);
                    set_error(&mut record, &error);
                    self.record(Event::ApiCall(record))?;
                    let wait = resend::delay(resends + 1);
                    // The first Ctrl-C stops at the call in flight: no re-send after it (the
                    // step runs again on resume).
                    if self.resends
                        && resend::again(operation, error.class)
                        && self.run.hooks.interrupted()
                    {
                        return Err(ActionError::Interrupted(format!(
                            "{service}:{operation} not sent again ({})",
                            error.class.as_str()
                        )));
                    }
                    if self.resends
                        && resend::again(operation, error.class)
                        && tokio::time::Instant::now() + wait < deadline
                    {
                        tokio::time::sleep(wait).await;
                        resends += 1;
                        continue;
                    }
                    return Err(error.into());
                }
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
        mut call: F,
    ) -> Result<Option<T>, ActionError>
    where
        F: FnMut(bool) -> Fut,
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
                let mut record = self.call_record("ec2", operation, targets, elapsed_ms(started));
                record.dry_run = Some(true);
                let outcome = match result {
                    Ok(_) => {
                        // The service ignored DryRun: the change may have happened. Say so.
                        record.outcome = "applied-despite-dry-run".into();
                        Err(ActionError::Failed(format!(
                            "ec2:{operation} with DryRun=true answered success instead of DryRunOperation; the change may have been applied"
                        )))
                    }
                    Err(error) => {
                        let error = AwsError::from_sdk("ec2", operation, error);
                        set_error(&mut record, &error);
                        match error.class {
                            ErrorClass::DryRunWouldSucceed => {
                                record.outcome = "would-succeed".into();
                                Ok(None)
                            }
                            ErrorClass::AccessDenied => {
                                record.outcome = "would-be-denied".into();
                                Err(error.into())
                            }
                            _ => Err(error.into()),
                        }
                    }
                };
                self.record(Event::ApiCall(record))?;
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
        F: FnMut() -> Fut,
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
        record.outcome = outcome.to_owned();
        record.would_call = Some(format!("{service}:{operation}"));
        record.input = Some(input);
        self.record(Event::ApiCall(record))
    }

    fn call_record(
        &self,
        service: &str,
        operation: &str,
        targets: &[&str],
        duration_ms: u64,
    ) -> ApiCall {
        ApiCall {
            step: self.step_id.clone(),
            item_index: self.item_index,
            service: service.to_owned(),
            operation: operation.to_owned(),
            targets: targets.iter().map(|t| (*t).to_owned()).collect(),
            attempt: self.attempt,
            duration_ms,
            ..ApiCall::default()
        }
    }

    /// Writes an evidence file under `<journal-dir>/<run-id>/evidence/` and journals its path,
    /// size and SHA-256 (which `journal verify` re-checks). Written to a temporary name first
    /// and renamed, so a crash never leaves a half file under the final name.
    pub fn write_evidence(&self, name: &str, bytes: &[u8]) -> Result<Value, ActionError> {
        use sha2::{Digest, Sha256};
        let dir = &self.run.evidence_dir;
        let failed = |what: &str, e: std::io::Error| {
            ActionError::Failed(format!(
                "failed to {what} evidence {name} in {}: {e}",
                dir.display()
            ))
        };
        std::fs::create_dir_all(dir).map_err(|e| failed("create the folder for", e))?;
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
        let artifact = ArtifactRecord {
            path: path.display().to_string(),
            size: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        };
        self.record(Event::Evidence(Evidence {
            step: self.step_id.clone(),
            artifact: artifact.clone(),
        }))?;
        Ok(json!({"path": artifact.path, "size": artifact.size, "sha256": artifact.sha256}))
    }
}

/// Drill outputs stand in for ids a step would have made: `<would be created by step x>`.
pub fn is_placeholder(value: &str) -> bool {
    value.starts_with("<would")
}

fn elapsed_ms(started: Instant) -> u64 {
    started.elapsed().as_millis() as u64
}

fn set_error(record: &mut ApiCall, error: &AwsError) {
    record.outcome = "error".into();
    record.class = Some(error.class.as_str().to_owned());
    record.code = Some(error.code.clone());
    record.message = Some(error.message.clone());
    record.request_id = Some(error.request_id.clone());
}
