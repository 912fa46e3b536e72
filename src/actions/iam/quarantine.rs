//! `iam.quarantine_principal`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    ActionError, POLICY_VERSION, Principal, attached_policies, get_inline_policy, given,
    put_inline_policy,
};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, PRINCIPAL_SCOPE, ScopeField, arn, condition};
use crate::actions::{Action, Execute};

/// The AWS managed policy for compromised credentials (denies the actions attackers use to
/// persist, escalate and spend, for every credential of the principal).
pub const DEFAULT_POLICY_ARN: &str = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3";
/// The inline deny-all firebreak writes with `inline: true`.
pub const INLINE_POLICY_NAME: &str = "firebreak-quarantine";

/// Attach a deny-all to a user or role: the AWS managed quarantine policy (by ARN, default `AWSCompromisedKeyQuarantineV3`), or with `inline: true` an inline policy `firebreak-quarantine` denying every action. Records what was attached; already attached changes nothing. Give exactly one of `user_name` or `role_name`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuarantinePrincipal {
    /// The IAM user (an empty string counts as not given).
    #[serde(default)]
    pub user_name: Option<String>,
    /// The IAM role (an empty string counts as not given).
    #[serde(default)]
    pub role_name: Option<String>,
    /// The managed policy to attach (default
    /// `arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3`; other partitions need their
    /// own ARN). Not with `inline: true`.
    #[serde(default)]
    pub policy_arn: Option<String>,
    /// Put an inline deny-all policy (`firebreak-quarantine`) instead of attaching a managed
    /// one: for accounts where the managed policy cannot be attached.
    #[serde(default)]
    pub inline: bool,
}

impl Action for QuarantinePrincipal {
    const NAME: &'static str = "iam.quarantine_principal";
    const SUMMARY: &'static str = "attach a deny-all to a user or role: the AWS managed quarantine policy, or an inline `firebreak-quarantine`";
    const CALLS: &'static [&'static str] = &[
        "iam:ListAttachedUserPolicies",
        "iam:AttachUserPolicy",
        "iam:ListAttachedRolePolicies",
        "iam:AttachRolePolicy",
        "iam:GetUserPolicy",
        "iam:PutUserPolicy",
        "iam:GetRolePolicy",
        "iam:PutRolePolicy",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[
        Grant::on(
            &[
                "iam:ListAttachedUserPolicies",
                "iam:GetUserPolicy",
                "iam:PutUserPolicy",
            ],
            &[arn::IAM_USER],
        ),
        Grant::on(
            &[
                "iam:ListAttachedRolePolicies",
                "iam:GetRolePolicy",
                "iam:PutRolePolicy",
            ],
            &[arn::IAM_ROLE],
        ),
        // Attaching is privilege escalation unless the policy is a deny-all: only AWS's
        // quarantine policies may be attached (a custom `policy_arn` needs its own grant).
        Grant::when(
            &["iam:AttachUserPolicy"],
            &[arn::IAM_USER],
            condition::QUARANTINE_POLICIES,
        ),
        Grant::when(
            &["iam:AttachRolePolicy"],
            &[arn::IAM_ROLE],
            condition::QUARANTINE_POLICIES,
        ),
    ];
    const SCOPE: &'static [ScopeField] = PRINCIPAL_SCOPE;
}

impl Execute for QuarantinePrincipal {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let principal =
            Principal::from_input(self.user_name.as_deref(), self.role_name.as_deref())?;
        let arn = given(self.policy_arn.as_deref());
        if self.inline && arn.is_some() {
            return Err(ActionError::Failed(
                "give `policy_arn` or `inline: true`, not both".into(),
            ));
        }
        let mut outputs = principal.output();
        let done = if self.inline {
            let document = deny_all();
            let previous = get_inline_policy(ctx, &principal, INLINE_POLICY_NAME).await?;
            outputs.insert("mode".into(), json!("inline"));
            outputs.insert("policy_name".into(), json!(INLINE_POLICY_NAME));
            outputs.insert("policy_document".into(), document.clone());
            outputs.insert("previous_policy".into(), json!(previous));
            if previous.as_ref() == Some(&document) {
                None
            } else {
                Some(put_inline_policy(ctx, &principal, INLINE_POLICY_NAME, &document).await?)
            }
        } else {
            let arn = arn.unwrap_or(DEFAULT_POLICY_ARN);
            outputs.insert("mode".into(), json!("managed"));
            outputs.insert("policy_arn".into(), json!(arn));
            if attached_policies(ctx, &principal)
                .await?
                .iter()
                .any(|a| a["arn"] == arn)
            {
                None
            } else {
                Some(attach(ctx, &principal, arn).await?)
            }
        };
        match done {
            None => {
                outputs.insert("already_attached".into(), json!(true));
                outputs.insert("changed".into(), json!(false));
            }
            Some(true) => {
                outputs.insert("already_attached".into(), json!(false));
                outputs.insert("changed".into(), json!(true));
            }
            Some(false) => {
                outputs.insert("already_attached".into(), json!(false));
                outputs.insert("changed".into(), json!(false));
                outputs.insert("dry_run".into(), json!(true));
                outputs.insert("would_attach".into(), json!(true));
            }
        }
        Ok(Value::Object(outputs))
    }
}

fn deny_all() -> Value {
    json!({
        "Version": POLICY_VERSION,
        "Statement": [{
            "Sid": "FirebreakQuarantineDenyAll",
            "Effect": "Deny",
            "Action": ["*"],
            "Resource": ["*"],
        }],
    })
}

/// Attaches the managed policy; `false` in a drill (nothing sent).
async fn attach(ctx: &StepContext, principal: &Principal, arn: &str) -> Result<bool, ActionError> {
    let iam = &ctx.clients().iam;
    let input = json!({
        format!("{}_name", principal.kind()): principal.name(),
        "policy_arn": arn,
    });
    let sent = match principal {
        Principal::User(user) => ctx
            .change("iam", "AttachUserPolicy", &[user, arn], input, || {
                iam.attach_user_policy()
                    .user_name(user)
                    .policy_arn(arn)
                    .send()
            })
            .await?
            .is_some(),
        Principal::Role(role) => ctx
            .change("iam", "AttachRolePolicy", &[role, arn], input, || {
                iam.attach_role_policy()
                    .role_name(role)
                    .policy_arn(arn)
                    .send()
            })
            .await?
            .is_some(),
    };
    Ok(sent)
}
