//! Keeping secrets out of everything firebreak prints or writes. A [`Redactor`] knows the
//! secret values of a run (sensitive parameters, and values actions mark secret) and replaces
//! them wherever they appear, including inside rendered templates.

use serde_json::Value;

pub const REDACTED: &str = "[redacted]";

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
            if out.contains(secret.as_str()) {
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
                // a short secret cannot mangle them.
                map.iter()
                    .map(|(k, v)| (k.clone(), self.redact_value(v)))
                    .collect(),
            ),
            Value::Number(n) if self.secrets.iter().any(|s| *s == n.to_string()) => {
                Value::String(REDACTED.to_owned())
            }
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
        r.add("hunter2");
        r.add("hunter2-long");
        assert_eq!(
            r.redact("a hunter2-long b hunter2"),
            "a [redacted] b [redacted]"
        );
        assert_eq!(
            r.redact_value(&json!({"k": ["x hunter2"], "hunter2": 1})),
            json!({"k": ["x [redacted]"], "hunter2": 1})
        );
    }
}
