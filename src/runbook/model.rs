//! The runbook format, version 1, as typed Rust. The JSON Schema that `firebreak schema`
//! prints is derived from these types, and the loader checks documents against that schema
//! before they are converted into them, so the types and the schema cannot drift apart.

use indexmap::IndexMap;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The JSON Schema (draft-07) of the model as schemars derives it: what the loader checks a
/// document's structure against. `firebreak schema` adds each action's input to it.
pub fn structure_schema() -> Value {
    let schema = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<Runbook>();
    serde_json::to_value(schema).expect("a schema is JSON")
}

/// A declarative incident-response runbook.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    /// Format version; this firebreak reads version 1.
    pub version: u32,
    /// Short machine-friendly name, e.g. `ec2-instance-compromise`.
    pub name: String,
    /// What the runbook is for, shown by `plan` and in reports.
    #[serde(default)]
    pub description: Option<String>,
    /// Inputs of the runbook, given with `-p key=value` or extracted from an event.
    #[serde(default)]
    pub parameters: IndexMap<String, Parameter>,
    /// Event matching for automatic containment (`firebreak dispatch`).
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    /// Safety interlocks.
    #[serde(default)]
    pub limits: Limits,
    /// Publish a short summary of the run to an SNS topic (never secrets).
    #[serde(default)]
    pub notify: Option<Notify>,
    /// The steps, run in order.
    pub steps: Vec<Step>,
    /// The steps a recheck runs: when a finding joins a case whose run already finished (within
    /// the trigger's `case_window`), a short new run re-verifies the containment with these
    /// (each idempotent: it changes only what drifted); every other step is skipped, and the
    /// case's approvals stand as they were decided. Required with a trigger's `case_key`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recheck: Vec<String>,
}

impl Runbook {
    /// Whether one of its triggers takes events from `source` (`aws.securityhub`): the
    /// pattern's `source` names it, as a string or among a list's strings.
    pub fn triggered_by(&self, source: &str) -> bool {
        self.triggers.iter().any(|t| match &t.pattern["source"] {
            serde_json::Value::String(s) => s == source,
            serde_json::Value::Array(items) => items.iter().any(|i| i.as_str() == Some(source)),
            _ => false,
        })
    }

    /// Every step that runs an action, a group's inner steps in its place, in runbook order.
    pub fn action_steps(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().flat_map(Step::actions)
    }

    /// [`Runbook::action_steps`] with the id each is journaled under: a group's inner step as
    /// `<group>.<inner>`.
    pub fn qualified_action_steps(&self) -> Vec<(String, &Step)> {
        let mut out = Vec::new();
        for step in &self.steps {
            match &step.steps {
                Some(inner) => out.extend(inner.iter().map(|s| (qualified_id(&step.id, &s.id), s))),
                None => out.push((step.id.clone(), step)),
            }
        }
        out
    }

    /// The parameters its steps read (in inputs, `for_each` and `when`): what a run acts on
    /// comes from these.
    pub fn used_parameters(&self) -> std::collections::BTreeSet<String> {
        let mut used = std::collections::BTreeSet::new();
        for step in self
            .steps
            .iter()
            .flat_map(|s| std::iter::once(s).chain(s.steps.iter().flatten()))
        {
            let mut strings = Vec::new();
            collect_strings(
                &serde_json::to_value(&step.input).unwrap_or_default(),
                &mut strings,
            );
            if let Some(for_each) = &step.for_each {
                collect_strings(for_each, &mut strings);
            }
            strings.extend(step.when.iter().cloned());
            for text in strings {
                if let Ok(analysis) = crate::template::analyze(&text) {
                    for reference in analysis.references {
                        if reference.root() == "params"
                            && let Some(name) = reference.segments.get(1)
                        {
                            used.insert(name.clone());
                        }
                    }
                }
            }
        }
        used
    }
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// When an EventBridge event should start this runbook, and with which parameters.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Unique within the runbook, e.g. `guardduty-ec2`.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// An EventBridge event pattern (the same JSON a rule uses), written as YAML.
    pub pattern: Value,
    /// Parameter values taken from the event: templates over `event.*`, validated like
    /// command-line parameters.
    #[serde(default)]
    pub parameters: IndexMap<String, String>,
    /// What makes two deliveries the same finding (a template over `event.*`; default: the
    /// finding id, `event.detail.id`, else the event's `id`).
    #[serde(default)]
    pub dedupe_key: Option<String>,
    /// What makes two findings one case (a template over `event.*`, e.g. the instance id; the
    /// account and region are added). A new finding of a case that is running or waiting joins
    /// it (no second containment); of a case finished within `case_window`, it starts a recheck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_key: Option<String>,
    /// How long after a case opens later findings still join it, e.g. `24h` (default `24h`,
    /// at most `24h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_window: Option<String>,
    /// Security Hub findings only: mark the finding `NOTIFIED` with a note when the run starts
    /// and add a note with the outcome when it ends (`BatchUpdateFindings`). Never `RESOLVED`.
    /// The pattern must match only `Workflow.Status: NEW`, or firebreak's own update would
    /// trigger it again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub update_finding: bool,
}

