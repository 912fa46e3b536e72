//! The Identity Center instance and the user, and what the user holds: direct account
//! assignments and group memberships.

use aws_sdk_identitystore::types::{AlternateIdentifier, UniqueAttribute};
use aws_sdk_ssoadmin::types::PrincipalType;
use aws_smithy_types::Document;
use serde_json::{Value, json};

use super::{ActionError, StepContext};

/// The instance (its ARN and identity store) and the user's id.
#[derive(Debug, Clone)]
pub struct User {
    pub instance_arn: String,
    pub identity_store_id: String,
    pub user_id: String,
    pub user_name: String,
}

/// Finds the instance (the given one, or the account's only one) and the user by name.
pub async fn find(
    ctx: &StepContext,
    user_name: &str,
    instance_arn: Option<&str>,
) -> Result<User, ActionError> {
    let sso = &ctx.clients().ssoadmin;
    let listed = ctx
        .call("sso", "ListInstances", &[], || sso.list_instances().send())
        .await?;
    let instances = listed.instances();
    let instance = match instance_arn.map(str::trim).filter(|a| !a.is_empty()) {
        Some(arn) => instances
            .iter()
            .find(|i| i.instance_arn() == Some(arn))
            .ok_or_else(|| {
                ActionError::Failed(format!(
                    "Identity Center instance {arn} is not in this account and region; run in the \
                 management or delegated administrator account, in Identity Center's home region"
                ))
            })?,
        None => match instances {
            [one] => one,
            [] => {
                return Err(ActionError::Failed(
                    "no IAM Identity Center instance in this account and region; run in the \
                     management or delegated administrator account, in Identity Center's home region"
                        .into(),
                ));
            }
            _ => {
                return Err(ActionError::Input(
                    "several Identity Center instances: give `instance_arn`".into(),
                ));
            }
        },
    };
    let instance_arn = instance.instance_arn().unwrap_or_default().to_owned();
    let store = instance.identity_store_id().unwrap_or_default().to_owned();
    let attribute = UniqueAttribute::builder()
        .attribute_path("userName")
        .attribute_value(Document::String(user_name.to_owned()))
        .build()
        .map_err(|e| ActionError::Failed(format!("cannot build the user lookup: {e}")))?;
    let ids = &ctx.clients().identitystore;
    let found = crate::actions::error::found(
        ctx.call("identitystore", "GetUserId", &[user_name], || {
            ids.get_user_id()
                .identity_store_id(&store)
                .alternate_identifier(AlternateIdentifier::UniqueAttribute(attribute.clone()))
                .send()
        })
        .await,
    )?
    .ok_or_else(|| {
        ActionError::Failed(format!(
            "no Identity Center user named {user_name} in identity store {store}"
        ))
    })?;
    Ok(User {
        instance_arn,
        identity_store_id: store,
        user_id: found.user_id().to_owned(),
        user_name: user_name.to_owned(),
    })
}

/// The user's direct account assignments: `{account_id, permission_set_arn}` each.
pub async fn assignments(ctx: &StepContext, user: &User) -> Result<Vec<Value>, ActionError> {
    let sso = &ctx.clients().ssoadmin;
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = ctx
            .call(
                "sso",
                "ListAccountAssignmentsForPrincipal",
                &[&user.user_id],
                || {
                    sso.list_account_assignments_for_principal()
                        .instance_arn(&user.instance_arn)
                        .principal_id(&user.user_id)
                        .principal_type(PrincipalType::User)
                        .set_next_token(token.clone())
                        .send()
                },
            )
            .await?;
        for a in page.account_assignments() {
            found.push(json!({
                "account_id": a.account_id(),
                "permission_set_arn": a.permission_set_arn(),
            }));
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    found.sort_by_key(|a| a.to_string());
    Ok(found)
}

/// The user's group memberships: `{group_id, membership_id}` each.
pub async fn memberships(ctx: &StepContext, user: &User) -> Result<Vec<Value>, ActionError> {
    let ids = &ctx.clients().identitystore;
    let member = aws_sdk_identitystore::types::MemberId::UserId(user.user_id.clone());
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = ctx
            .call(
                "identitystore",
                "ListGroupMembershipsForMember",
                &[&user.user_id],
                || {
                    ids.list_group_memberships_for_member()
                        .identity_store_id(&user.identity_store_id)
                        .member_id(member.clone())
                        .set_next_token(token.clone())
                        .send()
                },
            )
            .await?;
        for m in page.group_memberships() {
            found.push(json!({ "group_id": m.group_id(), "membership_id": m.membership_id() }));
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    found.sort_by_key(|m| m["group_id"].to_string());
    Ok(found)
}
