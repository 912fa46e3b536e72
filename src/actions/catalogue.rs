//! The catalogue: the closed set of actions, one line each, tying names to types. `validate`,
//! `plan`, `policy`, `schema`, drills and the engine all read the same declarations from here.

use std::collections::BTreeSet;

use serde_json::Value;

use super::action::{Action, ActionInfo, Execute, input_schema};
use super::{
    ActionError, StepContext, cloudformation, core, ec2, elbv2, iam, identitycenter, lambda, s3,
    sns, ssm,
};
use crate::runbook::Runbook;

macro_rules! catalogue {
    ($($variant:ident => $ty:ty $(, decision = $decision:expr)? $(, isolates = $isolates:expr)?;)*) => {
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
                grants: <$ty as Action>::GRANTS,
                scope: <$ty as Action>::SCOPE,
                decision: false $(|| $decision)?,
                isolates: false $(|| $isolates)?,
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
    Ec2IsolateInstance => ec2::IsolateInstance, isolates = true;
    Ec2ReleaseIsolation => ec2::ReleaseIsolation;
    Ec2RestoreInstance => ec2::RestoreInstance;
    Elbv2DeregisterTargets => elbv2::DeregisterTargets;
    Ec2OpenCollectionPath => ec2::OpenCollectionPath;
    Ec2CloseCollectionPath => ec2::CloseCollectionPath;
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
    IamDenyInstanceCredentials => iam::DenyInstanceCredentials;
    IamReleaseInstanceCredentials => iam::ReleaseInstanceCredentials;
    IamReleasePrincipal => iam::ReleasePrincipal;
    S3InventoryBucket => s3::InventoryBucket;
    S3BlockPublicAccess => s3::BlockPublicAccess;
    S3EnforceBucketOwner => s3::EnforceBucketOwner;
    S3RestrictBucketPolicy => s3::RestrictBucketPolicy;
    S3TagBucket => s3::TagBucket;
    S3ReleaseBucket => s3::ReleaseBucket;
    LambdaInventoryFunction => lambda::InventoryFunction;
    LambdaDisableEventSources => lambda::DisableEventSources;
    LambdaBlockInvocations => lambda::BlockInvocations;
    LambdaRestrictFunctionUrl => lambda::RestrictFunctionUrl;
    LambdaRemovePublicStatements => lambda::RemovePublicStatements;
    LambdaTagFunction => lambda::TagFunction;
    LambdaReleaseFunction => lambda::ReleaseFunction;
    IdentitycenterInventoryUser => identitycenter::InventoryUser;
    IdentitycenterRemoveUserAccess => identitycenter::RemoveUserAccess;
    IdentitycenterDenyUserInPermissionSets => identitycenter::DenyUserInPermissionSets;
    IdentitycenterReleaseUser => identitycenter::ReleaseUser;
    IamQuarantinePrincipal => iam::QuarantinePrincipal;
    IamTagPrincipal => iam::TagPrincipal;
}

/// The step names under which the engine journals its own calls (assumed-role credentials,
/// interlock reads, the preflight, notifications, finding updates). A runbook step may not take
/// one: its calls would be read as the engine's.
pub const ENGINE_STEPS: &[&str] = &[
    "interlocks",
    "notify",
    "preflight",
    "credentials",
    "finding_update",
];

/// Looks an action up by name.
pub fn find(name: &str) -> Option<&'static ActionInfo> {
    ACTIONS.iter().find(|a| a.name == name)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    ACTIONS.iter().map(|a| a.name)
}

/// When the engine itself calls AWS (as opposed to a step's action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineUse {
    /// Every run: the caller identity for the journal's first record.
    Always,
    /// `limits.protected_tags`: tags of EC2 targets.
    ProtectedEc2,
    /// `limits.protected_tags`: tags of IAM users named by a `user_name` parameter, or owning
    /// the key an `access_key_id` parameter names.
    ProtectedUsers,
    /// An `access_key_id` parameter: the key's owner, looked up before the interlocks so it is
    /// locked and protection-checked like the key.
    AccessKeyOwner,
    /// `limits.protected_tags`: tags of IAM roles named by a `role_name` parameter.
    ProtectedRoles,
    /// A runbook `notify:` block.
    Notify,
    /// A drill's permission preflight.
    Drill,
    /// An assume-role template (`--assume-role`, `FIREBREAK_ASSUME_ROLE`).
    AssumeRole,
    /// A trigger on Security Hub findings: each is read back before the run acts on it
    /// (`dispatch --verify-finding`, on by default).
    VerifySecurityHub,
    /// A trigger on GuardDuty's own events: read back with `--verify-finding all`.
    VerifyGuardDuty,
    /// A trigger with `update_finding`: the finding is marked NOTIFIED and noted.
    UpdateFinding,
    /// `--seal`: the bucket's Object Lock check, uploads of the journal and evidence, each read
    /// back.
    Seal,
    /// `--sign-key`: the key's check and a signature at every end of the run.
    SignHeads,
}

