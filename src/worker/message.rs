//! What a queue message is: an EventBridge event (the rule delivers the event itself as the
//! body), or one of firebreak's own requests — a person's decision on a parked run (`approve` /
//! `deny --via-queue`) or a resume (`resume --via-queue`, or a Lambda continuing a run in a
//! later invocation). Anything else is malformed: logged by id (never its body, which may hold
//! secrets) and left to come back until the redrive policy moves it to the dead-letter queue.

use serde_json::{Value, json};

use crate::journal::event::Verdict;

/// The `firebreak` field's values, and the version of the requests' shape.
const DECISION: &str = "decision";
const RESUME: &str = "resume";
const VERSION: u64 = 1;

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// An EventBridge event, for `dispatch`'s code.
    Event(Value),
    /// A person's decision; the sender is checked before it counts.
    Decision(QueuedDecision),
    /// Carry a run on (every interlock is checked again, as for any resume).
    Resume { run_id: String },
    /// Not something a worker can act on, and why (no part of the body).
    Malformed(String),
}

/// A decision as the CLI sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedDecision {
    pub run_id: String,
    pub verdict: Verdict,
    /// The step decided; `None`: the one the run waits at.
    pub step: Option<String>,
    pub reason: String,
    /// The ARN the sender says it is (`sts:GetCallerIdentity`); the worker believes it only
    /// when SQS's `SenderId` for the message is that identity's.
    pub decider: String,
}

impl QueuedDecision {
    pub fn body(&self) -> String {
        json!({
            "firebreak": DECISION,
            "version": VERSION,
            "run_id": self.run_id,
            "verdict": match self.verdict { Verdict::Approve => "approve", Verdict::Deny => "deny" },
            "step": self.step,
            "reason": self.reason,
            "decider": self.decider,
        })
        .to_string()
    }
}

/// The body of a resume request for `run_id`.
pub fn resume_body(run_id: &str) -> String {
    json!({"firebreak": RESUME, "version": VERSION, "run_id": run_id}).to_string()
}

pub fn parse(body: &str) -> Message {
    let value: Value = match serde_json::from_str(body) {
        Ok(value) => value,
        Err(e) => {
            return Message::Malformed(format!(
                "not JSON (line {}, column {})",
                e.line(),
                e.column()
            ));
        }
    };
    if let Some(kind) = value["firebreak"].as_str() {
        return request(kind, &value).unwrap_or_else(Message::Malformed);
    }
    let is_event = value.is_object()
        && value["source"].is_string()
        && value["detail-type"].is_string()
        && value["detail"].is_object();
    if is_event {
        Message::Event(value)
    } else {
        Message::Malformed(
            "JSON, but not an EventBridge event (source, detail-type, detail) nor a firebreak \
             request"
                .into(),
        )
    }
}

/// One of firebreak's requests, its fields checked (errors name the field, never its value).
fn request(kind: &str, value: &Value) -> Result<Message, String> {
    if value["version"].as_u64() != Some(VERSION) {
        return Err(format!(
            "a firebreak request of a version this worker does not know (it reads {VERSION})"
        ));
    }
    let run_id = value["run_id"]
        .as_str()
        .filter(|id| crate::engine::run_id::is_valid(id))
        .ok_or("a firebreak request without a valid `run_id`")?
        .to_owned();
    match kind {
        RESUME => Ok(Message::Resume { run_id }),
        DECISION => {
            let verdict = match value["verdict"].as_str() {
                Some("approve") => Verdict::Approve,
                Some("deny") => Verdict::Deny,
                _ => return Err("a decision whose `verdict` is not approve or deny".into()),
            };
            let reason = value["reason"]
                .as_str()
                .filter(|r| !r.trim().is_empty())
                .ok_or("a decision without a `reason`")?
                .to_owned();
            let decider = value["decider"]
                .as_str()
                .filter(|a| a.starts_with("arn:"))
                .ok_or("a decision without a `decider` ARN")?
                .to_owned();
            let step = match &value["step"] {
                Value::Null => None,
                Value::String(step) => Some(step.clone()),
                _ => return Err("a decision whose `step` is not a string".into()),
            };
            Ok(Message::Decision(QueuedDecision {
                run_id,
                verdict,
                step,
                reason,
                decider,
            }))
        }
        _ => Err("a firebreak request of a kind this worker does not know".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_told_from_everything_else_without_echoing_the_body() {
        let event = r#"{"source":"aws.guardduty","detail-type":"GuardDuty Finding","detail":{}}"#;
        assert!(matches!(parse(event), Message::Event(_)));
        let Message::Malformed(why) = parse("password=hunter2 {") else {
            panic!("malformed")
        };
        assert!(!why.contains("hunter2"), "{why}");
        assert!(matches!(parse(r#"{"source":"x"}"#), Message::Malformed(_)));
        assert!(matches!(parse("[1]"), Message::Malformed(_)));
    }

    #[test]
    fn requests_round_trip_and_bad_ones_name_the_field() {
        let decision = QueuedDecision {
            run_id: "20261202T100000Z-3f9a2c".into(),
            verdict: Verdict::Approve,
            step: Some("stop".into()),
            reason: "confirmed with the owner".into(),
            decider: "arn:aws:iam::123456789012:user/alice".into(),
        };
        assert_eq!(parse(&decision.body()), Message::Decision(decision.clone()));
        assert_eq!(
            parse(&resume_body("20261202T100000Z-3f9a2c")),
            Message::Resume {
                run_id: "20261202T100000Z-3f9a2c".into()
            }
        );
        let mut bad: Value = serde_json::from_str(&decision.body()).unwrap();
        bad["verdict"] = json!("maybe");
        let Message::Malformed(why) = parse(&bad.to_string()) else {
            panic!("malformed")
        };
        assert!(why.contains("verdict") && !why.contains("maybe"), "{why}");
        bad["verdict"] = json!("deny");
        bad["run_id"] = json!("../../etc/passwd");
        assert!(
            matches!(parse(&bad.to_string()), Message::Malformed(why) if why.contains("run_id"))
        );
        let newer =
            json!({"firebreak": "resume", "version": 2, "run_id": "20261202T100000Z-3f9a2c"});
        assert!(
            matches!(parse(&newer.to_string()), Message::Malformed(why) if why.contains("version"))
        );
    }
}
