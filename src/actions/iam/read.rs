//! Reads shared by the IAM actions: paginated lists, principals, inline and attached
//! policies, tags, and the owner of an access key. Each call is journaled by the context.

use std::future::Future;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::request_id::RequestId;
use serde_json::{Map, Value, json};

use super::{ActionError, Principal, found, given, is_not_found, parse_document, refuse_temporary};
use crate::actions::StepContext;

/// Every page of a paginated IAM list call (`Marker`/`IsTruncated`), each page journaled as
/// its own `api_call`.
pub(crate) async fn all_pages<T, E, F, Fut, N>(
    ctx: &StepContext,
    operation: &'static str,
    targets: &[&str],
    mut call: F,
    next_marker: N,
) -> Result<Vec<T>, ActionError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    N: Fn(&T) -> Option<String>,
    T: RequestId,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut pages = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = ctx
            // A re-sent page asks for the same marker again.
            .call("iam", operation, targets, || call(marker.clone()))
            .await?;
        marker = next_marker(&page);
        pages.push(page);
        if marker.is_none() {
            return Ok(pages);
        }
    }
}

/// The next marker of a page: set only when the page says it is truncated.
pub(crate) fn next(truncated: bool, marker: Option<&str>) -> Option<String> {
    if truncated {
        marker.map(str::to_owned)
    } else {
        None
    }
}

/// The inline policy `name` of the principal, parsed; `None` when it has none of that name.
pub(crate) async fn get_inline_policy(
    ctx: &StepContext,
    principal: &Principal,
    name: &str,
) -> Result<Option<Value>, ActionError> {
    let iam = &ctx.clients().iam;
    let document = match principal {
        Principal::User(user) => found(
            ctx.call("iam", "GetUserPolicy", &[user, name], || {
                iam.get_user_policy()
                    .user_name(user)
                    .policy_name(name)
                    .send()
            })
            .await,
        )?
        .map(|out| parse_document(out.policy_document())),
        Principal::Role(role) => found(
            ctx.call("iam", "GetRolePolicy", &[role, name], || {
                iam.get_role_policy()
                    .role_name(role)
                    .policy_name(name)
                    .send()
            })
            .await,
        )?
        .map(|out| parse_document(out.policy_document())),
    };
    Ok(document)
}

/// Every inline policy of the principal: `{"name", "document"}` each.
pub(crate) async fn inline_policies(
    ctx: &StepContext,
    principal: &Principal,
) -> Result<Vec<Value>, ActionError> {
    let iam = &ctx.clients().iam;
    let names: Vec<String> = match principal {
        Principal::User(user) => all_pages(
            ctx,
            "ListUserPolicies",
            &[user],
            |marker| {
                iam.list_user_policies()
                    .user_name(user)
                    .set_marker(marker)
                    .send()
            },
            |p| next(p.is_truncated(), p.marker()),
        )
        .await?
        .iter()
        .flat_map(|p| p.policy_names().to_vec())
        .collect(),
        Principal::Role(role) => all_pages(
            ctx,
            "ListRolePolicies",
            &[role],
            |marker| {
                iam.list_role_policies()
                    .role_name(role)
                    .set_marker(marker)
                    .send()
            },
            |p| next(p.is_truncated(), p.marker()),
        )
        .await?
        .iter()
        .flat_map(|p| p.policy_names().to_vec())
        .collect(),
    };
    let mut policies = Vec::new();
    for name in names {
        // Deleted between the list and the read: nothing to record.
        if let Some(document) = get_inline_policy(ctx, principal, &name).await? {
            policies.push(json!({"name": name, "document": document}));
        }
    }
    Ok(policies)
}

