//! The closed set of actions a runbook can use. Each action is a typed input struct in its
//! service's file, implementing [`Action`]; the catalogue below ties names to types, so
//! `validate`, `plan`, `schema` and (later) the engine all read the same declarations.

pub mod cloudformation;
pub mod core;
pub mod ec2;
mod error;
pub mod iam;
pub mod sns;
pub mod ssm;

use std::future::Future;

use schemars::{JsonSchema, Schema};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use error::ActionError;

use crate::engine::StepContext;

/// What every action declares about itself.
pub trait Action: DeserializeOwned + JsonSchema {
    /// The name runbooks use, `service.verb_object`.
    const NAME: &'static str;
    /// One line for `plan` and `--help`.
    const SUMMARY: &'static str;
    /// The AWS API calls it may make, as `service:Operation`.
    const CALLS: &'static [&'static str];
    /// The IAM permissions it needs (feeds `policy` and the dry-run preflight).
    const PERMISSIONS: &'static [&'static str];
}

/// How an action runs. Implementations must be idempotent: the engine runs a step again after a
/// crash, with the same idempotency key (`ctx.idempotency_key`).
pub trait Execute {
    fn execute(&self, ctx: &StepContext)
    -> impl Future<Output = Result<Value, ActionError>> + Send;
}

/// A catalogue entry: an action's declarations without its type.
pub struct ActionInfo {
    pub name: &'static str,
    pub summary: &'static str,
    pub calls: &'static [&'static str],
    pub permissions: &'static [&'static str],
    /// Whether the action asks a person (a decision point in plans and drills).
    pub decision: bool,
    /// The input's JSON Schema (draft-07, with its own definitions).
    pub input_schema: fn() -> Schema,
}

/// The input schema of one action, as a standalone draft-07 document.
pub fn input_schema<T: JsonSchema>() -> Schema {
    schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<T>()
}

macro_rules! catalogue {
    ($($variant:ident => $ty:ty $(, decision = $decision:expr)?;)*) => {
        /// A parsed, typed action input.
        #[derive(Debug, Clone)]
        pub enum ActionInput {
            $($variant($ty),)*
        }

        /// Every action, in the order `schema` and `--help` list them.
        pub static ACTIONS: &[ActionInfo] = &[
            $(ActionInfo {
                name: <$ty as Action>::NAME,
                summary: <$ty as Action>::SUMMARY,
                calls: <$ty as Action>::CALLS,
                permissions: <$ty as Action>::PERMISSIONS,
                decision: false $(|| $decision)?,
                input_schema: input_schema::<$ty>,
            },)*
        ];

        impl ActionInput {
            /// Parses a rendered `with:` map for the named action.
            pub fn parse(name: &str, input: Value) -> Result<ActionInput, InputError> {
                $(if name == <$ty as Action>::NAME {
                    return serde_json::from_value(input)
                        .map(ActionInput::$variant)
                        .map_err(|e| InputError::Invalid { action: name.to_owned(), message: e.to_string() });
                })*
                Err(InputError::UnknownAction(name.to_owned()))
            }

            /// Runs the action; outputs are a JSON object.
            pub async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
                match self {
                    $(ActionInput::$variant(input) => Execute::execute(input, ctx).await,)*
                }
            }

            pub fn name(&self) -> &'static str {
                match self {
                    $(ActionInput::$variant(_) => <$ty as Action>::NAME,)*
                }
            }
        }
    };
}

catalogue! {
    CoreApprove => core::Approve, decision = true;
    CoreLog => core::Log;
    CoreWait => core::Wait;
    Ec2DescribeInstance => ec2::DescribeInstance;
    Ec2ProtectInstance => ec2::ProtectInstance;
    Ec2DetachFromAutoscaling => ec2::DetachFromAutoscaling;
    Ec2CaptureConsoleOutput => ec2::CaptureConsoleOutput;
    Ec2IsolateInstance => ec2::IsolateInstance;
    Ec2ReleaseIsolation => ec2::ReleaseIsolation;
    Ec2DisableMetadata => ec2::DisableMetadata;
    Ec2ReplaceInstanceProfile => ec2::ReplaceInstanceProfile;
    Ec2DisassociateAddresses => ec2::DisassociateAddresses;
    Ec2SnapshotVolumes => ec2::SnapshotVolumes;
    Ec2TagResources => ec2::TagResources;
    Ec2StopInstance => ec2::StopInstance;
    Ec2ShareSnapshots => ec2::ShareSnapshots;
    Ec2AttachEvidenceVolumes => ec2::AttachEvidenceVolumes;
    SsmCheckManaged => ssm::CheckManaged;
    SsmRunCommand => ssm::RunCommand;
    CloudformationCreateStack => cloudformation::CreateStack;
    CloudformationDeleteStack => cloudformation::DeleteStack;
    SnsPublish => sns::Publish;
    IamInventoryPrincipal => iam::InventoryPrincipal;
    IamDisableAccessKey => iam::DisableAccessKey;
    IamDeleteLoginProfile => iam::DeleteLoginProfile;
    IamRevokeRoleSessions => iam::RevokeRoleSessions;
    IamRevokeUserSessions => iam::RevokeUserSessions;
    IamQuarantinePrincipal => iam::QuarantinePrincipal;
    IamTagPrincipal => iam::TagPrincipal;
}

/// Looks an action up by name.
pub fn find(name: &str) -> Option<&'static ActionInfo> {
    ACTIONS.iter().find(|a| a.name == name)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    ACTIONS.iter().map(|a| a.name)
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InputError {
    #[error("unknown action `{0}`")]
    UnknownAction(String),
    #[error("invalid input for `{action}`: {message}")]
    Invalid { action: String, message: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for action in ACTIONS {
            assert!(seen.insert(action.name), "duplicate {}", action.name);
            let (service, verb) = action.name.split_once('.').expect("service.verb");
            assert!(!service.is_empty() && !verb.is_empty());
            for permission in action.permissions {
                assert!(
                    permission.contains(':') && !permission.contains('*'),
                    "{permission}"
                );
            }
        }
    }

    #[test]
    fn parse_rejects_unknown_fields() {
        assert!(ActionInput::parse("core.log", json!({"message": "hi"})).is_ok());
        let err = ActionInput::parse("core.log", json!({"message": "hi", "x": 1})).unwrap_err();
        assert!(err.to_string().contains("unknown field `x`"), "{err}");
        assert_eq!(
            ActionInput::parse("core.nope", json!({})).unwrap_err(),
            InputError::UnknownAction("core.nope".into())
        );
    }
}