/// A call the engine makes itself, declared like an action's: when, and where it applies
/// (`{topic}` and `{role}` are filled by the policy from the runbook and the command line).
#[derive(Debug, Clone, Copy)]
pub struct EngineCall {
    pub call: &'static str,
    pub when: EngineUse,
    pub resources: &'static [&'static str],
}

impl EngineCall {
    /// The IAM action that authorises the call (the call's own name but for a few S3 calls).
    pub fn permission(&self) -> &'static str {
        match self.call {
            "s3:GetObjectLockConfiguration" => "s3:GetBucketObjectLockConfiguration",
            "s3:HeadObject" => "s3:GetObject",
            call => call,
        }
    }
}

/// A call a `serve` worker makes for itself, beside its runs' calls (`policy --worker`): on
/// its queue (`{queue}`), its table (`{table}`), its journal key's parameter (`{key}`).
#[derive(Debug, Clone, Copy)]
pub struct WorkerCall {
    pub call: &'static str,
    /// The IAM action that authorises it.
    pub permission: &'static str,
    pub resource: &'static str,
}

pub const WORKER_CALLS: &[WorkerCall] = &[
    WorkerCall {
        call: "sqs:ReceiveMessage",
        permission: "sqs:ReceiveMessage",
        resource: "{queue}",
    },
    // A run carried on later: its resume request (a Lambda's deadline, a message held 12 h).
    WorkerCall {
        call: "sqs:SendMessage",
        permission: "sqs:SendMessage",
        resource: "{queue}",
    },
    WorkerCall {
        call: "sqs:DeleteMessage",
        permission: "sqs:DeleteMessage",
        resource: "{queue}",
    },
    WorkerCall {
        call: "sqs:ChangeMessageVisibility",
        permission: "sqs:ChangeMessageVisibility",
        resource: "{queue}",
    },
    WorkerCall {
        call: "dynamodb:PutItem",
        permission: "dynamodb:PutItem",
        resource: "{table}",
    },
    // Each put inside the transaction is authorised as dynamodb:PutItem.
    WorkerCall {
        call: "dynamodb:TransactWriteItems",
        permission: "dynamodb:PutItem",
        resource: "{table}",
    },
    WorkerCall {
        call: "dynamodb:Query",
        permission: "dynamodb:Query",
        resource: "{table}",
    },
    WorkerCall {
        call: "dynamodb:GetItem",
        permission: "dynamodb:GetItem",
        resource: "{table}",
    },
    WorkerCall {
        call: "dynamodb:UpdateItem",
        permission: "dynamodb:UpdateItem",
        resource: "{table}",
    },
    WorkerCall {
        call: "dynamodb:DeleteItem",
        permission: "dynamodb:DeleteItem",
        resource: "{table}",
    },
    WorkerCall {
        call: "ssm:GetParameter",
        permission: "ssm:GetParameter",
        resource: "{key}",
    },
    // A decision through the queue: is its named sender the one SQS says sent it?
    WorkerCall {
        call: "iam:GetUser",
        permission: "iam:GetUser",
        resource: "arn:aws:iam::*:user/*",
    },
    WorkerCall {
        call: "iam:GetRole",
        permission: "iam:GetRole",
        resource: "arn:aws:iam::*:role/*",
    },
    // Made by Parameter Store for the worker when the key is a Secrets Manager secret.
    WorkerCall {
        call: "secretsmanager:GetSecretValue",
        permission: "secretsmanager:GetSecretValue",
        resource: "{secret}",
    },
];