/// The managed policies attached to the principal: `{"name", "arn"}` each.
pub(crate) async fn attached_policies(
    ctx: &StepContext,
    principal: &Principal,
) -> Result<Vec<Value>, ActionError> {
    let iam = &ctx.clients().iam;
    let entry = |a: &aws_sdk_iam::types::AttachedPolicy| json!({"name": a.policy_name(), "arn": a.policy_arn()});
    let policies = match principal {
        Principal::User(user) => all_pages(
            ctx,
            "ListAttachedUserPolicies",
            &[user],
            |marker| {
                iam.list_attached_user_policies()
                    .user_name(user)
                    .set_marker(marker)
                    .send()
            },
            |p| next(p.is_truncated(), p.marker()),
        )
        .await?
        .iter()
        .flat_map(|p| p.attached_policies())
        .map(entry)
        .collect(),
        Principal::Role(role) => all_pages(
            ctx,
            "ListAttachedRolePolicies",
            &[role],
            |marker| {
                iam.list_attached_role_policies()
                    .role_name(role)
                    .set_marker(marker)
                    .send()
            },
            |p| next(p.is_truncated(), p.marker()),
        )
        .await?
        .iter()
        .flat_map(|p| p.attached_policies())
        .map(entry)
        .collect(),
    };
    Ok(policies)
}

/// The principal's tags, key → value.
pub(crate) async fn principal_tags(
    ctx: &StepContext,
    principal: &Principal,
) -> Result<Map<String, Value>, ActionError> {
    let iam = &ctx.clients().iam;
    let tags: Vec<aws_sdk_iam::types::Tag> = match principal {
        Principal::User(user) => all_pages(
            ctx,
            "ListUserTags",
            &[user],
            |marker| {
                iam.list_user_tags()
                    .user_name(user)
                    .set_marker(marker)
                    .send()
            },
            |p| next(p.is_truncated(), p.marker()),
        )
        .await?
        .iter()
        .flat_map(|p| p.tags().to_vec())
        .collect(),
        Principal::Role(role) => all_pages(
            ctx,
            "ListRoleTags",
            &[role],
            |marker| {
                iam.list_role_tags()
                    .role_name(role)
                    .set_marker(marker)
                    .send()
            },
            |p| next(p.is_truncated(), p.marker()),
        )
        .await?
        .iter()
        .flat_map(|p| p.tags().to_vec())
        .collect(),
    };
    Ok(tags
        .into_iter()
        .map(|t| (t.key().to_owned(), json!(t.value())))
        .collect())
}

/// The user, or a clear not-found error.
pub(crate) async fn get_user(
    ctx: &StepContext,
    user: &str,
) -> Result<aws_sdk_iam::types::User, ActionError> {
    let output = ctx
        .call("iam", "GetUser", &[user], || {
            ctx.clients().iam.get_user().user_name(user).send()
        })
        .await
        .map_err(|e| not_found_as(e, || format!("IAM user {user} not found")))?;
    output
        .user()
        .cloned()
        .ok_or_else(|| ActionError::Failed(format!("iam:GetUser returned no user for {user}")))
}

/// The role, or a clear not-found error.
pub(crate) async fn get_role(
    ctx: &StepContext,
    role: &str,
) -> Result<aws_sdk_iam::types::Role, ActionError> {
    let output = ctx
        .call("iam", "GetRole", &[role], || {
            ctx.clients().iam.get_role().role_name(role).send()
        })
        .await
        .map_err(|e| not_found_as(e, || format!("IAM role {role} not found")))?;
    output
        .role()
        .cloned()
        .ok_or_else(|| ActionError::Failed(format!("iam:GetRole returned no role for {role}")))
}

/// A not-found error, said plainly (the AWS error stays in the journal's `api_call` record).
fn not_found_as(error: ActionError, message: impl FnOnce() -> String) -> ActionError {
    if is_not_found(&error) {
        ActionError::Failed(format!("{}: {error}", message()))
    } else {
        error
    }
}

/// Who owns an access key (`GetAccessKeyLastUsed` answers with the user name), with a clear
/// error for temporary (`ASIA…`) keys and keys this account does not have.
pub(crate) async fn access_key_owner(
    ctx: &StepContext,
    access_key_id: &str,
) -> Result<String, ActionError> {
    refuse_temporary(access_key_id)?;
    let output = ctx
        .call("iam", "GetAccessKeyLastUsed", &[access_key_id], || {
            ctx.clients()
                .iam
                .get_access_key_last_used()
                .access_key_id(access_key_id)
                .send()
        })
        .await
        .map_err(|e| {
            not_found_as(e, || {
                format!("access key {access_key_id} not found in this account")
            })
        })?;
    given(output.user_name()).map(str::to_owned).ok_or_else(|| {
        ActionError::Failed(format!(
            "iam:GetAccessKeyLastUsed did not name the user who owns {access_key_id}; give `user_name`"
        ))
    })
}
