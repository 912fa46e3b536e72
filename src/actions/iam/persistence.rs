//! Persistence after a credential leak: the IAM users, roles, customer managed policies, access
//! keys and console passwords created since a time, and — where CloudTrail's `LookupEvents` can
//! show it (90 days of management events, in this region) — which of them the compromised
//! principal created, labelled as such. Read only: the runbook reports them, a person decides.

use std::collections::BTreeSet;

use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use serde_json::{Value, json};

use super::{ActionError, Principal, all_pages, date, found, is_service_linked, next};
use crate::actions::StepContext;

/// The IAM calls that create something an attacker can come back through.
const CREATING: &[&str] = &[
    "CreateUser",
    "CreateRole",
    "CreatePolicy",
    "CreateAccessKey",
    "CreateLoginProfile",
];

/// `since` as given: RFC 3339, or `<n>d` for that many days before now.
pub fn parse_since(since: &str) -> Result<DateTime, ActionError> {
    let since = since.trim();
    if let Some(days) = since.strip_suffix('d').and_then(|d| d.parse::<u64>().ok()) {
        let now = std::time::SystemTime::now();
        let then = now
            .checked_sub(std::time::Duration::from_secs(days * 86_400))
            .unwrap_or(std::time::UNIX_EPOCH);
        return Ok(DateTime::from(then));
    }
    DateTime::from_str(since, Format::DateTime).map_err(|e| {
        ActionError::Input(format!(
            "`created_since` must be RFC 3339 (2026-11-30T00:00:00Z) or days (`90d`), not {since:?}: {e}"
        ))
    })
}

/// What was created since `since`, each item labelled `created_by_principal` (true, false, or
/// null when CloudTrail could not tell).
pub async fn created_since(
    ctx: &StepContext,
    since: DateTime,
    principal: &Principal,
    access_key_id: Option<&str>,
) -> Result<Value, ActionError> {
    let iam = &ctx.clients().iam;
    let recent = |d: Option<&DateTime>| d.is_some_and(|d| d.secs() >= since.secs());
    let users_pages = all_pages(
        ctx,
        "ListUsers",
        &[],
        |m| iam.list_users().set_marker(m).send(),
        |p| next(p.is_truncated(), p.marker()),
    )
    .await?;
    let all_users: Vec<&aws_sdk_iam::types::User> =
        users_pages.iter().flat_map(|p| p.users()).collect();
    let mut users = Vec::new();
    let mut keys = Vec::new();
    let mut passwords = Vec::new();
    for user in &all_users {
        let name = user.user_name();
        if recent(Some(user.create_date())) {
            users.push(json!({ "user_name": name, "arn": user.arn(), "created": date(user.create_date()) }));
        }
        // A new key or password on an old user is the usual way back in.
        let pages = all_pages(
            ctx,
            "ListAccessKeys",
            &[name],
            |m| iam.list_access_keys().user_name(name).set_marker(m).send(),
            |p| next(p.is_truncated(), p.marker()),
        )
        .await?;
        for key in pages.iter().flat_map(|p| p.access_key_metadata()) {
            if recent(key.create_date()) {
                keys.push(json!({
                    "user_name": name,
                    "access_key_id": key.access_key_id(),
                    "status": key.status().map(|s| s.as_str()),
                    "created": key.create_date().map(date),
                }));
            }
        }
        let profile = found(
            ctx.call("iam", "GetLoginProfile", &[name], || {
                iam.get_login_profile().user_name(name).send()
            })
            .await,
        )?;
        if let Some(created) = profile
            .as_ref()
            .and_then(|p| p.login_profile())
            .map(|l| l.create_date())
            && recent(Some(created))
        {
            passwords.push(json!({ "user_name": name, "created": date(created) }));
        }
    }
    let role_pages = all_pages(
        ctx,
        "ListRoles",
        &[],
        |m| iam.list_roles().set_marker(m).send(),
        |p| next(p.is_truncated(), p.marker()),
    )
    .await?;
    let roles: Vec<Value> = role_pages
        .iter()
        .flat_map(|p| p.roles())
        .filter(|r| !is_service_linked(r) && recent(Some(r.create_date())))
        .map(|r| json!({ "role_name": r.role_name(), "arn": r.arn(), "created": date(r.create_date()) }))
        .collect();
    let policy_pages = all_pages(
        ctx,
        "ListPolicies",
        &[],
        |m| {
            iam.list_policies()
                .scope(aws_sdk_iam::types::PolicyScopeType::Local)
                .set_marker(m)
                .send()
        },
        |p| next(p.is_truncated(), p.marker()),
    )
    .await?;
    let policies: Vec<Value> = policy_pages
        .iter()
        .flat_map(|p| p.policies())
        .filter(|p| recent(p.create_date()))
        .map(|p| json!({ "policy_name": p.policy_name(), "arn": p.arn(), "created": p.create_date().map(date) }))
        .collect();

    // Best effort, bounded: the SDK's own retries only (LookupEvents allows 2 calls a second, and
    // a containment must not wait on a label), then the report says CloudTrail was not read.
    let once = ctx.sending_once();
    let (by_principal, cloudtrail) = match created_by(&once, since, principal, access_key_id).await
    {
        Ok((made, events)) => (Some(made), json!({ "available": true, "events": events })),
        // CloudTrail not readable here (no permission, throttled, not implemented): the items
        // stay, unlabelled, and the report says why.
        Err(error) => (
            None,
            json!({ "available": false, "error": error.to_string() }),
        ),
    };
    let label = |kind: &str, key: &str, mut items: Vec<Value>| -> Vec<Value> {
        for item in &mut items {
            let name = item[key].as_str().unwrap_or_default().to_owned();
            item["created_by_principal"] = match &by_principal {
                Some(made) => json!(made.contains(&(kind.to_owned(), name))),
                None => Value::Null,
            };
        }
        items
    };
    let users = label("user", "user_name", users);
    let roles = label("role", "role_name", roles);
    let policies = label("policy", "policy_name", policies);
    let keys = label("access_key", "access_key_id", keys);
    let passwords = label("login_profile", "user_name", passwords);
    let by = [&users, &roles, &policies, &keys, &passwords]
        .iter()
        .flat_map(|l| l.iter())
        .filter(|i| i["created_by_principal"] == true)
        .count();
    Ok(json!({
        "since": date(&since),
        "users": users,
        "roles": roles,
        "policies": policies,
        "access_keys": keys,
        "login_profiles": passwords,
        "created_by_principal": by,
        "cloudtrail": cloudtrail,
    }))
}

