//! The journal's vocabulary: one typed payload per record kind, written by the engine and read
//! back by everyone else (replay, drills, reports, `journal show`, release, de-duplication)
//! through the same types — nobody parses records as loose JSON.
//!
//! The on-disk format (version 1) is fixed: each payload's fields are declared in the order the
//! format has always written them, and fields the format writes as `null` stay `null` while
//! fields it leaves out stay out ([`present`] keeps the two apart on reading). A test re-encodes
//! journals written by earlier engines and compares bytes.
//!
//! A kind this engine does not know (written by a newer engine) reads as [`Event::Other`]:
//! `verify`, `show` and `report` display it; replay, release and de-duplication refuse it.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

pub use super::custody::{Custody, SealFailed, Sealed, SealedKind, Signed, Statement};

/// Live changes things; a dry run (drill) must not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Live,
    DryRun,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::DryRun => "dry-run",
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    Failed,
    Refused,
    Interrupted,
    /// A step waits for a person's decision nobody could give: what is done stays done, the
    /// run's locks stay held (parked), and `resume` by a person carries on.
    AwaitingApproval,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Refused => "refused",
            RunStatus::Interrupted => "interrupted",
            RunStatus::AwaitingApproval => "awaiting_approval",
        }
    }
}

/// What refused a run, which decides whether it may be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// A policy interlock said no (protected resource, too many targets, a finding that does
    /// not verify): final — resuming never walks through it.
    Interlock,
    /// The run may not act in the account the finding names (no role to assume there): fixed
    /// by configuration, then the run resumes.
    Account,
    /// An interlock could not be evaluated (its AWS calls kept failing): nothing was changed;
    /// the run resumes and checks again.
    Unavailable,
    /// Another live run holds a target's lock: tried again later.
    Lock,
}

impl Refusal {
    /// Whether a later resume (or a redelivered finding) may try again.
    pub fn is_final(self) -> bool {
        self == Refusal::Interlock
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Succeeded,
    Failed,
    Skipped,
}

/// Reads a field that may be `null` as `Some(null)`, so "written as null" and "left out" (the
/// field's `#[serde(default)]`) stay apart and re-encode to the same bytes.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The runbook a run executes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunbookRef {
    pub name: String,
    /// Absolute path when the run started.
    pub path: String,
    pub sha256: String,
}

/// The first record of every run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStarted {
    pub format_version: u32,
    pub engine_version: String,
    /// `sha256` or `hmac-sha256`.
    pub chain: String,
    pub runbook: RunbookRef,
    /// Sensitive values are `[redacted]`.
    pub parameters: Map<String, Value>,
    pub sensitive_parameters: Vec<String>,
    pub event: Option<Value>,
    pub mode: Mode,
    /// `sts:GetCallerIdentity`: `{account, arn, user_id, request_id, duration_ms}`, or the error.
    pub caller: Value,
    /// `{role_arn, account}` for a member-account run, else null.
    pub assumed_role: Value,
    pub host: String,
    pub user: String,
    pub pid: u32,
    pub targets: Vec<String>,
    /// The region the run acts in (absent in journals of engines before regions were chosen
    /// per finding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Which findings the run re-reads from their service before acting, on start and on every
    /// resume (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_finding: Option<VerifyFinding>,
    /// A recheck of a finished case (absent: an ordinary run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recheck: Option<Box<Recheck>>,
    /// The run notes its progress on its Security Hub finding (a trigger's `update_finding`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_finding: Option<bool>,
    /// Where the journal and evidence are sealed (absent: they stay on this host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custody: Option<Box<Custody>>,
}

/// A run that rechecks a finished case: only these steps run; the case's approvals stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recheck {
    /// The case's run, whose containment is rechecked.
    pub case_run: String,
    /// The steps that run; the others are skipped.
    pub steps: Vec<String>,
}

impl Recheck {
    pub fn runs(&self, step: &str) -> bool {
        self.steps.iter().any(|s| s == step)
    }
}

