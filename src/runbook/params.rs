//! Parameter values: parsed from `-p key=value` (or rendered from an event by a trigger), typed,
//! checked against their pattern, defaults filled in; the template context a run starts with;
//! and what of them may be shown.

use indexmap::IndexMap;
use regex::Regex;
use serde_json::Value;

use super::model::{ParamType, Parameter, Runbook};
use crate::diagnostic::did_you_mean;
use crate::redact::{REDACTED, Redactor};
use crate::template::Templates;

/// Parameter values by name, in declaration order.
pub type ParamValues = IndexMap<String, Value>;

/// Splits `key=value` (for clap's value parser).
pub fn parse_assignment(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected key=value, found `{text}`")),
    }
}

/// Converts command-line text to the parameter's type. Lists are comma-separated.
pub fn coerce(name: &str, param: &Parameter, raw: &str) -> Result<Value, String> {
    match param.kind {
        ParamType::String => Ok(Value::String(raw.to_owned())),
        ParamType::Integer => raw.trim().parse::<i64>().map(Value::from).map_err(|_| {
            format!(
                "parameter `{name}` must be an integer, got `{}`",
                shown(param, raw)
            )
        }),
        ParamType::Boolean => match raw.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!(
                "parameter `{name}` must be true or false, got `{}`",
                shown(param, raw)
            )),
        },
        ParamType::List => Ok(Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        )),
    }
}

/// Checks a typed value against the parameter's type and pattern.
/// A list as command-line text (the form [`coerce`] reads back): strings as they are, other
/// values as JSON, comma-separated.
pub fn list_as_text(items: &[Value]) -> String {
    items
        .iter()
        .map(|i| {
            i.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| i.to_string())
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub fn check(name: &str, param: &Parameter, value: &Value) -> Result<(), String> {
    let type_ok = match (param.kind, value) {
        (ParamType::String, Value::String(_))
        | (ParamType::Integer, Value::Number(_))
        | (ParamType::Boolean, Value::Bool(_)) => true,
        (ParamType::List, Value::Array(items)) => items.iter().all(Value::is_string),
        _ => false,
    };
    if !type_ok {
        return Err(format!(
            "parameter `{name}` must be {}",
            param.kind.as_str()
        ));
    }
    let Some(pattern) = &param.pattern else {
        return Ok(());
    };
    let regex = Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| format!("parameter `{name}` has an invalid pattern: {e}"))?;
    let texts: Vec<String> = match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => vec![s.clone()],
        other => vec![other.to_string()],
    };
    for text in texts {
        if !regex.is_match(&text) {
            return Err(format!(
                "parameter `{name}` value `{}` does not match pattern `{pattern}`",
                shown(param, &text)
            ));
        }
    }
    Ok(())
}

/// A refused value as an error message shows it: redacted when sensitive; otherwise with
/// control characters escaped (an event's value must not drive the reader's terminal) and cut
/// to its first 80 characters.
fn shown(param: &Parameter, raw: &str) -> String {
    const SHOWN: usize = 80;
    if param.sensitive {
        return "[redacted]".to_owned();
    }
    let mut text: String = raw
        .chars()
        .take(SHOWN)
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    let total = raw.chars().count();
    if total > SHOWN {
        text.push_str(&format!("… ({total} characters)"));
    }
    text
}

/// Resolves every parameter: given values (typed and checked), then defaults (rendered with
/// the `run` context; with `run_context` `None`, as in a plan, a templated default stays as its
/// template text). Returns all problems at once.
pub fn resolve(
    runbook: &Runbook,
    given: &[(String, String)],
    run_context: Option<&Value>,
    engine: &Templates,
) -> Result<ParamValues, Vec<String>> {
    let mut errors = Vec::new();
    let mut values = ParamValues::new();
    let mut seen = std::collections::HashSet::new();
    for (name, raw) in given {
        if !seen.insert(name.clone()) {
            errors.push(format!("parameter `{name}` is given more than once"));
            continue;
        }
        let Some(param) = runbook.parameters.get(name) else {
            let mut message = format!("unknown parameter `{name}`");
            if let Some(help) = did_you_mean(name, runbook.parameters.keys().map(String::as_str)) {
                message += &format!("; {help}");
            } else if !runbook.parameters.is_empty() {
                let names: Vec<&str> = runbook.parameters.keys().map(String::as_str).collect();
                message += &format!("; this runbook takes {}", names.join(", "));
            }
            errors.push(message);
            continue;
        };
        match coerce(name, param, raw).and_then(|v| check(name, param, &v).map(|()| v)) {
            Ok(value) => {
                values.insert(name.clone(), value);
            }
            Err(e) => errors.push(e),
        }
    }
    let mut ordered = ParamValues::new();
    for (name, param) in &runbook.parameters {
        if let Some(value) = values.shift_remove(name) {
            ordered.insert(name.clone(), value);
            continue;
        }
        match &param.default {
            None => {
                let about = param
                    .description
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                errors.push(format!(
                    "missing required parameter `{name}`{about}; give it with -p {name}=..."
                ));
            }
            Some(Value::String(text))
                if run_context.is_none() && crate::template::is_template(text) =>
            {
                ordered.insert(name.clone(), Value::String(text.clone()));
            }
            Some(default) => match engine.render_tree(default, run_context.unwrap_or(&Value::Null))
            {
                Ok(value) => match check(name, param, &value) {
                    Ok(()) => {
                        ordered.insert(name.clone(), value);
                    }
                    Err(e) => errors.push(format!("default of {e}")),
                },
                Err(e) => errors.push(format!("default of parameter `{name}`: {e}")),
            },
        }
    }
    if errors.is_empty() {
        Ok(ordered)
    } else {
        Err(errors)
    }
}

