//! The part of the run's context a fanned-out step's items need. Every item (and in a group,
//! every inner step of every item) starts from its own copy of the context, and the context
//! holds every earlier step's outputs: in a 1,000-instance run the first group's outputs alone
//! are megabytes, and copying them into each item made memory grow with the square of the
//! fleet (1 GB at N = 1000). An item's copy keeps only the earlier steps its templates name.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::runbook::Step;
use crate::template;

/// `context` with `steps` narrowed to the steps `step` (and its inner steps) refer to.
pub(super) fn for_items(context: &Value, step: &Step) -> Value {
    let Some(referenced) = referenced_steps(step) else {
        return context.clone();
    };
    let Value::Object(fields) = context else {
        return context.clone();
    };
    let mut scoped = Map::new();
    for (key, value) in fields {
        if key == "steps" {
            let steps: Map<String, Value> = value
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(id, _)| referenced.contains(id.as_str()))
                .map(|(id, finished)| (id.clone(), finished.clone()))
                .collect();
            scoped.insert(key.clone(), Value::Object(steps));
        } else {
            scoped.insert(key.clone(), value.clone());
        }
    }
    Value::Object(scoped)
}

/// The step ids `step`'s templates name as `steps.<id>…`; `None` when a template names `steps`
/// as a whole (or cannot be read), so everything must stay.
fn referenced_steps(step: &Step) -> Option<BTreeSet<String>> {
    let tree = serde_json::to_value(step).ok()?;
    let mut found = BTreeSet::new();
    collect(&tree, &mut found).then_some(found)
}

/// Adds what the templates in `value` name; false when one needs every step.
fn collect(value: &Value, found: &mut BTreeSet<String>) -> bool {
    match value {
        Value::String(text) if template::is_template(text) => {
            let Ok(analysis) = template::analyze(text) else {
                return false;
            };
            for reference in analysis.references {
                match reference.segments.as_slice() {
                    [root, id, ..] if root == "steps" => {
                        found.insert(id.clone());
                    }
                    [root] if root == "steps" => return false,
                    _ => {}
                }
            }
            true
        }
        Value::Array(items) => items.iter().all(|v| collect(v, found)),
        Value::Object(fields) => fields.values().all(|v| collect(v, found)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn step(yaml: &str) -> Step {
        serde_saphyr::from_str(yaml).expect("a step")
    }

    fn context() -> Value {
        json!({
            "params": {"case_id": "c-1"},
            "steps": {
                "contain": {"outputs": ["megabytes of outputs"]},
                "approve": {"outputs": {"approved": true}},
            },
        })
    }

    #[test]
    fn an_item_keeps_only_the_steps_its_templates_name() {
        let group = step(
            "id: preserve\nfor_each: \"{{params.ids}}\"\nsteps:\n  - id: snap\n    action: ec2.snapshot_volumes\n    when: \"{{steps.approve.outputs.approved}}\"\n    with: { instance_id: \"{{item}}\", case_id: \"{{params.case_id}}\" }\n",
        );
        let scoped = for_items(&context(), &group);
        assert_eq!(scoped["params"], context()["params"]);
        assert_eq!(
            scoped["steps"],
            json!({"approve": {"outputs": {"approved": true}}})
        );
    }

    #[test]
    fn a_template_over_every_step_keeps_them_all() {
        let plain = step(
            "id: report\naction: core.log\nfor_each: \"{{params.ids}}\"\nwith: { message: \"{{json steps}}\" }\n",
        );
        assert_eq!(for_items(&context(), &plain), context());
    }
}
