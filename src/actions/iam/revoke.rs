//! `iam.revoke_role_sessions` and `iam.revoke_user_sessions`: deny every session issued before
//! a cutoff, with the inline policy the IAM console's "Revoke active sessions" writes
//! (`AWSRevokeOlderSessions`, `DateLessThan aws:TokenIssueTime`).
//!
//! The cutoff is fixed once. The policy's statement carries a `Sid` derived from the case (or,
//! without one, from the step's idempotency key); when the principal already has the policy
//! with that `Sid`, its cutoff is reused. So a step resumed after a crash — even between the
//! change and its journal record — keeps its first cutoff, and running the runbook again for
//! the same case changes nothing.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{
    ActionError, POLICY_VERSION, Principal, all_pages, get_inline_policy, get_role, get_user,
    given, is_service_linked, next, put_inline_policy,
};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, ROLE_SCOPE, ScopeField, USER_SCOPE, arn};
use crate::actions::{Action, Execute};

/// The policy name the IAM console uses; kept so responders recognise it.
pub const POLICY_NAME: &str = "AWSRevokeOlderSessions";
/// Prefix of the statement ids firebreak writes.
const SID_PREFIX: &str = "FirebreakRevoke";

/// Deny every session of the role issued before now (inline policy `AWSRevokeOlderSessions`, as the IAM console writes it). The cutoff is fixed when the step first runs and reused on resume and, with `case_id`, by every later run for the same case. Refuses service-linked roles. Warns how many instance profiles share the role: every instance using them loses its current credentials too.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRoleSessions {
    pub role_name: String,
    /// The case. With it, the cutoff is kept per case (a second run for the same case reuses
    /// it and changes nothing); without it (or empty), per step of this run.
    #[serde(default)]
    pub case_id: Option<String>,
}

impl Action for RevokeRoleSessions {
    const NAME: &'static str = "iam.revoke_role_sessions";
    const SUMMARY: &'static str = "deny every session of a role issued before a cutoff fixed at the first run (AWSRevokeOlderSessions); refuses service-linked roles; reports the blast radius";
    const CALLS: &'static [&'static str] = &[
        "iam:GetRole",
        "iam:ListInstanceProfilesForRole",
        "iam:GetRolePolicy",
        "iam:PutRolePolicy",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[Grant::on(
        &[
            "iam:GetRole",
            "iam:ListInstanceProfilesForRole",
            "iam:GetRolePolicy",
            "iam:PutRolePolicy",
        ],
        &[arn::IAM_ROLE],
    )];
    const SCOPE: &'static [ScopeField] = ROLE_SCOPE;
}

impl Execute for RevokeRoleSessions {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let role = self.role_name.as_str();
        let details = get_role(ctx, role).await?;
        if is_service_linked(&details) {
            return Err(ActionError::Refused(format!(
                "role {role} is a service-linked role (path {}): AWS owns its policies, so its \
                 sessions cannot be revoked with an inline policy; contain the service that uses \
                 it instead. Nothing was changed.",
                details.path()
            )));
        }
        let iam = &ctx.clients().iam;
        let profiles: Vec<String> = all_pages(
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
        .map(|p| p.instance_profile_name().to_owned())
        .collect();
        let principal = Principal::Role(role.to_owned());
        let mut outputs = revoke(ctx, &principal, self.case_id.as_deref()).await?;
        outputs.insert(
            "instance_profiles_sharing_role".into(),
            json!(profiles.len()),
        );
        outputs.insert("instance_profiles".into(), json!(profiles));
        outputs.insert(
            "warning".into(),
            json!(blast_radius_warning(role, &profiles)),
        );
        Ok(Value::Object(outputs))
    }
}

/// Deny every temporary credential the user minted (GetSessionToken, GetFederationToken) before now: inline policy `AWSRevokeOlderSessions`. Long-term access keys carry no token issue time and are not affected: disable them with `iam.disable_access_key`. The cutoff is fixed as for `iam.revoke_role_sessions`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeUserSessions {
    pub user_name: String,
    /// The case. With it, the cutoff is kept per case (a second run for the same case reuses
    /// it and changes nothing); without it (or empty), per step of this run.
    #[serde(default)]
    pub case_id: Option<String>,
}

impl Action for RevokeUserSessions {
    const NAME: &'static str = "iam.revoke_user_sessions";
    const SUMMARY: &'static str = "deny every temporary credential a user minted before a cutoff fixed at the first run (AWSRevokeOlderSessions)";
    const CALLS: &'static [&'static str] =
        &["iam:GetUser", "iam:GetUserPolicy", "iam:PutUserPolicy"];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[Grant::on(
        &["iam:GetUser", "iam:GetUserPolicy", "iam:PutUserPolicy"],
        &[arn::IAM_USER],
    )];
    const SCOPE: &'static [ScopeField] = USER_SCOPE;
}

impl Execute for RevokeUserSessions {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let user = self.user_name.as_str();
        get_user(ctx, user).await?;
        let principal = Principal::User(user.to_owned());
        Ok(Value::Object(
            revoke(ctx, &principal, self.case_id.as_deref()).await?,
        ))
    }
}

fn blast_radius_warning(role: &str, profiles: &[String]) -> Option<String> {
    if profiles.is_empty() {
        return None;
    }
    Some(format!(
        "{} instance profile(s) use role {role} ({}): every instance launched with them is \
         denied with its current role credentials too, until it picks up credentials issued \
         after the cutoff",
        profiles.len(),
        profiles.join(", ")
    ))
}

