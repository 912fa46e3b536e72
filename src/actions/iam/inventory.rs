//! `iam.inventory_principal`: what a user or role can do and how it signs in, read before any
//! change and kept as evidence.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{
    ActionError, Principal, access_key_owner, all_pages, attached_policies, date, found, get_role,
    get_user, given, inline_policies, is_service_linked, next, parse_document, principal_tags,
};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, PRINCIPAL_SCOPE, ScopeField, arn};
use crate::actions::{Action, Execute};

/// Inventory an IAM user or role before any change: access keys (with last use), inline and attached policies, groups, MFA devices, console password, tags — saved as an evidence file (SHA-256 in the journal) and returned as outputs. Give exactly one of `user_name`, `role_name` or `access_key_id`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryPrincipal {
    /// The IAM user (an empty string counts as not given).
    #[serde(default)]
    pub user_name: Option<String>,
    /// The IAM role (an empty string counts as not given).
    #[serde(default)]
    pub role_name: Option<String>,
    /// An access key id: the user who owns it is inventoried (found with
    /// GetAccessKeyLastUsed). With `user_name` too, the key must belong to that user.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Also list the IAM users, roles, customer managed policies, access keys and console
    /// passwords created since this time (RFC 3339, or `90d` for 90 days ago), labelled with
    /// whether CloudTrail shows the principal (or its key) created them. Empty: not listed.
    #[serde(default)]
    pub created_since: Option<String>,
}

impl Action for InventoryPrincipal {
    const NAME: &'static str = "iam.inventory_principal";
    const SUMMARY: &'static str = "save a user's or role's keys, policies, groups, MFA devices, console password and tags as evidence (SHA-256 in the journal)";
    const CALLS: &'static [&'static str] = &[
        "iam:GetAccessKeyLastUsed",
        "iam:GetUser",
        "iam:ListAccessKeys",
        "iam:ListUserPolicies",
        "iam:GetUserPolicy",
        "iam:ListAttachedUserPolicies",
        "iam:ListGroupsForUser",
        "iam:ListMFADevices",
        "iam:GetLoginProfile",
        "iam:ListUserTags",
        "iam:GetRole",
        "iam:ListRolePolicies",
        "iam:GetRolePolicy",
        "iam:ListAttachedRolePolicies",
        "iam:ListInstanceProfilesForRole",
        "iam:ListRoleTags",
        "iam:ListUsers",
        "iam:ListRoles",
        "iam:ListPolicies",
        "cloudtrail:LookupEvents",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[
        Grant::on(
            &[
                "iam:GetAccessKeyLastUsed",
                "iam:GetUser",
                "iam:ListAccessKeys",
                "iam:ListUserPolicies",
                "iam:GetUserPolicy",
                "iam:ListAttachedUserPolicies",
                "iam:ListGroupsForUser",
                "iam:ListMFADevices",
                "iam:GetLoginProfile",
                "iam:ListUserTags",
            ],
            &[arn::IAM_USER],
        ),
        Grant::on(
            &[
                "iam:GetRole",
                "iam:ListRolePolicies",
                "iam:GetRolePolicy",
                "iam:ListAttachedRolePolicies",
                "iam:ListInstanceProfilesForRole",
                "iam:ListRoleTags",
            ],
            &[arn::IAM_ROLE],
        ),
        // `created_since`: every user's keys and console password, not only the principal's.
        Grant::on(
            &["iam:ListAccessKeys", "iam:GetLoginProfile"],
            &[arn::ANY_USER],
        ),
    ];
    const SCOPE: &'static [ScopeField] = PRINCIPAL_SCOPE;
}

