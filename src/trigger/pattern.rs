//! EventBridge event-pattern matching, following the documented semantics: every field of the
//! pattern must match (AND); a list of values matches if any does (OR); nested objects match
//! nested fields; an event array matches if any of its elements does; content filters
//! (`prefix`, `suffix`, `equals-ignore-case`, `anything-but`, `numeric`, `exists`, `wildcard`,
//! `cidr`) and `$or` work as EventBridge documents them.
//!
//! Patterns are checked for shape by [`super::check`] before they are used here; a malformed
//! part simply does not match.

use serde_json::{Map, Value};

/// Whether `event` matches `pattern`.
pub fn matches(pattern: &Value, event: &Value) -> bool {
    match pattern {
        Value::Object(fields) => object_matches(fields, event),
        _ => false,
    }
}

fn object_matches(pattern: &Map<String, Value>, event: &Value) -> bool {
    pattern.iter().all(|(key, expected)| {
        if key == "$or" {
            return expected
                .as_array()
                .is_some_and(|alternatives| alternatives.iter().any(|alt| matches(alt, event)));
        }
        let actual = event.get(key);
        match expected {
            // An array of objects in the event matches when one of its elements does (ASFF's
            // `findings` and `Resources` are lists).
            Value::Object(nested) => actual.is_some_and(|a| match a {
                Value::Array(items) => items.iter().any(|item| object_matches(nested, item)),
                single => object_matches(nested, single),
            }),
            Value::Array(rules) => rules.iter().any(|rule| rule_matches(rule, actual)),
            _ => false,
        }
    })
}

/// One element of a pattern's value list against the event's field (absent: `None`).
fn rule_matches(rule: &Value, actual: Option<&Value>) -> bool {
    if let Value::Object(filter) = rule {
        return filter_matches(filter, actual);
    }
    let Some(actual) = actual else { return false };
    any_value(actual, |value| literal_eq(rule, value))
}

/// Applies `test` to the value, or to each element when the event has an array there.
fn any_value(actual: &Value, test: impl Fn(&Value) -> bool) -> bool {
    match actual {
        Value::Array(items) => items.iter().any(&test),
        other => test(other),
    }
}

fn literal_eq(rule: &Value, value: &Value) -> bool {
    match (rule, value) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => rule == value,
    }
}

fn filter_matches(filter: &Map<String, Value>, actual: Option<&Value>) -> bool {
    let Some((name, operand)) = filter.iter().next() else {
        return false;
    };
    if name == "exists" {
        // Exists matching works on leaf nodes only (EventBridge: not on intermediate nodes):
        // a field that holds an object, or only objects, or nothing, counts as absent.
        let present = actual.is_some_and(is_leaf);
        return operand.as_bool() == Some(present);
    }
    let Some(actual) = actual else { return false };
    match name.as_str() {
        "prefix" => any_value(actual, |v| {
            string_filter(operand, v, |s, p| s.starts_with(p))
        }),
        "suffix" => any_value(actual, |v| string_filter(operand, v, |s, p| s.ends_with(p))),
        "equals-ignore-case" => any_value(
            actual,
            |v| matches!((operand, v), (Value::String(p), Value::String(s)) if s.to_lowercase() == p.to_lowercase()),
        ),
        "wildcard" => any_value(
            actual,
            |v| matches!((operand, v), (Value::String(p), Value::String(s)) if wildcard(p, s)),
        ),
        "numeric" => any_value(actual, |v| v.as_f64().is_some_and(|n| numeric(operand, n))),
        "cidr" => any_value(
            actual,
            |v| matches!((operand, v), (Value::String(c), Value::String(ip)) if cidr_contains(c, ip)),
        ),
        "anything-but" => anything_but(operand, actual),
        _ => false,
    }
}

fn is_leaf(value: &Value) -> bool {
    match value {
        Value::Object(_) => false,
        Value::Array(items) => items.iter().any(|item| !item.is_object()),
        _ => true,
    }
}