/// Puts the revoke policy unless the principal already has it for this case or step.
async fn revoke(
    ctx: &StepContext,
    principal: &Principal,
    case_id: Option<&str>,
) -> Result<Map<String, Value>, ActionError> {
    let scope = match given(case_id) {
        Some(case) => format!("case:{case}"),
        None => format!("step:{}", ctx.idempotency_key),
    };
    let sid = statement_id(&scope);
    let previous = get_inline_policy(ctx, principal, POLICY_NAME).await?;
    let (cutoff, source) = match previous.as_ref().and_then(|doc| cutoff_of(doc, &sid)) {
        Some(cutoff) => (cutoff, "existing policy of the same case or step"),
        None => (now_utc(), "now"),
    };
    let document = policy_document(&sid, &cutoff);
    let mut outputs = principal.output();
    outputs.insert("policy_name".into(), json!(POLICY_NAME));
    outputs.insert("statement_id".into(), json!(sid));
    outputs.insert("cutoff".into(), json!(cutoff));
    outputs.insert("cutoff_from".into(), json!(source));
    outputs.insert("previous_policy".into(), json!(previous));
    outputs.insert("changed".into(), json!(false));
    if previous.as_ref() == Some(&document) {
        return Ok(outputs);
    }
    if put_inline_policy(ctx, principal, POLICY_NAME, &document).await? {
        outputs.insert("changed".into(), json!(true));
    } else {
        outputs.insert("dry_run".into(), json!(true));
        outputs.insert("would_put".into(), document);
    }
    Ok(outputs)
}

/// `FirebreakRevoke` + the scope's letters and digits (readable in the console) + 8 hex digits
/// of its SHA-256 (so scopes that differ only in punctuation differ). A `Sid` allows only
/// `[A-Za-z0-9]`.
fn statement_id(scope: &str) -> String {
    use sha2::{Digest, Sha256};
    let readable: String = scope
        .split_once(':')
        .map_or(scope, |(_, value)| value)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect();
    let digest = hex::encode(Sha256::digest(scope.as_bytes()));
    format!("{SID_PREFIX}{readable}{}", &digest[..8])
}

/// The document the IAM console writes, with firebreak's statement id.
pub(super) fn policy_document(sid: &str, cutoff: &str) -> Value {
    json!({
        "Version": POLICY_VERSION,
        "Statement": [{
            "Sid": sid,
            "Effect": "Deny",
            "Action": ["*"],
            "Resource": ["*"],
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff}},
        }],
    })
}

/// The cutoff of the statement with this `Sid`, if the document has one.
fn cutoff_of(document: &Value, sid: &str) -> Option<String> {
    let statements = match &document["Statement"] {
        Value::Array(items) => items.iter().collect::<Vec<_>>(),
        single @ Value::Object(_) => vec![single],
        _ => return None,
    };
    statements
        .into_iter()
        .find(|s| s["Sid"] == sid)
        .and_then(|s| s["Condition"]["DateLessThan"]["aws:TokenIssueTime"].as_str())
        .map(str::to_owned)
}

/// Now, UTC, RFC 3339 to the second (as the console writes it).
fn now_utc() -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .expect("a UTC timestamp formats")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_ids_are_alphanumeric_and_distinct() {
        let a = statement_id("step:20261128T100127Z-3f9a2c.revoke");
        assert!(
            a.starts_with("FirebreakRevoke20261128T100127Z3f9a2crevoke"),
            "{a}"
        );
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(statement_id("case:a-b"), statement_id("case:ab"));
        assert_ne!(statement_id("case:x"), statement_id("step:x"));
        assert_eq!(statement_id("case:x"), statement_id("case:x"));
        assert!(statement_id(&format!("case:{}", "x".repeat(500))).len() < 100);
    }

    #[test]
    fn the_cutoff_is_read_back_only_from_our_statement() {
        let doc = policy_document("FirebreakRevokeA", "2026-11-28T10:00:00Z");
        assert_eq!(
            cutoff_of(&doc, "FirebreakRevokeA").as_deref(),
            Some("2026-11-28T10:00:00Z")
        );
        assert_eq!(cutoff_of(&doc, "FirebreakRevokeB"), None);
        // The console's own document has no Sid: a new cutoff is taken.
        let console = json!({"Version": POLICY_VERSION, "Statement": {"Effect": "Deny",
            "Action": ["*"], "Resource": ["*"],
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2020-01-01T00:00:00Z"}}}});
        assert_eq!(cutoff_of(&console, "FirebreakRevokeA"), None);
    }

    #[test]
    fn the_cutoff_is_rfc3339_seconds_utc() {
        let now = now_utc();
        assert_eq!(now.len(), "2026-11-28T10:00:00Z".len(), "{now}");
        assert!(now.ends_with('Z'));
        time::OffsetDateTime::parse(&now, &time::format_description::well_known::Rfc3339).unwrap();
    }

    #[test]
    fn the_warning_counts_the_profiles() {
        assert_eq!(blast_radius_warning("web", &[]), None);
        let warning = blast_radius_warning("web", &["a".into(), "b".into()]).unwrap();
        assert!(
            warning.starts_with("2 instance profile(s) use role web (a, b)"),
            "{warning}"
        );
    }
}
