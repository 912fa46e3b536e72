//! `iam.disable_access_key`.

use aws_sdk_iam::types::{AccessKeyMetadata, StatusType};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ActionError, access_key_owner, all_pages, date, given, next, refuse_temporary};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, ScopeField, USER_SCOPE, arn};
use crate::actions::{Action, Execute};

/// Set one access key `Inactive` — never deleted (it is evidence, and it can be re-enabled) — and verify its new status. Only the named key is touched.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableAccessKey {
    /// The key to disable (`AKIA…`).
    pub access_key_id: String,
    /// The user who owns it; found with GetAccessKeyLastUsed when not given (or empty).
    #[serde(default)]
    pub user_name: Option<String>,
}

impl Action for DisableAccessKey {
    const NAME: &'static str = "iam.disable_access_key";
    const SUMMARY: &'static str =
        "set one access key Inactive (never deleted: it is evidence) and verify it";
    const CALLS: &'static [&'static str] = &[
        "iam:GetAccessKeyLastUsed",
        "iam:ListAccessKeys",
        "iam:UpdateAccessKey",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[Grant::on(
        &[
            "iam:GetAccessKeyLastUsed",
            "iam:ListAccessKeys",
            "iam:UpdateAccessKey",
        ],
        &[arn::IAM_USER],
    )];
    const SCOPE: &'static [ScopeField] = USER_SCOPE;
}

impl Execute for DisableAccessKey {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let key = self.access_key_id.as_str();
        refuse_temporary(key)?;
        let user = match given(self.user_name.as_deref()) {
            Some(user) => user.to_owned(),
            None => access_key_owner(ctx, key).await?,
        };
        let keys = list_keys(ctx, &user).await?;
        let Some(current) = keys.iter().find(|k| k.access_key_id() == Some(key)) else {
            return Err(ActionError::Failed(format!(
                "access key {key} is not among the access keys of IAM user {user}"
            )));
        };
        let previous = status(current);
        let others: Vec<Value> = keys
            .iter()
            .filter(|k| k.access_key_id() != Some(key))
            .map(|k| json!({"access_key_id": k.access_key_id(), "status": status(k)}))
            .collect();
        let mut outputs = json!({
            "access_key_id": key,
            "user_name": user,
            "created": current.create_date().map(date),
            "previous_status": previous,
            "status": previous,
            "other_keys_untouched": others,
            "changed": false,
        });
        if previous == "Inactive" {
            return Ok(outputs);
        }
        let sent = ctx
            .change(
                "iam",
                "UpdateAccessKey",
                &[key, &user],
                json!({"user_name": user, "access_key_id": key, "status": "Inactive"}),
                || {
                    ctx.clients()
                        .iam
                        .update_access_key()
                        .user_name(&user)
                        .access_key_id(key)
                        .status(StatusType::Inactive)
                        .send()
                },
            )
            .await?;
        if sent.is_none() {
            outputs["dry_run"] = json!(true);
            outputs["would_set_status"] = json!("Inactive");
            return Ok(outputs);
        }
        outputs["changed"] = json!(true);
        // Verify: IAM is eventually consistent, but UpdateAccessKey's effect is read back at once
        // on the same endpoint; a key still active here is a failure worth stopping for.
        let after = list_keys(ctx, &user).await.map_err(|e| {
            let partial = outputs.clone();
            e.with_outputs(partial)
        })?;
        let now = after
            .iter()
            .find(|k| k.access_key_id() == Some(key))
            .map(status)
            .unwrap_or("missing");
        outputs["status"] = json!(now);
        if now != "Inactive" {
            return Err(ActionError::Failed(format!(
                "access key {key} of IAM user {user} still reads `{now}` after UpdateAccessKey set it Inactive"
            ))
            .with_outputs(outputs));
        }
        Ok(outputs)
    }
}

fn status(key: &AccessKeyMetadata) -> &str {
    key.status().map(|s| s.as_str()).unwrap_or("unknown")
}

async fn list_keys(ctx: &StepContext, user: &str) -> Result<Vec<AccessKeyMetadata>, ActionError> {
    let iam = &ctx.clients().iam;
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
    Ok(pages
        .iter()
        .flat_map(|p| p.access_key_metadata().to_vec())
        .collect())
}