/// `prefix`/`suffix` take a string, or `{"equals-ignore-case": "..."}`.
fn string_filter(operand: &Value, value: &Value, test: fn(&str, &str) -> bool) -> bool {
    let Value::String(s) = value else {
        return false;
    };
    match operand {
        Value::String(p) => test(s, p),
        Value::Object(inner) => match inner.get("equals-ignore-case") {
            Some(Value::String(p)) => test(&s.to_lowercase(), &p.to_lowercase()),
            _ => false,
        },
        _ => false,
    }
}

/// `anything-but`: a value, a list of values, or a `prefix`/`suffix`/`equals-ignore-case`
/// filter; true when no element of the event's value is excluded.
fn anything_but(operand: &Value, actual: &Value) -> bool {
    let excluded = |value: &Value| -> bool {
        match operand {
            Value::Array(list) => list.iter().any(|x| literal_eq(x, value)),
            Value::Object(inner) => match inner.iter().next() {
                Some((name, p)) => match name.as_str() {
                    "prefix" => string_filter(p, value, |s, p| s.starts_with(p)),
                    "suffix" => string_filter(p, value, |s, p| s.ends_with(p)),
                    "equals-ignore-case" => match (p, value) {
                        (Value::String(p), Value::String(s)) => {
                            s.to_lowercase() == p.to_lowercase()
                        }
                        (Value::Array(ps), Value::String(s)) => ps
                            .iter()
                            .filter_map(Value::as_str)
                            .any(|p| s.to_lowercase() == p.to_lowercase()),
                        _ => false,
                    },
                    "wildcard" => {
                        matches!((p, value), (Value::String(p), Value::String(s)) if wildcard(p, s))
                    }
                    _ => false,
                },
                None => false,
            },
            single => literal_eq(single, value),
        }
    };
    match actual {
        Value::Array(items) => !items.is_empty() && !items.iter().any(excluded),
        value => !excluded(value),
    }
}

/// `numeric: [">", 0, "<=", 5]`: every comparison holds.
fn numeric(operand: &Value, n: f64) -> bool {
    let Some(parts) = operand.as_array() else {
        return false;
    };
    parts.chunks(2).all(|pair| match pair {
        [Value::String(op), bound] => bound.as_f64().is_some_and(|b| match op.as_str() {
            "=" => n == b,
            ">" => n > b,
            ">=" => n >= b,
            "<" => n < b,
            "<=" => n <= b,
            _ => false,
        }),
        _ => false,
    })
}