impl Execute for InventoryPrincipal {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let principal = self.principal(ctx).await?;
        let mut inventory = match &principal {
            Principal::User(user) => user_inventory(ctx, user).await?,
            Principal::Role(role) => role_inventory(ctx, role).await?,
        };
        if let Some(key) = given(self.access_key_id.as_deref()) {
            let entry = inventory["access_keys"]
                .as_array()
                .and_then(|keys| keys.iter().find(|k| k["access_key_id"] == key))
                .cloned()
                .ok_or_else(|| {
                    ActionError::Failed(format!(
                        "access key {key} is not among the access keys of {}",
                        principal.describe()
                    ))
                })?;
            inventory.insert("access_key_id".into(), json!(key));
            inventory.insert("access_key".into(), entry);
        }
        if let Some(since) = given(self.created_since.as_deref()) {
            let since = super::persistence::parse_since(since)?;
            let key = given(self.access_key_id.as_deref());
            let created = super::persistence::created_since(ctx, since, &principal, key).await?;
            inventory.insert("created_since".into(), created);
        }
        let mut bytes = serde_json::to_vec_pretty(&inventory)
            .map_err(|e| ActionError::Failed(format!("failed to serialize the inventory: {e}")))?;
        bytes.push(b'\n');
        let name = format!("iam-{}-{}.json", principal.kind(), principal.name());
        let artifact = ctx.write_evidence(&name, &bytes)?;
        inventory.insert("artifact".into(), artifact);
        inventory.insert("changed".into(), json!(false));
        Ok(Value::Object(inventory))
    }
}

impl InventoryPrincipal {
    async fn principal(&self, ctx: &StepContext) -> Result<Principal, ActionError> {
        let Some(key) = given(self.access_key_id.as_deref()) else {
            return Principal::from_input(self.user_name.as_deref(), self.role_name.as_deref());
        };
        if given(self.role_name.as_deref()).is_some() {
            return Err(ActionError::Failed(
                "`access_key_id` belongs to a user: give it without `role_name`".into(),
            ));
        }
        let owner = access_key_owner(ctx, key).await?;
        if let Some(user) = given(self.user_name.as_deref())
            && user != owner
        {
            return Err(ActionError::Failed(format!(
                "access key {key} belongs to IAM user {owner}, not {user}"
            )));
        }
        Ok(Principal::User(owner))
    }
}

async fn user_inventory(ctx: &StepContext, user: &str) -> Result<Map<String, Value>, ActionError> {
    let iam = &ctx.clients().iam;
    let details = get_user(ctx, user).await?;

    let mut access_keys = Vec::new();
    let pages = all_pages(
        ctx,
        "ListAccessKeys",
        &[user],
        |marker| {
            iam.list_access_keys()
                .user_name(user)
                .set_marker(marker)
                .send()
        },
        |p| next(p.is_truncated(), p.marker()),
    )
    .await?;
    for key in pages.iter().flat_map(|p| p.access_key_metadata()) {
        let Some(id) = key.access_key_id() else {
            continue;
        };
        let used = ctx
            .call("iam", "GetAccessKeyLastUsed", &[id], || {
                iam.get_access_key_last_used().access_key_id(id).send()
            })
            .await?;
        let last_used = used.access_key_last_used().map(|u| {
            json!({
                "date": u.last_used_date().map(date),
                "service": u.service_name(),
                "region": u.region(),
            })
        });
        access_keys.push(json!({
            "access_key_id": id,
            "status": key.status().map(|s| s.as_str()),
            "created": key.create_date().map(date),
            "last_used": last_used,
        }));
    }

    let user_principal = Principal::User(user.to_owned());
    let inline = inline_policies(ctx, &user_principal).await?;
    let attached = attached_policies(ctx, &user_principal).await?;

    let groups: Vec<Value> = all_pages(
        ctx,
        "ListGroupsForUser",
        &[user],
        |marker| {
            iam.list_groups_for_user()
                .user_name(user)
                .set_marker(marker)
                .send()
        },
        |p| next(p.is_truncated(), p.marker()),
    )
    .await?
    .iter()
    .flat_map(|p| p.groups())
    .map(|g| json!({"name": g.group_name(), "arn": g.arn()}))
    .collect();

    let mfa_devices: Vec<Value> = all_pages(
        ctx,
        "ListMFADevices",
        &[user],
        |marker| {
            iam.list_mfa_devices()
                .user_name(user)
                .set_marker(marker)
                .send()
        },
        |p| next(p.is_truncated(), p.marker()),
    )
    .await?
    .iter()
    .flat_map(|p| p.mfa_devices())
    .map(|d| json!({"serial_number": d.serial_number(), "enabled": date(d.enable_date())}))
    .collect();

    // No login profile answers NoSuchEntity: the user has no console password.
    let login_profile = found(
        ctx.call("iam", "GetLoginProfile", &[user], || {
            iam.get_login_profile().user_name(user).send()
        })
        .await,
    )?
    .and_then(|out| out.login_profile().cloned())
    .map(|p| {
        json!({
            "created": date(p.create_date()),
            "password_reset_required": p.password_reset_required(),
        })
    });

    let tags = principal_tags(ctx, &user_principal).await?;

    let mut out = user_principal.output();
    out.insert("arn".into(), json!(details.arn()));
    out.insert("user_id".into(), json!(details.user_id()));
    out.insert("path".into(), json!(details.path()));
    out.insert("created".into(), date(details.create_date()));
    out.insert(
        "password_last_used".into(),
        json!(details.password_last_used().map(date)),
    );
    out.insert(
        "permissions_boundary".into(),
        json!(
            details
                .permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn())
        ),
    );
    out.insert(
        "active_access_keys".into(),
        json!(
            access_keys
                .iter()
                .filter(|k| k["status"] == "Active")
                .count()
        ),
    );
    out.insert("access_keys".into(), json!(access_keys));
    out.insert("inline_policies".into(), json!(inline));
    out.insert("attached_policies".into(), json!(attached));
    out.insert("groups".into(), json!(groups));
    out.insert("mfa_devices".into(), json!(mfa_devices));
    out.insert("has_login_profile".into(), json!(login_profile.is_some()));
    out.insert("login_profile".into(), json!(login_profile));
    out.insert("tags".into(), Value::Object(tags));
    Ok(out)
}

