//! The runbook format: model, loading (with source positions), validation, parameters.

pub mod duration;
pub mod load;
pub mod model;
pub mod node;
pub mod params;
pub mod schema_check;
pub mod validate;

pub use load::{LoadError, LoadedRunbook, load};
pub use model::{OnFailure, ParamType, Parameter, Runbook, Step};

#[cfg(test)]
mod validate_cases;