/// `*` matches any run of characters (`\*` is a literal star).
fn wildcard(pattern: &str, text: &str) -> bool {
    let mut parts: Vec<String> = vec![String::new()];
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'*') => {
                chars.next();
                parts.last_mut().expect("one part").push('*');
            }
            '*' => parts.push(String::new()),
            other => parts.last_mut().expect("one part").push(other),
        }
    }
    let (first, rest) = parts.split_first().expect("one part");
    let Some(mut remaining) = text.strip_prefix(first.as_str()) else {
        return false;
    };
    if rest.is_empty() {
        return remaining.is_empty();
    }
    let (last, middle) = rest.split_last().expect("non-empty");
    for part in middle {
        match remaining.find(part.as_str()) {
            Some(i) => remaining = &remaining[i + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last.as_str())
}

fn cidr_contains(cidr: &str, ip: &str) -> bool {
    let Some((network, bits)) = cidr.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u32>() else {
        return false;
    };
    match (
        network.parse::<std::net::IpAddr>(),
        ip.parse::<std::net::IpAddr>(),
    ) {
        (Ok(std::net::IpAddr::V4(n)), Ok(std::net::IpAddr::V4(a))) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (Ok(std::net::IpAddr::V6(n)), Ok(std::net::IpAddr::V6(a))) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({
            "source": "aws.guardduty",
            "detail-type": "GuardDuty Finding",
            "account": "123456789012",
            "detail": {
                "type": "UnauthorizedAccess:EC2/SSHBruteForce",
                "severity": 8.0,
                "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0abc"}},
                "tags": ["prod", "web"],
                "ip": "10.0.1.5",
                "nothing": null,
                "findings": [{"Resources": [{"Type": "AwsS3Bucket"}, {"Type": "AwsEc2Instance"}]}]
            }
        })
    }

    #[test]
    fn table() {
        let cases: &[(Value, bool)] = &[
            (json!({"source": ["aws.guardduty"]}), true),
            (json!({"source": ["aws.securityhub"]}), false),
            (
                json!({"source": ["aws.securityhub", "aws.guardduty"]}),
                true,
            ),
            (
                json!({"detail": {"resource": {"resourceType": ["Instance"]}}}),
                true,
            ),
            (
                json!({"detail": {"resource": {"resourceType": ["AccessKey"]}}}),
                false,
            ),
            (
                json!({"detail": {"type": [{"prefix": "UnauthorizedAccess:EC2/"}]}}),
                true,
            ),
            (
                json!({"detail": {"type": [{"prefix": {"equals-ignore-case": "unauthorizedaccess:ec2/"}}]}}),
                true,
            ),
            (
                json!({"detail": {"type": [{"suffix": "BruteForce"}]}}),
                true,
            ),
            (
                json!({"detail-type": [{"equals-ignore-case": "guardduty finding"}]}),
                true,
            ),
            (
                json!({"detail": {"severity": [{"numeric": [">=", 7]}]}}),
                true,
            ),
            (
                json!({"detail": {"severity": [{"numeric": [">", 0, "<", 7]}]}}),
                false,
            ),
            (json!({"detail": {"severity": [8]}}), true),
            (json!({"detail": {"tags": ["web"]}}), true),
            (json!({"detail": {"tags": ["dev"]}}), false),
            (json!({"detail": {"tags": [{"anything-but": "dev"}]}}), true),
            (
                json!({"detail": {"tags": [{"anything-but": ["prod"]}]}}),
                false,
            ),
            (json!({"account": [{"anything-but": "111122223333"}]}), true),
            (
                json!({"detail": {"type": [{"anything-but": {"prefix": "Recon:"}}]}}),
                true,
            ),
            (
                json!({"detail": {"type": [{"anything-but": {"prefix": "Unauth"}}]}}),
                false,
            ),
            (json!({"detail": {"missing": [{"exists": false}]}}), true),
            (json!({"detail": {"type": [{"exists": true}]}}), true),
            (json!({"detail": {"missing": [{"exists": true}]}}), false),
            // Leaf nodes only: an object is not there for `exists`.
            (json!({"detail": {"resource": [{"exists": false}]}}), true),
            (json!({"detail": {"resource": [{"exists": true}]}}), false),
            (
                json!({"detail": {"missing": [{"anything-but": "x"}]}}),
                false,
            ),
            (json!({"detail": {"nothing": [null]}}), true),
            (
                json!({"detail": {"type": [{"wildcard": "Unauthorized*:EC2/*Force"}]}}),
                true,
            ),
            (
                json!({"detail": {"type": [{"wildcard": "*Backdoor*"}]}}),
                false,
            ),
            (json!({"detail": {"ip": [{"cidr": "10.0.0.0/16"}]}}), true),
            (
                json!({"detail": {"ip": [{"cidr": "192.168.0.0/16"}]}}),
                false,
            ),
            (
                json!({"$or": [{"source": ["aws.securityhub"]}, {"detail": {"severity": [{"numeric": [">", 5]}]}}]}),
                true,
            ),
            (
                json!({"source": ["aws.guardduty"], "$or": [{"account": ["1"]}, {"account": ["2"]}]}),
                false,
            ),
            (json!({"detail": {"resource": ["Instance"]}}), false),
            (
                json!({"detail": {"findings": {"Resources": {"Type": ["AwsEc2Instance"]}}}}),
                true,
            ),
            (
                json!({"detail": {"findings": {"Resources": {"Type": ["AwsIamAccessKey"]}}}}),
                false,
            ),
        ];
        for (pattern, expected) in cases {
            assert_eq!(matches(pattern, &event()), *expected, "{pattern}");
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("a*", "abc"));
        assert!(wildcard("*c", "abc"));
        assert!(wildcard("a*c", "ac"));
        assert!(!wildcard("a*c", "ab"));
        assert!(wildcard("a\\*b", "a*b"));
        assert!(!wildcard("a\\*b", "axb"));
        assert!(wildcard("*", ""));
    }
}