async fn role_inventory(ctx: &StepContext, role: &str) -> Result<Map<String, Value>, ActionError> {
    let iam = &ctx.clients().iam;
    let details = get_role(ctx, role).await?;

    let role_principal = Principal::Role(role.to_owned());
    let inline = inline_policies(ctx, &role_principal).await?;
    let attached = attached_policies(ctx, &role_principal).await?;

    let instance_profiles: Vec<Value> = all_pages(
        ctx,
        "ListInstanceProfilesForRole",
        &[role],
        |marker| {
            iam.list_instance_profiles_for_role()
                .role_name(role)
                .set_marker(marker)
                .send()
        },
        |p| next(p.is_truncated(), p.marker()),
    )
    .await?
    .iter()
    .flat_map(|p| p.instance_profiles())
    .map(|p| json!({"name": p.instance_profile_name(), "arn": p.arn()}))
    .collect();

    let tags = principal_tags(ctx, &role_principal).await?;

    let mut out = role_principal.output();
    out.insert("arn".into(), json!(details.arn()));
    out.insert("role_id".into(), json!(details.role_id()));
    out.insert("path".into(), json!(details.path()));
    out.insert("service_linked".into(), json!(is_service_linked(&details)));
    out.insert("created".into(), date(details.create_date()));
    out.insert("description".into(), json!(details.description()));
    out.insert(
        "max_session_duration".into(),
        json!(details.max_session_duration()),
    );
    out.insert(
        "assume_role_policy".into(),
        json!(details.assume_role_policy_document().map(parse_document)),
    );
    out.insert(
        "last_used".into(),
        json!(details.role_last_used().map(|u| json!({
            "date": u.last_used_date().map(date),
            "region": u.region(),
        }))),
    );
    out.insert(
        "permissions_boundary".into(),
        json!(
            details
                .permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn())
        ),
    );
    out.insert("inline_policies".into(), json!(inline));
    out.insert("attached_policies".into(), json!(attached));
    out.insert("instance_profiles".into(), json!(instance_profiles));
    out.insert("tags".into(), Value::Object(tags));
    Ok(out)
}
