//! Everything about talking to AWS in one place: how the SDK is configured, and how its errors
//! are classified (retries, dry-run results and journal records all decide from the class).

pub mod backoff;
pub mod config;
pub mod error;
pub mod fence;
pub mod resend;

pub use config::{AwsOptions, Clients, load_sdk_config};
pub use error::{AwsError, ErrorClass};