/// Which findings are re-read from the service that reported them before a run acts on them:
/// an event on a queue can be written by anyone the queue admits, a finding in Security Hub or
/// GuardDuty only by the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyFinding {
    /// Security Hub findings (`GetFindings`), GuardDuty's included when they come through it.
    SecurityHub,
    /// Security Hub findings and GuardDuty's own events (`ListDetectors`, `GetFindings`).
    All,
}

/// A stale lock this run took over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockTakenOver {
    pub resource: String,
    /// The previous holder's lock file content, or null when it was unreadable.
    pub previous: Value,
}

/// A worker took a run's lease in the shared table (`--journal dynamodb://…`): the first record
/// of a resume there, written before any AWS call. Its conditional append is the fence — a
/// worker that held the run before can no longer append the record it would write next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseTaken {
    /// The worker now holding the run (host and process).
    pub holder: String,
    /// The lease's generation: it grows with every change of holder.
    pub generation: u64,
}

/// A drill's permission preflight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preflight {
    pub checked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// permission → `allowed` | `denied`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decisions: Option<Map<String, Value>>,
    /// step → `{allowed: [...], denied: [...]}`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Map<String, Value>>,
}

/// One safety interlock's verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interlock {
    /// `account`, `finding`, `lock`, `max_targets`, `protected_tags`.
    pub check: String,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overridden: Option<bool>,
    /// `{resource, tag, value}` of each protected target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// `step_started` (a step, or a fan-out step with `for_each`) and `item_started` (one item).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepStarted {
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_index: Option<usize>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub item: Option<Value>,
    pub action: String,
    /// A fan-out step: the items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// `<run>.<step>[.<item>]`
    pub idempotency_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// The rendered input (absent when it could not be rendered).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub input: Option<Value>,
}

/// `step_succeeded` and `item_succeeded`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSucceeded {
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_index: Option<usize>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub item: Option<Value>,
    /// A fan-out step: `[{item, status, outputs|error}]` in item order.
    pub outputs: Value,
    /// An isolating action's success: how long after the run (and the finding) it came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolated: Option<Isolated>,
}

/// The time to isolation of one target, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Isolated {
    /// Since the run started (its first start, when resumed).
    pub after_run_start_ms: u64,
    /// Since the finding that started the run was last updated (`dispatch` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_finding_ms: Option<u64>,
}

/// `step_failed` and `item_failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFailed {
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_index: Option<usize>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub item: Option<Value>,
    /// An AWS error class, `refused`, `timeout` or `failed`.
    pub class: String,
    pub code: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub request_id: Option<Option<String>>,
    pub message: String,
    /// What was done before the failure.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub outputs: Option<Value>,
    /// `on_failure: continue` (steps only, not items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continued: Option<bool>,
}

/// A failed attempt that will be retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRetry {
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_index: Option<usize>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub item: Option<Value>,
    pub attempt: u32,
    pub class: String,
    pub code: Option<String>,
    pub message: String,
    pub retry_in_ms: u64,
}

/// A step whose `when` rendered false.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSkipped {
    pub step: String,
    /// A group's inner step, skipped for this item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_index: Option<usize>,
    pub condition: String,
    pub rendered: Value,
}

/// A decision asked of (or recorded for) a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub step: String,
    pub item_index: Option<usize>,
    pub prompt: String,
    pub approved: bool,
    /// Denied for lack of anyone to ask (written by engines before parking existed).
    pub refused: bool,
    pub by: String,
    pub user: String,
    /// Nobody could be asked: the run parks here until a person resumes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parked: Option<bool>,
    /// A parked approval's deadline (RFC 3339, UTC): after it, the decision is deny.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// A person's decision on a waiting approval, written before the run goes on. Self-contained so
/// any channel can write one (the command line today; a signed link or a chat button later):
/// who decided (AWS identity and local user), through what, when, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The `core.approve` step decided.
    pub step: String,
    pub verdict: Verdict,
    pub reason: String,
    pub decided_by: Decider,
    /// RFC 3339, UTC.
    pub decided_at: String,
    /// Through what: `cli`, or `timeout` (nobody decided before the approval expired).
    pub channel: String,
}

