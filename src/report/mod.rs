//! `firebreak report`: a case report built only from the journal and its evidence files.

pub mod custody;
mod escape;
pub mod html;
pub mod markdown;
pub mod model;
mod svg;

pub use model::{Report, build};
