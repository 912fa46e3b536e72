//! Reading JSON values in assertions, with a message naming the value when it is not what the
//! test expects.

use serde_json::Value;

pub fn str_of(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a string"))
}

pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{value} is not a list"))
        .iter()
        .map(|v| str_of(v).to_owned())
        .collect()
}

/// The step `id` of a run's `--output json` outcome.
pub fn step<'a>(outcome: &'a Value, id: &str) -> &'a Value {
    outcome["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps in {outcome:#}"))
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {outcome:#}"))
}
