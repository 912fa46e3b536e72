//! `identitycenter.release_user`.

use aws_sdk_ssoadmin::types::{PrincipalType, TargetType};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::deny::{DenyUserInPermissionSets, inline_policy, write};
use super::remove::{RemoveUserAccess, wait_for};
use super::user::{User, assignments, find, memberships};
use super::{ActionError, StepContext};
use crate::actions::grants::Grant;
use crate::actions::prior::{Standing, changed_since, drift, recorded_outputs};
use crate::actions::{Action, Execute};

/// Give an Identity Center user back what a containing run took, from its verified journal: the account assignments and group memberships it removed (re-created), and each permission set's inline policy as it was (the set provisioned again). Refuses, changing nothing, when an inline policy changed since unless `force`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseUser {
    pub journal: String,
    pub user_name: String,
    #[serde(default)]
    pub instance_arn: Option<String>,
    #[serde(default)]
    pub force: bool,
}

impl Action for ReleaseUser {
    const NAME: &'static str = "identitycenter.release_user";
    const SUMMARY: &'static str = "re-create an Identity Center user's assignments and memberships and restore permission sets' inline policies, from the containing run's verified journal";
    const CALLS: &'static [&'static str] = &[
        "sso:ListInstances",
        "identitystore:GetUserId",
        "sso:ListAccountAssignmentsForPrincipal",
        "identitystore:ListGroupMembershipsForMember",
        "sso:CreateAccountAssignment",
        "sso:DescribeAccountAssignmentCreationStatus",
        "identitystore:CreateGroupMembership",
        "sso:GetInlinePolicyForPermissionSet",
        "sso:PutInlinePolicyToPermissionSet",
        "sso:DeleteInlinePolicyFromPermissionSet",
        "sso:ProvisionPermissionSet",
        "sso:DescribePermissionSetProvisioningStatus",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[];
}

impl Execute for ReleaseUser {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let user = find(ctx, &self.user_name, self.instance_arn.as_deref()).await?;
        let key = ctx.journal_key();
        let mine = |o: &Value| o["user_name"] == user.user_name.as_str() && o["dry_run"] != true;
        let removed: Vec<Value> =
            recorded_outputs(&self.journal, RemoveUserAccess::NAME, None, key)?
                .into_iter()
                .filter(mine)
                .collect();
        let denied: Vec<Value> =
            recorded_outputs(&self.journal, DenyUserInPermissionSets::NAME, None, key)?
                .into_iter()
                .filter(mine)
                .collect();
        if removed.is_empty() && denied.is_empty() {
            return Err(ActionError::Failed(format!(
                "journal {} records no containment of Identity Center user {}; nothing to release",
                self.journal, user.user_name
            )));
        }
        // Inline policies first: read all, refuse on drift before any change.
        let mut policies = Vec::new();
        let mut drifted = Vec::new();
        if let (Some(first), Some(last)) = (denied.first(), denied.last()) {
            for (set, before) in first["before"]["inline_policies"]
                .as_object()
                .into_iter()
                .flatten()
            {
                let after = &last["after"]["inline_policies"][set];
                if before == after {
                    continue;
                }
                let now = inline_policy(ctx, &user, set).await?;
                let standing = Standing::of(&now, before, after, |a, b| a == b);
                if standing == Standing::ChangedSince {
                    drifted.push(drift(
                        &format!("inline policy of {set}"),
                        after,
                        &now,
                        before,
                    ));
                }
                policies.push((set.clone(), before.clone(), standing));
            }
        }
        if !drifted.is_empty() && !self.force {
            return Err(changed_since(
                &format!("Identity Center user {}", user.user_name),
                drifted,
            ));
        }
        let mut restored = Vec::new();
        for (set, before, standing) in &policies {
            let sent = if *standing == Standing::AlreadyRestored {
                false
            } else {
                write(ctx, &user, set, before).await?
            };
            restored.push(json!({ "setting": format!("inline policy of {set}"), "state": standing.as_str(), "changed": sent }));
        }
        let recorded_assignments: Vec<Value> = removed
            .iter()
            .flat_map(|o| {
                o["before"]["account_assignments"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        let live = assignments(ctx, &user).await?;
        for assignment in &recorded_assignments {
            let present = live.contains(assignment);
            let sent = if present {
                false
            } else {
                create_assignment(ctx, &user, assignment).await?
            };
            restored.push(json!({ "setting": "account_assignment", "assignment": assignment, "state": if present { "already-restored" } else { "restore" }, "changed": sent }));
        }
        let recorded_groups: Vec<Value> = removed
            .iter()
            .flat_map(|o| {
                o["before"]["group_memberships"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        let live_groups = memberships(ctx, &user).await?;
        let ids = &ctx.clients().identitystore;
        for membership in &recorded_groups {
            let group = membership["group_id"].as_str().unwrap_or_default();
            let present = live_groups.iter().any(|m| m["group_id"] == group);
            let sent = if present {
                false
            } else {
                let member = aws_sdk_identitystore::types::MemberId::UserId(user.user_id.clone());
                ctx.change(
                    "identitystore",
                    "CreateGroupMembership",
                    &[group, &user.user_id],
                    json!({ "group_id": group, "user_id": user.user_id }),
                    || {
                        ids.create_group_membership()
                            .identity_store_id(&user.identity_store_id)
                            .group_id(group)
                            .member_id(member.clone())
                            .send()
                    },
                )
                .await?
                .is_some()
            };
            restored.push(json!({ "setting": "group_membership", "group_id": group, "state": if present { "already-restored" } else { "restore" }, "changed": sent }));
        }
        let changed = restored.iter().any(|r| r["changed"] == true);
        Ok(
            json!({ "user_name": user.user_name, "restored": restored, "drifted": drifted, "changed": changed }),
        )
    }
}

async fn create_assignment(
    ctx: &StepContext,
    user: &User,
    assignment: &Value,
) -> Result<bool, ActionError> {
    let sso = &ctx.clients().ssoadmin;
    let account = assignment["account_id"].as_str().unwrap_or_default();
    let set = assignment["permission_set_arn"]
        .as_str()
        .unwrap_or_default();
    let Some(started) = ctx
        .change(
            "sso",
            "CreateAccountAssignment",
            &[&user.user_id, account, set],
            json!({ "account_id": account, "permission_set_arn": set, "principal_id": user.user_id }),
            || {
                sso.create_account_assignment()
                    .instance_arn(&user.instance_arn)
                    .target_id(account)
                    .target_type(TargetType::AwsAccount)
                    .permission_set_arn(set)
                    .principal_type(PrincipalType::User)
                    .principal_id(&user.user_id)
                    .send()
            },
        )
        .await?
    else {
        return Ok(false);
    };
    let status = started.account_assignment_creation_status();
    let state = status.and_then(|s| s.status()).cloned();
    let request = status
        .and_then(|s| s.request_id())
        .unwrap_or_default()
        .to_owned();
    let what = format!(
        "re-creating the assignment of {} to account {account} ({set})",
        user.user_name
    );
    wait_for(ctx, user, &request, state, true, &what).await?;
    Ok(true)
}
