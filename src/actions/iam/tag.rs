//! `iam.tag_principal`.

use aws_sdk_iam::types::Tag;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{ActionError, Principal, principal_tags};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, PRINCIPAL_SCOPE, ScopeField, arn};
use crate::actions::{Action, Execute};

/// Tag a user or role (e.g. `firebreak:case`). Only tags that are missing or differ are written; the values they replace are recorded. Give exactly one of `user_name` or `role_name`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagPrincipal {
    /// The IAM user (an empty string counts as not given).
    #[serde(default)]
    pub user_name: Option<String>,
    /// The IAM role (an empty string counts as not given).
    #[serde(default)]
    pub role_name: Option<String>,
    /// Tag keys and values.
    pub tags: indexmap::IndexMap<String, String>,
}

impl Action for TagPrincipal {
    const NAME: &'static str = "iam.tag_principal";
    const SUMMARY: &'static str = "tag a user or role with the case";
    const CALLS: &'static [&'static str] = &[
        "iam:ListUserTags",
        "iam:TagUser",
        "iam:ListRoleTags",
        "iam:TagRole",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[
        Grant::on(&["iam:ListUserTags", "iam:TagUser"], &[arn::IAM_USER]),
        Grant::on(&["iam:ListRoleTags", "iam:TagRole"], &[arn::IAM_ROLE]),
    ];
    const SCOPE: &'static [ScopeField] = PRINCIPAL_SCOPE;
}

impl Execute for TagPrincipal {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let principal =
            Principal::from_input(self.user_name.as_deref(), self.role_name.as_deref())?;
        if self.tags.is_empty() {
            return Err(ActionError::Failed(
                "`tags` is empty: nothing to tag".into(),
            ));
        }
        let current = principal_tags(ctx, &principal).await?;
        let mut previous = Map::new();
        let mut wanted = Vec::new();
        for (key, value) in &self.tags {
            let now = current.get(key);
            if now.and_then(Value::as_str) != Some(value.as_str()) {
                previous.insert(key.clone(), now.cloned().unwrap_or(Value::Null));
                wanted.push(
                    Tag::builder()
                        .key(key)
                        .value(value)
                        .build()
                        .map_err(|e| ActionError::Failed(format!("invalid tag {key}: {e}")))?,
                );
            }
        }
        let mut outputs = principal.output();
        outputs.insert("tags".into(), json!(self.tags));
        outputs.insert("previous_values".into(), Value::Object(previous));
        outputs.insert("changed".into(), json!(false));
        if wanted.is_empty() {
            return Ok(Value::Object(outputs));
        }
        let iam = &ctx.clients().iam;
        let input = json!({
            format!("{}_name", principal.kind()): principal.name(),
            "tags": wanted.iter().map(|t| json!({"key": t.key(), "value": t.value()})).collect::<Vec<_>>(),
        });
        let sent = match &principal {
            Principal::User(user) => ctx
                .change("iam", "TagUser", &[user], input, || {
                    iam.tag_user()
                        .user_name(user)
                        .set_tags(Some(wanted.clone()))
                        .send()
                })
                .await?
                .is_some(),
            Principal::Role(role) => ctx
                .change("iam", "TagRole", &[role], input, || {
                    iam.tag_role()
                        .role_name(role)
                        .set_tags(Some(wanted.clone()))
                        .send()
                })
                .await?
                .is_some(),
        };
        if sent {
            outputs.insert("changed".into(), json!(true));
        } else {
            outputs.insert("dry_run".into(), json!(true));
        }
        Ok(Value::Object(outputs))
    }
}
