//! IAM credential actions: evidence first (`inventory_principal`), then the containment moves
//! for leaked access keys and stolen role or user sessions. IAM has no `DryRun`: every change
//! goes through [`StepContext::change`], which in a drill journals what would be sent and sends
//! nothing. Each action is idempotent (it reads the current state and changes only what is not
//! yet as wanted) and reports the prior state of what it changed.

mod access_key;
mod deny_instance;
mod instance_deny;
mod inventory;
mod login_profile;
mod persistence;
mod quarantine;
mod read;
mod release_instance;
mod release_principal;
mod revoke;
mod tag;

pub use access_key::DisableAccessKey;
pub use deny_instance::DenyInstanceCredentials;
pub use inventory::InventoryPrincipal;
pub use login_profile::DeleteLoginProfile;
pub use quarantine::QuarantinePrincipal;
pub use release_instance::ReleaseInstanceCredentials;
pub use release_principal::ReleasePrincipal;
pub use revoke::{RevokeRoleSessions, RevokeUserSessions};
pub use tag::TagPrincipal;

pub(crate) use read::{
    access_key_owner, all_pages, attached_policies, get_inline_policy, get_role, get_user,
    inline_policies, next, principal_tags,
};

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use serde_json::{Value, json};

use super::ActionError;
use crate::actions::StepContext;

/// The policy document version every document firebreak writes declares.
pub(crate) const POLICY_VERSION: &str = "2012-10-17";

/// An IAM user or role, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Principal {
    User(String),
    Role(String),
}

impl Principal {
    /// Exactly one of `user_name` and `role_name` (an empty string counts as not given, so a
    /// runbook can pass an optional parameter straight through).
    pub(crate) fn from_input(
        user_name: Option<&str>,
        role_name: Option<&str>,
    ) -> Result<Principal, ActionError> {
        match (given(user_name), given(role_name)) {
            (Some(user), None) => Ok(Principal::User(user.to_owned())),
            (None, Some(role)) => Ok(Principal::Role(role.to_owned())),
            (Some(_), Some(_)) => Err(ActionError::Failed(
                "give either `user_name` or `role_name`, not both".into(),
            )),
            (None, None) => Err(ActionError::Failed(
                "give `user_name` or `role_name` (neither was given, or both are empty)".into(),
            )),
        }
    }

    /// `user` or `role`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Principal::User(_) => "user",
            Principal::Role(_) => "role",
        }
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            Principal::User(name) | Principal::Role(name) => name,
        }
    }

    /// `user alice`, `role web` — for messages.
    pub(crate) fn describe(&self) -> String {
        format!("{} {}", self.kind(), self.name())
    }

    /// `{"user_name": …}` or `{"role_name": …}`, the start of every output.
    pub(crate) fn output(&self) -> serde_json::Map<String, Value> {
        let mut map = serde_json::Map::new();
        map.insert("principal_type".into(), json!(self.kind()));
        map.insert(format!("{}_name", self.kind()), json!(self.name()));
        map
    }
}

/// A string input that was given and is not empty.
pub(crate) fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

pub(crate) use crate::actions::error::{found, is_not_found};

/// RFC 3339, as IAM writes dates.
pub(crate) fn date(value: &DateTime) -> Value {
    value
        .fmt(Format::DateTime)
        .map(Value::String)
        .unwrap_or(Value::Null)
}

