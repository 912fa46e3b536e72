//! `iam.delete_login_profile`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ActionError, date, found, get_user};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, ScopeField, USER_SCOPE, arn};
use crate::actions::reconcile;
use crate::actions::{Action, Execute};

/// Remove the user's console password (login profile), recording whether one existed and when it was created. A user without one is left as is.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteLoginProfile {
    pub user_name: String,
}

impl Action for DeleteLoginProfile {
    const NAME: &'static str = "iam.delete_login_profile";
    const SUMMARY: &'static str =
        "remove a user's console password (login profile), recording that it existed";
    const CALLS: &'static [&'static str] = &[
        "iam:GetLoginProfile",
        "iam:GetUser",
        "iam:DeleteLoginProfile",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[Grant::on(
        &[
            "iam:GetLoginProfile",
            "iam:GetUser",
            "iam:DeleteLoginProfile",
        ],
        &[arn::IAM_USER],
    )];
    const SCOPE: &'static [ScopeField] = USER_SCOPE;
}

impl Execute for DeleteLoginProfile {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let user = self.user_name.as_str();
        let iam = &ctx.clients().iam;
        let profile = found(
            ctx.call("iam", "GetLoginProfile", &[user], || {
                iam.get_login_profile().user_name(user).send()
            })
            .await,
        )?
        .and_then(|out| out.login_profile().cloned());
        let Some(profile) = profile else {
            // NoSuchEntity also answers for a user that does not exist: tell them apart.
            get_user(ctx, user).await?;
            return Ok(json!({
                "user_name": user,
                "existed": false,
                "changed": false,
            }));
        };
        let mut outputs = json!({
            "user_name": user,
            "existed": true,
            "created": date(profile.create_date()),
            "password_reset_required": profile.password_reset_required(),
            "changed": false,
        });
        // A second send fails once the first has worked (NoSuchEntity): sent without the SDK's
        // retries, and after a lost answer a profile no longer there was deleted by this call.
        let send = || async {
            found(
                ctx.change(
                    "iam",
                    "DeleteLoginProfile",
                    &[user],
                    json!({"user_name": user}),
                    || {
                        iam.delete_login_profile()
                            .user_name(user)
                            .customize()
                            .config_override(reconcile::iam_once())
                            .send()
                    },
                )
                .await,
            )
            .map(|deleted| match deleted {
                Some(Some(_)) => Deleted::Now,
                Some(None) => Deleted::WouldDelete,
                None => Deleted::BySomeoneElse,
            })
        };
        let gone = || async {
            let left = found(
                ctx.call("iam", "GetLoginProfile", &[user], || {
                    iam.get_login_profile().user_name(user).send()
                })
                .await,
            )?;
            Ok(left.is_none().then_some(Deleted::Now))
        };
        match reconcile::until_done(send, gone).await? {
            Deleted::Now => outputs["changed"] = json!(true),
            Deleted::WouldDelete => {
                outputs["dry_run"] = json!(true);
                outputs["would_delete"] = json!(true);
            }
            // Gone between the read and the delete (someone else removed it): nothing left to do.
            Deleted::BySomeoneElse => outputs["deleted_by_someone_else"] = json!(true),
        }
        Ok(outputs)
    }
}

enum Deleted {
    Now,
    WouldDelete,
    BySomeoneElse,
}
