//! `identitycenter.remove_user_access`.

use aws_sdk_ssoadmin::types::{PrincipalType, StatusValues, TargetType};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::user::{User, assignments, find, memberships};
use super::{ActionError, StepContext};
use crate::actions::grants::Grant;
use crate::actions::{Action, Execute, Mode};

/// How long a deletion or creation of an assignment is waited for (it is asynchronous).
pub(super) const ASSIGNMENT_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Take an IAM Identity Center user's access away: delete each direct account assignment (waiting for each deletion) and remove each group membership. Records both, for the release to re-create exactly them. Assignments do not end sessions already open, and an external identity provider may re-sync group memberships (README).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveUserAccess {
    pub user_name: String,
    #[serde(default)]
    pub instance_arn: Option<String>,
}

impl Action for RemoveUserAccess {
    const NAME: &'static str = "identitycenter.remove_user_access";
    const SUMMARY: &'static str =
        "delete an Identity Center user's account assignments and group memberships; records both";
    const CALLS: &'static [&'static str] = &[
        "sso:ListInstances",
        "identitystore:GetUserId",
        "sso:ListAccountAssignmentsForPrincipal",
        "identitystore:ListGroupMembershipsForMember",
        "sso:DeleteAccountAssignment",
        "sso:DescribeAccountAssignmentDeletionStatus",
        "identitystore:DeleteGroupMembership",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[];
}

impl Execute for RemoveUserAccess {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let user = find(ctx, &self.user_name, self.instance_arn.as_deref()).await?;
        let assigned = assignments(ctx, &user).await?;
        let groups = memberships(ctx, &user).await?;
        let mut out = json!({
            "user_name": user.user_name,
            "user_id": user.user_id,
            "instance_arn": user.instance_arn,
            "identity_store_id": user.identity_store_id,
            "before": { "account_assignments": assigned, "group_memberships": groups },
            "after": { "account_assignments": [], "group_memberships": [] },
        });
        let mut sent = false;
        for assignment in &assigned {
            sent |= delete_assignment(ctx, &user, assignment)
                .await
                .map_err(|e| e.with_outputs(out.clone()))?;
        }
        let ids = &ctx.clients().identitystore;
        for membership in &groups {
            let id = membership["membership_id"].as_str().unwrap_or_default();
            sent |= ctx
                .change(
                    "identitystore",
                    "DeleteGroupMembership",
                    &[id],
                    json!({ "membership_id": id, "group_id": membership["group_id"] }),
                    || {
                        ids.delete_group_membership()
                            .identity_store_id(&user.identity_store_id)
                            .membership_id(id)
                            .send()
                    },
                )
                .await
                .map_err(|e| e.with_outputs(out.clone()))?
                .is_some();
        }
        out["changed"] = json!(sent);
        if (!assigned.is_empty() || !groups.is_empty()) && ctx.mode == Mode::DryRun {
            out["dry_run"] = json!(true);
        }
        Ok(out)
    }
}

async fn delete_assignment(
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
            "DeleteAccountAssignment",
            &[&user.user_id, account, set],
            json!({ "account_id": account, "permission_set_arn": set, "principal_id": user.user_id }),
            || {
                sso.delete_account_assignment()
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
    let status = started.account_assignment_deletion_status();
    let state = status.and_then(|s| s.status()).cloned();
    let request = status
        .and_then(|s| s.request_id())
        .unwrap_or_default()
        .to_owned();
    let what = format!(
        "deleting the assignment of {} to account {account} ({set})",
        user.user_name
    );
    wait_for(ctx, user, &request, state, false, &what).await?;
    Ok(true)
}

/// Waits for an assignment's creation or deletion (asynchronous) to end; an error when it
/// failed or is still going after [`ASSIGNMENT_WAIT`].
pub(super) async fn wait_for(
    ctx: &StepContext,
    user: &User,
    request: &str,
    mut state: Option<StatusValues>,
    creation: bool,
    what: &str,
) -> Result<(), ActionError> {
    let sso = &ctx.clients().ssoadmin;
    let deadline = tokio::time::Instant::now() + ASSIGNMENT_WAIT;
    let mut round = 0;
    while state == Some(StatusValues::InProgress) {
        if tokio::time::Instant::now() >= deadline {
            return Err(ActionError::Failed(format!(
                "{what}: still in progress after {}s (request {request})",
                ASSIGNMENT_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(crate::actions::ec2::poll_delay(round)).await;
        round += 1;
        state = if creation {
            ctx.call(
                "sso",
                "DescribeAccountAssignmentCreationStatus",
                &[request],
                || {
                    sso.describe_account_assignment_creation_status()
                        .instance_arn(&user.instance_arn)
                        .account_assignment_creation_request_id(request)
                        .send()
                },
            )
            .await?
            .account_assignment_creation_status()
            .and_then(|s| s.status())
            .cloned()
        } else {
            ctx.call(
                "sso",
                "DescribeAccountAssignmentDeletionStatus",
                &[request],
                || {
                    sso.describe_account_assignment_deletion_status()
                        .instance_arn(&user.instance_arn)
                        .account_assignment_deletion_request_id(request)
                        .send()
                },
            )
            .await?
            .account_assignment_deletion_status()
            .and_then(|s| s.status())
            .cloned()
        };
    }
    if state == Some(StatusValues::Failed) {
        return Err(ActionError::Failed(format!(
            "{what}: failed (request {request})"
        )));
    }
    Ok(())
}