impl DecisionRecord {
    /// How the decision reads in an approval's `by`, a timeline or a notification.
    pub fn describe(&self) -> String {
        let verdict = match self.verdict {
            Verdict::Approve => "approved",
            Verdict::Deny => "denied",
        };
        match self.channel.as_str() {
            "timeout" => format!("timeout ({})", self.reason),
            "case" => format!("{verdict} as the case decided ({})", self.reason),
            channel => {
                let who = self.decided_by.arn.clone().unwrap_or_else(|| {
                    format!("{}@{}", self.decided_by.user, self.decided_by.host)
                });
                format!("{verdict} by {who} via {channel}: {}", self.reason)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Deny,
}

/// Who decided: the AWS caller identity (`sts:GetCallerIdentity`) and where the decision was
/// made. For a timeout, the process that found the approval expired.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decider {
    pub arn: Option<String>,
    pub account: Option<String>,
    pub user_id: Option<String>,
    pub user: String,
    pub host: String,
}

/// The first finding of a resource opens a case (a case index's record, never a run's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseOpened {
    /// The trigger's `case_key`, with runbook, mode, account and region.
    pub case_key: String,
    pub runbook: String,
    /// The run that contains it (`run_id` is the envelope's: here, the case index's).
    pub case_run: String,
    /// The finding's de-duplication key.
    pub finding: String,
    /// Later findings join until this time (RFC 3339, UTC).
    pub window_ends: String,
}

/// A later finding of an open case (a case index's record, never a run's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingJoined {
    pub case_key: String,
    pub finding: String,
    /// The case's run (or the live recheck that holds it).
    pub case_run: String,
    /// `joined` (the run is live or waits), `rechecked` (it had finished: a recheck run), or
    /// `resumed` (it had failed or stopped: resumed).
    pub action: String,
    /// The recheck's run, for `rechecked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recheck_run: Option<String>,
    /// The case run's status when the finding came.
    pub status: String,
}

/// One AWS call, made or (in a drill) not sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiCall {
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_index: Option<usize>,
    pub service: String,
    pub operation: String,
    pub targets: Vec<String>,
    pub attempt: u32,
    /// The call sent again where it failed (throttled; a read's lost answer): 1, 2, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resend: Option<u32>,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// `ok`, `error`, `would-succeed`, `would-be-denied`, `applied-despite-dry-run`,
    /// `not-sent (…)`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub code: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub request_id: Option<Option<String>>,
    /// A drill's call that was not sent: `service:Operation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub would_call: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub input: Option<Value>,
}

impl ApiCall {
    /// `service:Operation`
    pub fn name(&self) -> String {
        format!("{}:{}", self.service, self.operation)
    }

    /// Whether the call was really sent (a drill's `not-sent` calls were not).
    pub fn sent(&self) -> bool {
        !self.outcome.starts_with("not-sent")
    }
}

/// An evidence file as saved: path, size and SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// An evidence file an action saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub step: String,
    pub artifact: ArtifactRecord,
}

/// A CloudFormation stack event seen while waiting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackEvent {
    pub stack_name: String,
    pub logical_resource_id: Option<String>,
    pub resource_type: Option<String>,
    pub resource_status: Option<String>,
    pub reason: Option<String>,
    pub timestamp: Option<String>,
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_index: Option<usize>,
}

/// An SSM command's status change seen while waiting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandStatus {
    pub command_id: String,
    pub instance_id: String,
    pub status: String,
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_index: Option<usize>,
}

/// What a step is about to do to a resource in several calls that must not be left half done
/// (an interface's two security-group moves): written before the first call, so a crash between
/// them is found and finished on resume, and a reader sees what was meant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_index: Option<usize>,
    /// `isolate`.
    pub operation: String,
    pub resource: String,
    /// The state before (an interface's own security groups).
    pub from: Vec<String>,
    /// The states it passes through, in order; the last is the goal.
    pub to: Vec<String>,
}

/// A run notification: sent, not sent (drill) or failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// `started`, `succeeded`, `failed`, `refused`, `interrupted`.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
    pub outcome: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub message_id: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Ctrl-C: the run stopped at a step boundary; `resume` carries on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInterrupted {
    pub steps_done: usize,
}

