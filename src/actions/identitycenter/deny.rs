//! `identitycenter.deny_user_in_permission_sets`.

use aws_sdk_ssoadmin::types::{ProvisionTargetType, StatusValues};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::user::{User, find};
use super::{ActionError, StepContext};
use crate::actions::grants::Grant;
use crate::actions::{Action, Execute, Mode};

/// The statement firebreak owns in a permission set's inline policy.
pub const SID: &str = "FirebreakDenyUsers";
/// How long provisioning a permission set to its accounts is waited for.
const PROVISION_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Deny one Identity Center user everything in the given permission sets: the user joins one deny statement (`aws:userid` like `*:<user name>`, the session name Identity Center gives) in each set's inline policy, which is then provisioned to every account the set is in, waiting for it. Never edits the `AWSReservedSSO_*` roles directly. Records each inline policy before.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DenyUserInPermissionSets {
    pub user_name: String,
    /// The permission sets (e.g. `{{steps.inventory.outputs.permission_set_arns}}`).
    pub permission_set_arns: Vec<String>,
    #[serde(default)]
    pub instance_arn: Option<String>,
}

impl Action for DenyUserInPermissionSets {
    const NAME: &'static str = "identitycenter.deny_user_in_permission_sets";
    const SUMMARY: &'static str = "add a per-user deny to permission sets' inline policies and provision them (waited for); records each policy before";
    const CALLS: &'static [&'static str] = &[
        "sso:ListInstances",
        "identitystore:GetUserId",
        "sso:GetInlinePolicyForPermissionSet",
        "sso:PutInlinePolicyToPermissionSet",
        "sso:ProvisionPermissionSet",
        "sso:DescribePermissionSetProvisioningStatus",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[];
}

impl Execute for DenyUserInPermissionSets {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let user = find(ctx, &self.user_name, self.instance_arn.as_deref()).await?;
        let pattern = format!("*:{}", user.user_name);
        let mut before_all = serde_json::Map::new();
        let mut after_all = serde_json::Map::new();
        let mut sent = false;
        let mut would = false;
        for set in self
            .permission_set_arns
            .iter()
            .filter(|s| !s.trim().is_empty())
        {
            let before = inline_policy(ctx, &user, set).await?;
            let after = with_user(&before, &pattern);
            if after != before {
                would = true;
                sent |= write(ctx, &user, set, &after).await?;
            }
            before_all.insert(set.clone(), before);
            after_all.insert(set.clone(), after);
        }
        let mut out = json!({
            "user_name": user.user_name,
            "instance_arn": user.instance_arn,
            "denied_as": pattern,
            "before": { "inline_policies": before_all },
            "after": { "inline_policies": after_all },
            "changed": sent,
        });
        if would && ctx.mode == Mode::DryRun {
            out["dry_run"] = json!(true);
        }
        Ok(out)
    }
}

/// A permission set's inline policy, parsed (`null`: none).
pub(super) async fn inline_policy(
    ctx: &StepContext,
    user: &User,
    set: &str,
) -> Result<Value, ActionError> {
    let sso = &ctx.clients().ssoadmin;
    let got = ctx
        .call("sso", "GetInlinePolicyForPermissionSet", &[set], || {
            sso.get_inline_policy_for_permission_set()
                .instance_arn(&user.instance_arn)
                .permission_set_arn(set)
                .send()
        })
        .await?;
    Ok(got
        .inline_policy()
        .filter(|p| !p.trim().is_empty())
        .map(|p| serde_json::from_str(p).unwrap_or(Value::String(p.to_owned())))
        .unwrap_or(Value::Null))
}

/// The policy with `pattern` in firebreak's deny statement.
pub(super) fn with_user(policy: &Value, pattern: &str) -> Value {
    edit(policy, |users| {
        if !users.iter().any(|u| u == pattern) {
            users.push(pattern.to_owned());
        }
    })
}

/// The policy without `pattern`; `null` when nothing is left. (A release restores the policy
/// recorded before instead; this is the inverse the tests check `with_user` against.)
#[cfg(test)]
pub(super) fn without_user(policy: &Value, pattern: &str) -> Value {
    edit(policy, |users| users.retain(|u| u != pattern))
}

