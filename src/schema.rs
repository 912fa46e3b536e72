//! The JSON Schema of the runbook format (draft-07, which editors' YAML plugins understand).
//!
//! Two views of one source: [`structure_schema`] is the model as schemars derives it, used by
//! the loader to check documents (it lives with the model); [`runbook_schema`] adds, for editors, the list of action names
//! and each action's input schema tied to its `with:` block.

use serde_json::{Map, Value, json};

use crate::actions::ACTIONS;
use crate::runbook::model::structure_schema;

/// The schema `firebreak schema` prints and `schema/runbook.schema.json` holds.
pub fn runbook_schema() -> Value {
    let mut root = structure_schema();
    root["$id"] = json!("https://firebreak.dev/schema/runbook-v1.json");
    root["title"] = json!("firebreak runbook (format version 1)");
    let mut conditions = Vec::new();
    for action in ACTIONS {
        let mut input = serde_json::to_value((action.input_schema)()).expect("a schema is JSON");
        let object = input.as_object_mut().expect("an input schema is an object");
        object.remove("$schema");
        if let Some(Value::Object(definitions)) = object.remove("definitions") {
            let target = root["definitions"]
                .as_object_mut()
                .expect("the runbook schema has definitions");
            for (name, definition) in definitions {
                if let Some(existing) = target.get(&name) {
                    assert_eq!(
                        existing, &definition,
                        "two actions define `{name}` differently"
                    );
                }
                target.insert(name, definition);
            }
        }
        object.insert("description".into(), json!(action.summary));
        let key = format!("action:{}", action.name);
        root["definitions"][&key] = input;
        conditions.push(json!({
            "if": {"properties": {"action": {"const": action.name}}, "required": ["action"]},
            "then": {"properties": {"with": {"$ref": format!("#/definitions/{key}")}}}
        }));
    }
    let step = root["definitions"]["Step"]
        .as_object_mut()
        .expect("the runbook schema defines Step");
    let names: Vec<Value> = ACTIONS.iter().map(|a| json!(a.name)).collect();
    if let Some(Value::Object(action)) =
        step.get_mut("properties").and_then(|p| p.get_mut("action"))
    {
        action.insert("enum".into(), Value::Array(names));
    }
    step.insert("allOf".into(), Value::Array(conditions));
    sort_keys(root)
}

/// Keys in a stable order, so the checked-in copy diffs cleanly.
fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}
