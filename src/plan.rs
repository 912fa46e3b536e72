//! The plan: a runbook with its parameters, rendered as far as possible before run time.
//! Pure and offline — no credentials, no network. `plan` prints it as a tabletop script;
//! the engine and drills use the same resolution.

use serde::Serialize;
use serde_json::{Value, json};

use crate::actions::{self, RunUses};
use crate::check::LoadedRunbook;
use crate::runbook::model::{GROUP_ACTION, qualified_id};
use crate::runbook::params::{self, ParamValues, base_context};
use crate::runbook::{OnFailure, duration};
use crate::template::{self, Templates};

#[derive(Debug, Serialize)]
pub struct Plan {
    pub runbook: String,
    pub description: Option<String>,
    pub path: String,
    pub sha256: String,
    /// Parameter values, sensitive ones redacted.
    pub parameters: ParamValues,
    pub steps: Vec<PlannedStep>,
    /// The AWS calls the engine makes itself for this run (identity, interlocks, notifications,
    /// the drill's preflight, an assumed role).
    pub engine_calls: Vec<String>,
    /// Every IAM permission the plan needs, sorted.
    pub permissions: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PlannedStep {
    pub number: usize,
    /// A group's inner step is `<group>.<inner>`.
    pub id: String,
    /// The group step it runs in, once per item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
    pub action: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The rendered input; values that depend on earlier steps stay as their template.
    pub input: Value,
    /// The `when` condition: its rendered value, or the template when it depends on a step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub for_each: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    pub attempts: u32,
    pub on_failure: OnFailure,
    /// Set for decision points: what the operator is asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    pub calls: Vec<String>,
    pub permissions: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{}", .0.join("\n"))]
    Params(Vec<String>),
    #[error("step `{step}`: {message}")]
    Render { step: String, message: String },
}

/// The plan of `loaded` with these parameters (and event); `uses` says how it will run (a drill,
/// an assumed role), which decides the engine's own calls among the permissions.
pub fn build(
    loaded: &LoadedRunbook,
    given: &[(String, String)],
    event: Option<&Value>,
    uses: RunUses,
) -> Result<Plan, PlanError> {
    let runbook = &loaded.runbook;
    let engine = Templates::new();
    let values = params::resolve(runbook, given, None, &engine).map_err(PlanError::Params)?;
    let redactor = params::redactor(runbook, &values);
    let context = base_context(&values, event, json!({"mode": "plan"}));
    // What cannot be known before the run: step outputs, the item of a fan-out, the run's id
    // and start, and the event when none was given.
    let mut deferred = vec!["steps", "item", "run"];
    if event.is_none() {
        deferred.push("event");
    }
    let render = |step: &str, value: &Value| -> Result<Value, PlanError> {
        render_partial(&engine, value, &context, &deferred).map_err(|message| PlanError::Render {
            step: step.to_owned(),
            message: redactor.redact(&message),
        })
    };

    let mut steps = Vec::new();
    // The engine's own calls (caller identity, interlocks, notifications, preflight) are part
    // of what a run needs.
    let engine_calls: Vec<String> = actions::engine_calls(runbook, uses)
        .iter()
        .map(|c| c.permission().to_owned())
        .collect();
    let mut all_permissions: std::collections::BTreeSet<String> =
        engine_calls.iter().cloned().collect();
    // A group is listed, then its inner steps (as `<group>.<inner>`), numbered on.
    let mut listed: Vec<(String, Option<&str>, &crate::runbook::Step)> = Vec::new();
    for step in &runbook.steps {
        listed.push((step.id.clone(), None, step));
        for inner in step.steps.iter().flatten() {
            listed.push((qualified_id(&step.id, &inner.id), Some(&step.id), inner));
        }
    }
    for (index, (id, within, step)) in listed.into_iter().enumerate() {
        let what = What::of(step);
        let input = render(&id, &serde_json::to_value(&step.input).unwrap_or_default())?;
        let when = step
            .when
            .as_ref()
            .map(|w| render(&id, &Value::String(w.clone())))
            .transpose()?;
        let for_each = step.for_each.as_ref().map(|f| render(&id, f)).transpose()?;
        let decision = what.decision.then(|| {
            input
                .get("prompt")
                .and_then(Value::as_str)
                .unwrap_or("approve?")
                .to_owned()
        });
        all_permissions.extend(what.permissions.iter().map(|p| p.to_string()));
        steps.push(PlannedStep {
            number: index + 1,
            id,
            within: within.map(str::to_owned),
            action: what.action,
            summary: what.summary,
            description: step.description.clone(),
            input: redactor.redact_value(&input),
            when: when.map(|w| redactor.redact_value(&w)),
            for_each: for_each.map(|f| redactor.redact_value(&f)),
            concurrency: step.for_each.as_ref().map(|_| {
                step.concurrency
                    .unwrap_or(crate::runbook::model::DEFAULT_CONCURRENCY)
            }),
            timeout: step
                .timeout
                .as_deref()
                .and_then(|t| duration::parse(t).ok())
                .map(duration::format),
            attempts: step.retry.as_ref().map_or(1, |r| r.attempts),
            on_failure: step.on_failure,
            decision: decision.map(|d| redactor.redact(&d)),
            calls: what.calls.iter().map(|c| c.to_string()).collect(),
            permissions: what.permissions.iter().map(|p| p.to_string()).collect(),
        });
    }
    Ok(Plan {
        runbook: runbook.name.clone(),
        description: runbook.description.clone(),
        path: loaded.path.display().to_string(),
        sha256: loaded.sha256.clone(),
        parameters: params::for_display(runbook, &values),
        steps,
        engine_calls,
        permissions: all_permissions.into_iter().collect(),
    })
}

/// What a plan says a step does: its action's declarations, or for a group what it runs.
struct What {
    action: String,
    summary: String,
    decision: bool,
    calls: &'static [&'static str],
    permissions: &'static [&'static str],
}