/// A policy document as IAM returns it (URL-encoded JSON, RFC 3986), parsed. A document that
/// does not parse is kept as its decoded text.
pub(crate) fn parse_document(raw: &str) -> Value {
    let text = if raw.trim_start().starts_with('%') {
        percent_decode(raw)
    } else {
        raw.to_owned()
    };
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2]))
        {
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

/// Puts (creates or replaces) the inline policy `name`. `false` in a drill (nothing sent).
pub(crate) async fn put_inline_policy(
    ctx: &StepContext,
    principal: &Principal,
    name: &str,
    document: &Value,
) -> Result<bool, ActionError> {
    let iam = &ctx.clients().iam;
    let text = document.to_string();
    let input = json!({
        format!("{}_name", principal.kind()): principal.name(),
        "policy_name": name,
        "policy_document": document,
    });
    let sent = match principal {
        Principal::User(user) => ctx
            .change("iam", "PutUserPolicy", &[user, name], input, || {
                iam.put_user_policy()
                    .user_name(user)
                    .policy_name(name)
                    .policy_document(&text)
                    .send()
            })
            .await?
            .is_some(),
        Principal::Role(role) => ctx
            .change("iam", "PutRolePolicy", &[role, name], input, || {
                iam.put_role_policy()
                    .role_name(role)
                    .policy_name(name)
                    .policy_document(&text)
                    .send()
            })
            .await?
            .is_some(),
    };
    Ok(sent)
}

/// Deletes the inline policy `name`. `false` in a drill (nothing sent).
pub(crate) async fn delete_inline_policy(
    ctx: &StepContext,
    principal: &Principal,
    name: &str,
) -> Result<bool, ActionError> {
    let iam = &ctx.clients().iam;
    let input =
        json!({ format!("{}_name", principal.kind()): principal.name(), "policy_name": name });
    let sent = match principal {
        Principal::User(user) => ctx
            .change("iam", "DeleteUserPolicy", &[user, name], input, || {
                iam.delete_user_policy()
                    .user_name(user)
                    .policy_name(name)
                    .send()
            })
            .await?
            .is_some(),
        Principal::Role(role) => ctx
            .change("iam", "DeleteRolePolicy", &[role, name], input, || {
                iam.delete_role_policy()
                    .role_name(role)
                    .policy_name(name)
                    .send()
            })
            .await?
            .is_some(),
    };
    Ok(sent)
}

/// Service-linked roles live under this path; AWS owns their policies.
pub(crate) const SERVICE_LINKED_PATH: &str = "/aws-service-role/";

pub(crate) fn is_service_linked(role: &aws_sdk_iam::types::Role) -> bool {
    role.path().starts_with(SERVICE_LINKED_PATH)
}

/// Temporary (`ASIA…`) keys belong to STS sessions, not to a user: they cannot be disabled or
/// traced to a user through IAM.
pub(crate) fn refuse_temporary(access_key_id: &str) -> Result<(), ActionError> {
    if access_key_id.starts_with("ASIA") {
        return Err(ActionError::Failed(format!(
            "{access_key_id} is a temporary (STS) access key: it has no owning IAM user and \
             cannot be disabled; revoke the sessions of the role or user that issued it \
             (iam.revoke_role_sessions or iam.revoke_user_sessions)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_url_decoded_and_parsed() {
        let raw = "%7B%22Version%22%3A%20%222012-10-17%22%2C%20%22Statement%22%3A%20%5B%5D%7D";
        assert_eq!(
            parse_document(raw),
            json!({"Version": "2012-10-17", "Statement": []})
        );
        assert_eq!(parse_document("{\"a\": \"50%\"}"), json!({"a": "50%"}));
        assert_eq!(parse_document("%7Bbroken"), json!("{broken"));
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("é%C3%A9"), "éé");
    }

    #[test]
    fn exactly_one_principal() {
        assert_eq!(
            Principal::from_input(Some("alice"), None).unwrap(),
            Principal::User("alice".into())
        );
        assert_eq!(
            Principal::from_input(Some(""), Some("web")).unwrap(),
            Principal::Role("web".into())
        );
        assert!(Principal::from_input(Some("a"), Some("b")).is_err());
        assert!(Principal::from_input(Some(" "), None).is_err());
    }

    #[test]
    fn markers_only_when_truncated() {
        assert_eq!(next(true, Some("m")), Some("m".into()));
        assert_eq!(next(false, Some("m")), None);
        assert_eq!(next(true, None), None);
    }
}