/// Run notifications.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// The topic (a template: `{{params.…}}` and `{{event.…}}` work).
    pub topic_arn: String,
    /// When to publish (default: every one of them).
    #[serde(default = "all_notify_events")]
    pub on: Vec<NotifyEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotifyEvent {
    Started,
    Succeeded,
    Failed,
    Refused,
    Interrupted,
    /// The run parked at an approval: the message carries the `approve` / `deny` command lines
    /// and the deadline.
    #[serde(rename = "awaiting_approval")]
    AwaitingApproval,
}

fn all_notify_events() -> Vec<NotifyEvent> {
    vec![
        NotifyEvent::Started,
        NotifyEvent::Succeeded,
        NotifyEvent::Failed,
        NotifyEvent::Refused,
        NotifyEvent::Interrupted,
        NotifyEvent::AwaitingApproval,
    ]
}

/// The type of a parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Integer,
    Boolean,
    /// A list of strings; on the command line `-p ids=a,b,c`.
    List,
}

impl ParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Boolean => "boolean",
            ParamType::List => "list",
        }
    }
}

/// One runbook input.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// Regular expression every value (every element, for lists) must match in full.
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Makes the parameter optional. May be a template over `run.*`, e.g. `{{run.id}}`.
    #[serde(default)]
    pub default: Option<Value>,
    /// Never printed, journaled or logged.
    #[serde(default)]
    pub sensitive: bool,
}

impl Parameter {
    pub fn required(&self) -> bool {
        self.default.is_none()
    }
}

/// Safety interlocks, enforced before any change.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The most distinct target resources one run may act on.
    #[serde(default = "default_max_targets")]
    #[schemars(range(min = 1))]
    pub max_targets: u32,
    /// The most `run --max-targets N` may raise `max_targets` to (an operator's deliberate
    /// choice, journaled); absent, the limit can only be lowered. `dispatch` never raises it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_targets_hard: Option<u32>,
    /// Targets carrying one of these tag keys are refused.
    #[serde(default = "default_protected_tags")]
    pub protected_tags: Vec<String>,
}

fn default_max_targets() -> u32 {
    10
}

fn default_protected_tags() -> Vec<String> {
    vec!["firebreak:protected".to_string()]
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_targets: default_max_targets(),
            max_targets_hard: None,
            protected_tags: default_protected_tags(),
        }
    }
}

/// What happens to the run when a step fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Stop the run; later steps do not run.
    #[default]
    Abort,
    /// Record the failure and go on; the run still ends `failed`.
    Continue,
}

/// Retry policy; only throttling, transient and timeout errors are retried.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Total attempts, including the first.
    #[schemars(range(min = 1, max = 20))]
    pub attempts: u32,
}

/// One step of a runbook.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unique within the runbook; later steps refer to it as `steps.<id>.outputs`.
    pub id: String,
    /// The action to run, e.g. `ec2.isolate_instance`. A group step (with nested `steps`) has
    /// none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub action: String,
    /// Free text shown by `plan` and in reports.
    #[serde(default)]
    pub description: Option<String>,
    /// The action's input; strings may be templates.
    #[serde(default, rename = "with")]
    pub input: IndexMap<String, Value>,
    /// Run the step only when this template renders truthy.
    #[serde(default)]
    pub when: Option<String>,
    /// Fan out over a list: a template (`{{params.instance_ids}}`) or a literal list.
    #[serde(default)]
    pub for_each: Option<Value>,
    /// Items in flight at once for `for_each` (default 10).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub concurrency: Option<u32>,
    /// Bound on the whole step including waits, e.g. `30s`, `10m`, `2h`.
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub retry: Option<Retry>,
    #[serde(default)]
    pub on_failure: OnFailure,
    /// A group step: with `for_each`, these steps run in order for each item independently,
    /// every item under the one `concurrency` bound. Inside, `{{item}}` is the item and
    /// `steps.<inner>` the current item's; after it, `steps.<group>.outputs` lists each item's
    /// `{item, status, outputs: {<inner>: …}}` in item order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Step>>,
}

impl Step {
    pub fn is_group(&self) -> bool {
        self.steps.is_some()
    }

    /// The steps that run an action: itself, or a group's inner steps.
    pub fn actions(&self) -> impl Iterator<Item = &Step> {
        let inner = self.steps.iter().flatten();
        std::iter::once(self).filter(|s| !s.is_group()).chain(inner)
    }
}

/// The id a group's inner step is journaled under (step ids have no dots: it is unambiguous).
pub fn qualified_id(group: &str, inner: &str) -> String {
    format!("{group}.{inner}")
}

/// The action a group step's records carry, where a step's action would be.
pub const GROUP_ACTION: &str = "group";

/// Items in flight at once when a `for_each` step gives no `concurrency`.
pub const DEFAULT_CONCURRENCY: u32 = 10;
