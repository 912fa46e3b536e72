//! Keeping secrets out of everything firebreak prints or writes. A [`Redactor`] knows the
//! secret values of a run (sensitive parameters, and values actions mark secret) and replaces
//! them wherever they appear, including inside rendered templates.
//!
//! A secret shorter than [`MIN_SUBSTRING`] is only replaced where it is a whole value: replacing
//! `"unset"` or `"1"` inside every string would rewrite instance ids, step outputs and counts
//! the journal is read back by (resume, release), and would tell a reader the secret's value by
//! where it was cut. Numbers and booleans are structure (indexes, counts, attempts), and so are
//! the envelope fields that say what a record is about: neither is ever rewritten.

use serde_json::Value;

pub const REDACTED: &str = "[redacted]";

/// Secrets at least this long are replaced wherever they appear inside a string; shorter ones
/// only as whole values.
pub const MIN_SUBSTRING: usize = 8;

/// Fields the engine writes about a record itself, never data a secret can be in.
const STRUCTURAL: &[&str] = &[
    "type",
    "step",
    "action",
    "run_id",
    "item_index",
    "attempt",
    "service",
    "operation",
    "idempotency_key",
    "status",
    "mode",
    "check",
];

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is replaced whole.
    secrets: Vec<String>,
}

impl Redactor {
    pub fn add(&mut self, secret: &str) {
        if secret.is_empty() || self.secrets.iter().any(|s| s == secret) {
            return;
        }
        self.secrets.push(secret.to_owned());
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    pub fn add_value(&mut self, value: &Value) {
        match value {
            Value::String(s) => self.add(s),
            Value::Array(items) => items.iter().for_each(|v| self.add_value(v)),
            Value::Object(map) => map.values().for_each(|v| self.add_value(v)),
            Value::Number(n) => self.add(&n.to_string()),
            Value::Bool(_) | Value::Null => {}
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if secret.len() < MIN_SUBSTRING {
                if out == *secret {
                    return REDACTED.to_owned();
                }
            } else if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }

    pub fn redact_value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.redact(s)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.redact_value(v)).collect())
            }
            Value::Object(map) => Value::Object(
                // Keys are structure (parameter and field names), not data: left as they are so
                // a short secret cannot mangle them; so are the structural fields' values.
                map.iter()
                    .map(|(k, v)| {
                        let value = if STRUCTURAL.contains(&k.as_str()) {
                            v.clone()
                        } else {
                            self.redact_value(v)
                        };
                        (k.clone(), value)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replaces_secrets_everywhere() {
        let mut r = Redactor::default();
        r.add("hunter22");
        r.add("hunter22-long");
        assert_eq!(
            r.redact("a hunter22-long b hunter22"),
            "a [redacted] b [redacted]"
        );
        assert_eq!(
            r.redact_value(&json!({"k": ["x hunter22-long"], "hunter22-long": 1})),
            json!({"k": ["x [redacted]"], "hunter22-long": 1})
        );
    }

    /// M11: a short secret (the kickoff's `pager_token: unset`, a PIN `1`) is replaced only
    /// where it is the whole value: ids, outputs and counts that contain it stay readable.
    #[test]
    fn short_secrets_only_as_whole_values_and_structure_never() {
        let mut r = Redactor::default();
        r.add("unset");
        r.add("1");
        r.add("hunter2");
        let record = json!({
            "step": "unset",
            "item_index": 1,
            "attempt": 1,
            "input": {"instance_id": "i-01unset1", "token": "unset", "pin": "1", "n": 1},
            "message": "the token hunter2 was unset",
        });
        assert_eq!(
            r.redact_value(&record),
            json!({
                "step": "unset",
                "item_index": 1,
                "attempt": 1,
                "input": {"instance_id": "i-01unset1", "token": "[redacted]", "pin": "[redacted]", "n": 1},
                "message": "the token hunter2 was unset",
            })
        );
        assert_eq!(r.redact("hunter2"), "[redacted]");
    }
}
