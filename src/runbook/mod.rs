//! The runbook format: the typed model (and its JSON Schema), YAML parsing with positions,
//! parameters, durations, and the shape checks that need nothing but the format itself (the
//! structure schema, EventBridge patterns). Holding a runbook against the action catalogue is
//! [`crate::check`]'s job, one floor up.

pub mod duration;
pub mod model;
pub mod node;
pub mod params;
pub mod parse;
pub mod pattern_check;
pub mod schema_check;

pub use model::{OnFailure, ParamType, Parameter, Runbook, Step};

/// The model of a runbook text, checked only as far as the format goes (for this layer's own
/// tests; [`crate::check::from_str`] is the real loader).
#[cfg(test)]
pub(crate) fn model_from_str(text: &str) -> Runbook {
    let node = parse::parse_yaml(text).expect("test runbooks are valid YAML");
    serde_json::from_value(node.to_json()).expect("test runbooks fit the model")
}