/// The template context a run starts with: `params`, `steps` (empty), `event`, `run`.
pub fn base_context(params: &ParamValues, event: Option<&Value>, run: Value) -> Value {
    serde_json::json!({
        "params": params,
        "steps": {},
        "event": event.cloned().unwrap_or(Value::Null),
        "run": run,
    })
}

/// A redactor that knows the run's sensitive parameter values.
pub fn redactor(runbook: &Runbook, values: &ParamValues) -> Redactor {
    let mut redactor = Redactor::default();
    for (name, param) in &runbook.parameters {
        if param.sensitive
            && let Some(value) = values.get(name)
        {
            redactor.add_value(value);
        }
    }
    redactor
}

/// Parameters for display: sensitive ones replaced whole.
pub fn for_display(runbook: &Runbook, values: &ParamValues) -> ParamValues {
    values
        .iter()
        .map(|(name, value)| {
            let sensitive = runbook.parameters.get(name).is_some_and(|p| p.sensitive);
            let shown = if sensitive {
                Value::String(REDACTED.to_owned())
            } else {
                value.clone()
            };
            (name.clone(), shown)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::model_from_str as from_str;
    use serde_json::json;

    const RUNBOOK: &str = r#"
version: 1
name: params-test
parameters:
  instance_id: { type: string, pattern: "^i-[0-9a-f]{8,17}$" }
  ids: { type: list, pattern: "^i-[0-9a-f]+$", default: [] }
  count: { type: integer, default: 2 }
  force: { type: boolean, default: false }
  case_id: { type: string, default: "case-{{run.id}}" }
  token: { type: string, sensitive: true, default: "x", pattern: "^[a-z]+$" }
steps:
  - { id: hello, action: core.log, with: { message: hi } }
"#;

    fn run() -> Value {
        json!({"run": {"id": "r1", "mode": "plan", "started_at": "t"}})
    }

    fn given(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn types_lists_and_defaults() {
        let runbook = from_str(RUNBOOK);
        let values = resolve(
            &runbook,
            &given(&[
                ("instance_id", "i-0123456789abcdef0"),
                ("ids", "i-1, i-2,"),
                ("count", "5"),
            ]),
            Some(&run()),
            &Templates::new(),
        )
        .unwrap();
        assert_eq!(values["ids"], json!(["i-1", "i-2"]));
        assert_eq!(values["count"], json!(5));
        assert_eq!(values["force"], json!(false));
        assert_eq!(values["case_id"], json!("case-r1"));
        let order: Vec<&str> = values.keys().map(String::as_str).collect();
        assert_eq!(
            order,
            ["instance_id", "ids", "count", "force", "case_id", "token"]
        );
    }

    #[test]
    fn reports_every_problem_and_hides_sensitive_values() {
        let runbook = from_str(RUNBOOK);
        let errors = resolve(
            &runbook,
            &given(&[
                ("instance", "i-1"),
                ("count", "many"),
                ("force", "yes"),
                ("token", "S3CRET"),
            ]),
            Some(&run()),
            &Templates::new(),
        )
        .unwrap_err();
        let text = errors.join("\n");
        assert!(
            text.contains("unknown parameter `instance`; did you mean `instance_id`?"),
            "{text}"
        );
        assert!(
            text.contains("`count` must be an integer, got `many`"),
            "{text}"
        );
        assert!(text.contains("`force` must be true or false"), "{text}");
        assert!(
            text.contains("missing required parameter `instance_id`"),
            "{text}"
        );
        assert!(
            text.contains("`token` value `[redacted]` does not match"),
            "{text}"
        );
        assert!(!text.contains("S3CRET"), "{text}");
        assert_eq!(errors.len(), 5);
    }

    #[test]
    fn pattern_is_anchored() {
        let runbook = from_str(RUNBOOK);
        let errors = resolve(
            &runbook,
            &given(&[("instance_id", "i-0123456789abcdef0; rm -rf /")]),
            Some(&run()),
            &Templates::new(),
        )
        .unwrap_err();
        assert!(errors[0].contains("does not match pattern"), "{errors:?}");
    }

    #[test]
    fn assignments() {
        assert_eq!(parse_assignment("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_assignment("a="), Ok(("a".into(), "".into())));
        assert!(parse_assignment("novalue").is_err());
        assert!(parse_assignment("=x").is_err());
    }
}

#[cfg(test)]
mod shown_tests {
    use super::*;

    #[test]
    fn a_refused_value_is_escaped_and_cut() {
        let param: Parameter =
            serde_json::from_value(serde_json::json!({"type": "string"})).unwrap();
        assert_eq!(shown(&param, "i-1\n\u{1b}[2J\0"), "i-1\\n\\u{1b}[2J\\u{0}");
        let long = "a".repeat(10_000);
        assert_eq!(
            shown(&param, &long),
            format!("{}… (10000 characters)", "a".repeat(80))
        );
    }
}