/// Every AWS call the engine makes outside steps (journaled under the pseudo-steps
/// `interlocks` and `notify`, or in the first record and the preflight).
pub const ENGINE_CALLS: &[EngineCall] = &[
    EngineCall {
        call: "sts:GetCallerIdentity",
        when: EngineUse::Always,
        resources: &["*"],
    },
    EngineCall {
        call: "ec2:DescribeTags",
        when: EngineUse::ProtectedEc2,
        resources: &["*"],
    },
    EngineCall {
        call: "iam:GetAccessKeyLastUsed",
        when: EngineUse::AccessKeyOwner,
        resources: &["arn:aws:iam::*:user/*"],
    },
    EngineCall {
        call: "iam:ListUserTags",
        when: EngineUse::ProtectedUsers,
        resources: &["arn:aws:iam::*:user/*"],
    },
    EngineCall {
        call: "iam:ListRoleTags",
        when: EngineUse::ProtectedRoles,
        resources: &["arn:aws:iam::*:role/*"],
    },
    EngineCall {
        call: "sns:Publish",
        when: EngineUse::Notify,
        resources: &["{topic}"],
    },
    EngineCall {
        call: "iam:SimulatePrincipalPolicy",
        when: EngineUse::Drill,
        resources: &["*"],
    },
    EngineCall {
        call: "iam:GetRole",
        when: EngineUse::Drill,
        resources: &["arn:aws:iam::*:role/*"],
    },
    EngineCall {
        call: "sts:AssumeRole",
        when: EngineUse::AssumeRole,
        resources: &["{role}"],
    },
    EngineCall {
        call: "securityhub:GetFindings",
        when: EngineUse::VerifySecurityHub,
        resources: &["arn:aws:securityhub:*:*:hub/default"],
    },
    EngineCall {
        call: "securityhub:BatchUpdateFindings",
        when: EngineUse::UpdateFinding,
        resources: &["arn:aws:securityhub:*:*:hub/default"],
    },
    // GuardDuty's finding reads take no resource-level permissions.
    EngineCall {
        call: "guardduty:ListDetectors",
        when: EngineUse::VerifyGuardDuty,
        resources: &["*"],
    },
    EngineCall {
        call: "guardduty:GetFindings",
        when: EngineUse::VerifyGuardDuty,
        resources: &["*"],
    },
    EngineCall {
        call: "s3:GetBucketLocation",
        when: EngineUse::Seal,
        resources: &["arn:aws:s3:::{seal_bucket}"],
    },
    EngineCall {
        call: "s3:GetObjectLockConfiguration",
        when: EngineUse::Seal,
        resources: &["arn:aws:s3:::{seal_bucket}"],
    },
    EngineCall {
        call: "s3:PutObject",
        when: EngineUse::Seal,
        resources: &["arn:aws:s3:::{seal_bucket}/*"],
    },
    EngineCall {
        call: "s3:HeadObject",
        when: EngineUse::Seal,
        resources: &["arn:aws:s3:::{seal_bucket}/*"],
    },
    EngineCall {
        call: "kms:DescribeKey",
        when: EngineUse::SignHeads,
        resources: &["{sign_key}"],
    },
    EngineCall {
        call: "kms:Sign",
        when: EngineUse::SignHeads,
        resources: &["{sign_key}"],
    },
];

/// How the runbooks will be run, beyond what they say themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunUses {
    /// Drills (`run --dry-run`) with the permission preflight.
    pub drills: bool,
    /// Findings of other accounts through an assumed role.
    pub assume_role: bool,
    /// Runs sealed in S3 Object Lock (`--seal`).
    pub seal: bool,
    /// Heads signed with KMS (`--sign-key`).
    pub sign: bool,
}

/// What the engine will call for this runbook, run this way.
pub fn engine_uses(runbook: &Runbook, uses: RunUses) -> Vec<EngineUse> {
    let mut all = vec![EngineUse::Always];
    let used = runbook.used_parameters();
    if used.contains("access_key_id") {
        all.push(EngineUse::AccessKeyOwner);
    }
    if !runbook.limits.protected_tags.is_empty() {
        all.push(EngineUse::ProtectedEc2);
        if used.contains("user_name") || used.contains("access_key_id") {
            all.push(EngineUse::ProtectedUsers);
        }
        if used.contains("role_name") {
            all.push(EngineUse::ProtectedRoles);
        }
    }
    if runbook.notify.is_some() {
        all.push(EngineUse::Notify);
    }
    if uses.drills {
        all.push(EngineUse::Drill);
    }
    if uses.assume_role {
        all.push(EngineUse::AssumeRole);
    }
    if runbook.triggered_by("aws.securityhub") {
        all.push(EngineUse::VerifySecurityHub);
    }
    if runbook.triggered_by("aws.guardduty") {
        all.push(EngineUse::VerifyGuardDuty);
    }
    if runbook.triggers.iter().any(|t| t.update_finding) {
        all.push(EngineUse::UpdateFinding);
    }
    if uses.seal {
        all.push(EngineUse::Seal);
    }
    if uses.sign {
        all.push(EngineUse::SignHeads);
    }
    all
}

/// The engine's own calls for this runbook, run this way.
pub fn engine_calls(runbook: &Runbook, uses: RunUses) -> Vec<&'static EngineCall> {
    let wanted = engine_uses(runbook, uses);
    ENGINE_CALLS
        .iter()
        .filter(|c| wanted.contains(&c.when))
        .collect()
}

/// Every IAM action the runbooks need: the engine's own and each step's action's.
pub fn permissions(runbooks: &[&Runbook], uses: RunUses) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for runbook in runbooks {
        all.extend(
            engine_calls(runbook, uses)
                .iter()
                .map(|c| c.permission().to_owned()),
        );
        for step in runbook.action_steps() {
            if let Some(info) = find(&step.action) {
                all.extend(info.permissions.iter().map(|p| p.to_string()));
            }
        }
    }
    all
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