impl What {
    fn of(step: &crate::runbook::Step) -> What {
        if let Some(inner) = &step.steps {
            let names: Vec<&str> = inner.iter().map(|s| s.id.as_str()).collect();
            return What {
                action: GROUP_ACTION.to_owned(),
                summary: format!("For each item, in order: {}.", names.join(", ")),
                decision: false,
                calls: &[],
                permissions: &[],
            };
        }
        let info = actions::find(&step.action).expect("validated runbooks name known actions");
        What {
            action: step.action.clone(),
            summary: info.summary.to_owned(),
            decision: info.decision,
            calls: info.calls,
            permissions: info.permissions,
        }
    }
}

/// Renders what can be rendered; a string that reads a deferred root stays as written.
fn render_partial(
    engine: &Templates,
    value: &Value,
    context: &Value,
    deferred: &[&str],
) -> Result<Value, String> {
    Ok(match value {
        Value::String(text) if template::is_template(text) => {
            let analysis = template::analyze(text).map_err(|e| e.to_string())?;
            let reads_deferred =
                |a: &template::Analysis| a.references.iter().any(|r| deferred.contains(&r.root()));
            if !reads_deferred(&analysis) {
                engine
                    .render_value(text, context)
                    .map_err(|e| e.to_string())?
            } else if analysis.single_path.is_some() || text.contains("{{#") {
                value.clone()
            } else {
                // Mixed text: render each `{{…}}` that can be rendered, keep the others.
                let mut out = String::new();
                let mut rest = text.as_str();
                while let Some(start) = rest.find("{{") {
                    let Some(len) = rest[start..].find("}}").map(|i| i + 2) else {
                        break;
                    };
                    out.push_str(&rest[..start]);
                    let token = &rest[start..start + len];
                    let token_analysis = template::analyze(token).map_err(|e| e.to_string())?;
                    if reads_deferred(&token_analysis) {
                        out.push_str(token);
                    } else {
                        out.push_str(
                            &engine
                                .render_string(token, context)
                                .map_err(|e| e.to_string())?,
                        );
                    }
                    rest = &rest[start + len..];
                }
                out.push_str(rest);
                Value::String(out)
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_partial(engine, v, context, deferred))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_partial(engine, v, context, deferred)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}