/// `(kind, name)` of what the principal (or its key) created since `since`, from CloudTrail.
async fn created_by(
    ctx: &StepContext,
    since: DateTime,
    principal: &Principal,
    access_key_id: Option<&str>,
) -> Result<(BTreeSet<(String, String)>, usize), ActionError> {
    let attribute = match access_key_id {
        Some(key) => LookupAttribute::builder()
            .attribute_key(LookupAttributeKey::AccessKeyId)
            .attribute_value(key),
        None => LookupAttribute::builder()
            .attribute_key(LookupAttributeKey::Username)
            .attribute_value(principal.name()),
    }
    .build()
    .map_err(|e| ActionError::Failed(format!("cannot build the CloudTrail lookup: {e}")))?;
    let trail = &ctx.clients().cloudtrail;
    let mut made = BTreeSet::new();
    let mut events = 0;
    let mut token: Option<String> = None;
    loop {
        let page = ctx
            .call("cloudtrail", "LookupEvents", &[principal.name()], || {
                trail
                    .lookup_events()
                    .lookup_attributes(attribute.clone())
                    .start_time(since)
                    .set_next_token(token.clone())
                    .send()
            })
            .await?;
        for event in page.events() {
            events += 1;
            let name = event.event_name().unwrap_or_default();
            if !CREATING.contains(&name) {
                continue;
            }
            let detail: Value = event
                .cloud_trail_event()
                .and_then(|e| serde_json::from_str(e).ok())
                .unwrap_or(Value::Null);
            let request = &detail["requestParameters"];
            let made_item = match name {
                "CreateUser" => request["userName"].as_str().map(|n| ("user", n.to_owned())),
                "CreateRole" => request["roleName"].as_str().map(|n| ("role", n.to_owned())),
                "CreatePolicy" => request["policyName"]
                    .as_str()
                    .map(|n| ("policy", n.to_owned())),
                "CreateAccessKey" => detail["responseElements"]["accessKey"]["accessKeyId"]
                    .as_str()
                    .map(|n| ("access_key", n.to_owned())),
                "CreateLoginProfile" => request["userName"]
                    .as_str()
                    .map(|n| ("login_profile", n.to_owned())),
                _ => None,
            };
            if let Some((kind, name)) = made_item {
                made.insert((kind.to_owned(), name));
            }
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok((made, events));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_date_or_days() {
        assert_eq!(
            parse_since("2026-11-30T00:00:00Z").unwrap().secs(),
            1_795_996_800
        );
        let ninety = parse_since("90d").unwrap().secs();
        let now = DateTime::from(std::time::SystemTime::now()).secs();
        assert!((now - ninety - 90 * 86_400).abs() < 5);
        assert!(parse_since("last week").is_err());
    }
}