fn edit(policy: &Value, change: impl FnOnce(&mut Vec<String>)) -> Value {
    let mut statements: Vec<Value> = match &policy["Statement"] {
        Value::Array(list) => list.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    };
    let mut users: Vec<String> = statements
        .iter()
        .find(|s| s["Sid"] == SID)
        .and_then(|s| s["Condition"]["StringLike"]["aws:userid"].as_array())
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    statements.retain(|s| s["Sid"] != SID);
    change(&mut users);
    if !users.is_empty() {
        statements.push(json!({
            "Sid": SID,
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": { "StringLike": { "aws:userid": users } },
        }));
    }
    if statements.is_empty() {
        return Value::Null;
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// Puts (or, for `null`, deletes) a set's inline policy and provisions the set to its accounts,
/// waiting for the provisioning. `false` in a drill.
pub(super) async fn write(
    ctx: &StepContext,
    user: &User,
    set: &str,
    policy: &Value,
) -> Result<bool, ActionError> {
    let sso = &ctx.clients().ssoadmin;
    let sent = if policy.is_null() {
        ctx.change(
            "sso",
            "DeleteInlinePolicyFromPermissionSet",
            &[set],
            json!({ "permission_set_arn": set }),
            || {
                sso.delete_inline_policy_from_permission_set()
                    .instance_arn(&user.instance_arn)
                    .permission_set_arn(set)
                    .send()
            },
        )
        .await?
        .is_some()
    } else {
        let text = policy.to_string();
        ctx.change(
            "sso",
            "PutInlinePolicyToPermissionSet",
            &[set],
            json!({ "permission_set_arn": set, "inline_policy": policy }),
            || {
                sso.put_inline_policy_to_permission_set()
                    .instance_arn(&user.instance_arn)
                    .permission_set_arn(set)
                    .inline_policy(&text)
                    .send()
            },
        )
        .await?
        .is_some()
    };
    if !sent {
        return Ok(false);
    }
    provision(ctx, user, set).await?;
    Ok(true)
}

/// Provisions a permission set to every account it is in and waits until that is done: until
/// then the accounts' roles carry the old policy.
async fn provision(ctx: &StepContext, user: &User, set: &str) -> Result<(), ActionError> {
    let sso = &ctx.clients().ssoadmin;
    let started = ctx
        .call("sso", "ProvisionPermissionSet", &[set], || {
            sso.provision_permission_set()
                .instance_arn(&user.instance_arn)
                .permission_set_arn(set)
                .target_type(ProvisionTargetType::AllProvisionedAccounts)
                .send()
        })
        .await?;
    let status = started.permission_set_provisioning_status();
    let mut state = status.and_then(|s| s.status()).cloned();
    let request = status
        .and_then(|s| s.request_id())
        .unwrap_or_default()
        .to_owned();
    let deadline = tokio::time::Instant::now() + PROVISION_WAIT;
    let mut round = 0;
    while state == Some(StatusValues::InProgress) {
        if tokio::time::Instant::now() >= deadline {
            return Err(ActionError::Failed(format!(
                "provisioning permission set {set} still in progress after {}s (request {request}); the deny is not in force everywhere yet",
                PROVISION_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(crate::actions::ec2::poll_delay(round)).await;
        round += 1;
        let polled = ctx
            .call(
                "sso",
                "DescribePermissionSetProvisioningStatus",
                &[&request],
                || {
                    sso.describe_permission_set_provisioning_status()
                        .instance_arn(&user.instance_arn)
                        .provision_permission_set_request_id(&request)
                        .send()
                },
            )
            .await?;
        state = polled
            .permission_set_provisioning_status()
            .and_then(|s| s.status())
            .cloned();
    }
    if state == Some(StatusValues::Failed) {
        return Err(ActionError::Failed(format!(
            "provisioning permission set {set} failed (request {request}); the deny is not in force"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_join_and_leave_one_statement_and_others_are_kept() {
        let theirs = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Theirs", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}]});
        let one = with_user(&theirs, "*:mallory");
        assert_eq!(one["Statement"].as_array().unwrap().len(), 2);
        let two = with_user(&one, "*:trudy");
        assert_eq!(
            two["Statement"][1]["Condition"]["StringLike"]["aws:userid"],
            json!(["*:mallory", "*:trudy"])
        );
        assert_eq!(with_user(&two, "*:trudy"), two);
        assert_eq!(
            without_user(&without_user(&two, "*:trudy"), "*:mallory"),
            theirs
        );
        assert_eq!(
            without_user(&with_user(&Value::Null, "*:m"), "*:m"),
            Value::Null
        );
    }
}