/// A torn last line cut off on resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalRecovered {
    pub torn_line: usize,
    pub truncated_bytes: usize,
}

/// A resume of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResumed {
    pub previous_status: Option<String>,
    pub host: String,
    pub user: String,
    pub pid: u32,
    /// A seal chosen on this resume (`--seal`), replacing the run's earlier one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custody: Option<Custody>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCounts {
    pub succeeded: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// The last record of a run that ended (not of one interrupted or crashed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFinished {
    pub status: RunStatus,
    pub steps: StepCounts,
    pub head: Option<String>,
    /// Why the run was refused (or what it waits for).
    pub reason: Option<String>,
    /// What refused it (absent in journals of engines before refusal kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_by: Option<Refusal>,
}

/// A record of a kind this engine does not know, or one that does not parse as its kind.
#[derive(Debug, Clone, PartialEq)]
pub struct OtherEvent {
    pub kind: String,
    pub fields: Map<String, Value>,
    /// Set when the kind is known but its payload does not parse.
    pub malformed: Option<String>,
}

macro_rules! vocabulary {
    ($($variant:ident($payload:ty) = $kind:literal;)*) => {
        /// Every record kind of journal format 1, with its payload.
        // A journal read back holds thousands of records, not millions; the larger variants'
        // inline bytes are noise next to their payloads' heap data, and boxing them would
        // ripple through every reader of the vocabulary.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $($variant($payload),)*
            /// Unknown to this engine (or malformed).
            Other(OtherEvent),
        }

        /// The record kinds this engine writes and reads.
        pub const KINDS: &[&str] = &[$($kind,)*];

        impl Event {
            /// The record's `type`.
            pub fn kind(&self) -> &str {
                match self {
                    $(Event::$variant(_) => $kind,)*
                    Event::Other(other) => &other.kind,
                }
            }

            /// The payload's fields in the format's order.
            pub fn payload(&self) -> Map<String, Value> {
                let value = match self {
                    $(Event::$variant(payload) => serde_json::to_value(payload),)*
                    Event::Other(other) => return other.fields.clone(),
                };
                match value {
                    Ok(Value::Object(map)) => map,
                    // Every payload is a struct of plain data: it always serializes to an object.
                    _ => unreachable!("a journal payload serializes to an object"),
                }
            }

            /// Reads a payload of kind `kind`; unknown kinds and payloads that do not parse
            /// become [`Event::Other`].
            pub fn from_payload(kind: &str, fields: Map<String, Value>) -> Event {
                let parsed = match kind {
                    $($kind => serde_json::from_value::<$payload>(Value::Object(fields.clone()))
                        .map(Event::$variant),)*
                    _ => {
                        return Event::Other(OtherEvent { kind: kind.to_owned(), fields, malformed: None });
                    }
                };
                parsed.unwrap_or_else(|e| {
                    Event::Other(OtherEvent {
                        kind: kind.to_owned(),
                        fields,
                        malformed: Some(e.to_string()),
                    })
                })
            }
        }
    };
}

vocabulary! {
    RunStarted(RunStarted) = "run_started";
    LockTakenOver(LockTakenOver) = "lock_taken_over";
    LeaseTaken(LeaseTaken) = "lease_taken";
    Preflight(Preflight) = "preflight";
    Interlock(Interlock) = "interlock";
    StepStarted(StepStarted) = "step_started";
    ItemStarted(StepStarted) = "item_started";
    StepRetry(StepRetry) = "step_retry";
    ApiCall(ApiCall) = "api_call";
    Approval(Approval) = "approval";
    Decision(DecisionRecord) = "decision";
    CaseOpened(CaseOpened) = "case_opened";
    FindingJoined(FindingJoined) = "finding_joined";
    Evidence(Evidence) = "evidence";
    StackEvent(StackEvent) = "stack_event";
    CommandStatus(CommandStatus) = "command_status";
    Intent(Intent) = "intent";
    StepSucceeded(StepSucceeded) = "step_succeeded";
    ItemSucceeded(StepSucceeded) = "item_succeeded";
    StepFailed(StepFailed) = "step_failed";
    ItemFailed(StepFailed) = "item_failed";
    StepSkipped(StepSkipped) = "step_skipped";
    Notification(Notification) = "notification";
    RunInterrupted(RunInterrupted) = "run_interrupted";
    RunResumed(RunResumed) = "run_resumed";
    JournalRecovered(JournalRecovered) = "journal_recovered";
    RunFinished(RunFinished) = "run_finished";
    Sealed(Sealed) = "sealed";
    SealFailed(SealFailed) = "seal_failed";
    Signed(Signed) = "signed";
}

