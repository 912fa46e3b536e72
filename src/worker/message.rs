//! What a queue message is. EventBridge delivers the event itself as the body; anything else
//! is malformed: logged by id (never its body, which may hold secrets) and left to come back
//! until the redrive policy moves it to the dead-letter queue.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// An EventBridge event, for `dispatch`'s code.
    Event(Value),
    /// Not something a worker can act on, and why (no part of the body).
    Malformed(String),
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
    let is_event = value.is_object()
        && value["source"].is_string()
        && value["detail-type"].is_string()
        && value["detail"].is_object();
    if is_event {
        Message::Event(value)
    } else {
        Message::Malformed(
            "JSON, but not an EventBridge event (source, detail-type, detail)".into(),
        )
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
}