impl Event {
    /// The step a record belongs to, for records that belong to one.
    pub fn step(&self) -> Option<&str> {
        match self {
            Event::StepStarted(e) | Event::ItemStarted(e) => Some(&e.step),
            Event::StepSucceeded(e) | Event::ItemSucceeded(e) => Some(&e.step),
            Event::StepFailed(e) | Event::ItemFailed(e) => Some(&e.step),
            Event::StepRetry(e) => Some(&e.step),
            Event::StepSkipped(e) => Some(&e.step),
            Event::ApiCall(e) => Some(&e.step),
            Event::Approval(e) => Some(&e.step),
            Event::Decision(e) => Some(&e.step),
            Event::Evidence(e) => Some(&e.step),
            Event::StackEvent(e) => Some(&e.step),
            Event::CommandStatus(e) => Some(&e.step),
            _ => None,
        }
    }

    /// The fan-out item a record belongs to.
    pub fn item_index(&self) -> Option<usize> {
        match self {
            Event::StepStarted(e) | Event::ItemStarted(e) => e.item_index,
            Event::StepSucceeded(e) | Event::ItemSucceeded(e) => e.item_index,
            Event::StepFailed(e) | Event::ItemFailed(e) => e.item_index,
            Event::StepRetry(e) => e.item_index,
            Event::ApiCall(e) => e.item_index,
            Event::Approval(e) => e.item_index,
            Event::StackEvent(e) => e.item_index,
            Event::CommandStatus(e) => e.item_index,
            Event::StepSkipped(e) => e.item_index,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip(kind: &str, payload: Value) {
        let Value::Object(fields) = payload.clone() else {
            panic!("not an object")
        };
        let event = Event::from_payload(kind, fields);
        assert!(
            !matches!(event, Event::Other(_)),
            "{kind} did not parse: {event:?}"
        );
        assert_eq!(
            serde_json::to_string(&Value::Object(event.payload())).unwrap(),
            serde_json::to_string(&payload).unwrap(),
            "{kind}"
        );
    }

    #[test]
    fn null_and_absent_stay_apart() {
        roundtrip(
            "api_call",
            json!({"step": "s", "service": "ec2", "operation": "DescribeInstances", "targets": [],
                   "attempt": 1, "duration_ms": 3, "outcome": "ok", "request_id": null}),
        );
        roundtrip(
            "api_call",
            json!({"step": "s", "item_index": 2, "service": "ec2", "operation": "CreateTags",
                   "targets": ["i-1"], "attempt": 1, "duration_ms": 3, "dry_run": true,
                   "outcome": "would-succeed", "class": "dry-run-would-succeed",
                   "code": "DryRunOperation", "message": "m", "request_id": null}),
        );
        roundtrip(
            "step_started",
            json!({"step": "s", "item_index": 0, "item": null, "action": "core.log",
                   "idempotency_key": "r.s.0", "attempts": 1, "timeout": "30m", "input": {}}),
        );
        roundtrip(
            "step_failed",
            json!({"step": "s", "class": "failed", "code": null, "message": "m", "outputs": {},
                   "continued": false}),
        );
    }

    #[test]
    fn unknown_kinds_and_malformed_payloads_are_kept() {
        let Event::Other(other) = Event::from_payload("future_kind", Map::new()) else {
            panic!("an unknown kind is Other")
        };
        assert_eq!(other.kind, "future_kind");
        assert!(other.malformed.is_none());
        let Value::Object(fields) = json!({"steps_done": "many"}) else {
            unreachable!()
        };
        let Event::Other(other) = Event::from_payload("run_interrupted", fields) else {
            panic!("a malformed payload is Other")
        };
        assert!(other.malformed.is_some());
    }
}
