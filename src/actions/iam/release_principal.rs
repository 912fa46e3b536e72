//! `iam.release_principal`: what the IAM containment moves changed on a user or role, put back
//! from the containing run's verified journal — the quarantine policy firebreak attached or
//! wrote, the session revocation it wrote, the tags it set and, only when asked, the access key
//! it disabled. Nothing is re-created that firebreak deleted: a deleted console password cannot
//! come back (its password is unknown); the release says so.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::quarantine::{INLINE_POLICY_NAME, QuarantinePrincipal};
use super::revoke::{
    POLICY_NAME as REVOKE_POLICY, RevokeRoleSessions, RevokeUserSessions, policy_document,
};
use super::{
    ActionError, DeleteLoginProfile, DisableAccessKey, Principal, TagPrincipal, attached_policies,
    delete_inline_policy, get_inline_policy, put_inline_policy,
};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, arn};
use crate::actions::prior::{Standing, changed_since, changes_recorded, drift, recorded_outputs};
use crate::actions::{Action, Execute};

/// Put back what a containing run's IAM moves changed, from its verified journal: the quarantine policy it attached (detached) or wrote (deleted, or the earlier one put back), the session revocation it wrote (likewise — sessions issued before its cutoff work again: rotate the credentials), the tags it set, and only with `reactivate_key` the access key it disabled. A deleted console password is not re-created. Refuses, changing nothing, what changed since unless `force`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleasePrincipal {
    /// The journal of the run that contained the principal (verified before it is read).
    pub journal: String,
    /// Set the access key the run disabled back to Active (off: it stays inactive).
    #[serde(default)]
    pub reactivate_key: bool,
    #[serde(default)]
    pub force: bool,
}

impl Action for ReleasePrincipal {
    const NAME: &'static str = "iam.release_principal";
    const SUMMARY: &'static str = "put back the quarantine, session revocation and tags a containing run set on a user or role, and (only when asked) re-activate the key it disabled, from its verified journal";
    const CALLS: &'static [&'static str] = &[
        "iam:ListAttachedUserPolicies",
        "iam:ListAttachedRolePolicies",
        "iam:DetachUserPolicy",
        "iam:DetachRolePolicy",
        "iam:GetUserPolicy",
        "iam:GetRolePolicy",
        "iam:PutUserPolicy",
        "iam:PutRolePolicy",
        "iam:DeleteUserPolicy",
        "iam:DeleteRolePolicy",
        "iam:ListUserTags",
        "iam:ListRoleTags",
        "iam:UntagUser",
        "iam:UntagRole",
        "iam:TagUser",
        "iam:TagRole",
        "iam:ListAccessKeys",
        "iam:UpdateAccessKey",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[
        Grant::on(
            &[
                "iam:ListAttachedUserPolicies",
                "iam:DetachUserPolicy",
                "iam:GetUserPolicy",
                "iam:PutUserPolicy",
                "iam:DeleteUserPolicy",
                "iam:ListUserTags",
                "iam:UntagUser",
                "iam:TagUser",
                "iam:ListAccessKeys",
                "iam:UpdateAccessKey",
            ],
            &[arn::IAM_USER],
        ),
        Grant::on(
            &[
                "iam:ListAttachedRolePolicies",
                "iam:DetachRolePolicy",
                "iam:GetRolePolicy",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:ListRoleTags",
                "iam:UntagRole",
                "iam:TagRole",
            ],
            &[arn::IAM_ROLE],
        ),
    ];
}

/// One thing to put back.
struct Piece {
    name: String,
    principal: Principal,
    standing: Standing,
    /// What the containment left it at.
    left: Value,
    now: Value,
    restore_to: Value,
    op: Op,
}

enum Op {
    Detach(String),
    Policy(&'static str, Value),
    Tag(String, Value),
    Key(String),
    Note(String),
}

fn principal_of(out: &Value) -> Option<Principal> {
    match (out["user_name"].as_str(), out["role_name"].as_str()) {
        (Some(u), _) if out["principal_type"] != "role" => Some(Principal::User(u.to_owned())),
        (_, Some(r)) => Some(Principal::Role(r.to_owned())),
        _ => None,
    }
}

impl Execute for ReleasePrincipal {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let key = ctx.journal_key();
        let of =
            |action: &str| changes_recorded(&self.journal, action, key, |o| o["changed"] == true);
        let mut pieces = Vec::new();
        // A setting several steps changed: its value before the first, after the last.
        let mut tags: Vec<(Principal, String, Value, Value)> = Vec::new();
        for out in of(TagPrincipal::NAME)? {
            let Some(principal) = principal_of(&out) else {
                continue;
            };
            for (tag, before) in out["previous_values"].as_object().into_iter().flatten() {
                let after = out["tags"][tag].clone();
                match tags
                    .iter_mut()
                    .find(|(p, t, _, _)| *p == principal && t == tag)
                {
                    Some(entry) => entry.3 = after,
                    None => tags.push((principal.clone(), tag.clone(), before.clone(), after)),
                }
            }
        }
        for (principal, tag, before, after) in tags {
            let live = super::principal_tags(ctx, &principal).await?;
            let now = live.get(&tag).cloned().unwrap_or(Value::Null);
            pieces.push(Piece {
                name: format!("tag {tag} of {}", principal.describe()),
                standing: Standing::of(&now, &before, &after, |a, b| a == b),
                left: after.clone(),
                principal,
                now,
                restore_to: before.clone(),
                op: Op::Tag(tag, before),
            });
        }
        let mut revocations: Vec<(Principal, Value, Value)> = Vec::new();
        for action in [RevokeUserSessions::NAME, RevokeRoleSessions::NAME] {
            for out in of(action)? {
                let Some(principal) = principal_of(&out) else {
                    continue;
                };
                let after = policy_document(
                    out["statement_id"].as_str().unwrap_or_default(),
                    out["cutoff"].as_str().unwrap_or_default(),
                );
                match revocations.iter_mut().find(|(p, _, _)| *p == principal) {
                    Some(entry) => entry.2 = after,
                    None => revocations.push((principal, out["previous_policy"].clone(), after)),
                }
            }
        }
        {
            for (principal, before, after) in revocations {
                let now = json!(get_inline_policy(ctx, &principal, REVOKE_POLICY).await?);
                pieces.push(Piece {
                    name: format!("session revocation of {}", principal.describe()),
                    standing: Standing::of(&now, &before, &after, |a, b| a == b),
                    left: after.clone(),
                    principal,
                    now,
                    restore_to: before.clone(),
                    op: Op::Policy(REVOKE_POLICY, before),
                });
            }
        }
        for out in of(QuarantinePrincipal::NAME)? {
            let Some(principal) = principal_of(&out) else {
                continue;
            };
            if out["mode"] == "managed" {
                let arn = out["policy_arn"].as_str().unwrap_or_default().to_owned();
                let attached = attached_policies(ctx, &principal)
                    .await?
                    .iter()
                    .any(|a| a["arn"] == arn.as_str());
                let now = json!(attached);
                pieces.push(Piece {
                    name: format!("quarantine policy {arn} on {}", principal.describe()),
                    standing: Standing::of(&now, &json!(false), &json!(true), |a, b| a == b),
                    left: json!(true),
                    principal,
                    now,
                    restore_to: json!(false),
                    op: Op::Detach(arn),
                });
            } else {
                let before = out["previous_policy"].clone();
                let after = out["policy_document"].clone();
                let now = json!(get_inline_policy(ctx, &principal, INLINE_POLICY_NAME).await?);
                pieces.push(Piece {
                    name: format!(
                        "quarantine policy {INLINE_POLICY_NAME} on {}",
                        principal.describe()
                    ),
                    standing: Standing::of(&now, &before, &after, |a, b| a == b),
                    left: after.clone(),
                    principal,
                    now,
                    restore_to: before.clone(),
                    op: Op::Policy(INLINE_POLICY_NAME, before),
                });
            }
        }
        for out in of(DisableAccessKey::NAME)? {
            let Some(user) = out["user_name"].as_str() else {
                continue;
            };
            let key_id = out["access_key_id"].as_str().unwrap_or_default().to_owned();
            let principal = Principal::User(user.to_owned());
            let now = json!(key_status(ctx, user, &key_id).await?);
            let before = out["previous_status"].clone();
            let standing = Standing::of(&now, &before, &json!("Inactive"), |a, b| a == b);
            pieces.push(Piece {
                name: format!("access key {key_id}"),
                standing,
                left: json!("Inactive"),
                principal,
                now,
                restore_to: if self.reactivate_key { before } else { json!("Inactive") },
                op: if self.reactivate_key {
                    Op::Key(key_id)
                } else {
                    Op::Note("left inactive: give reactivate_key to set it Active again (rotating it is safer)".into())
                },
            });
        }
        for out in recorded_outputs(&self.journal, DeleteLoginProfile::NAME, None, key)? {
            if out["existed"] == true && out["dry_run"] != true {
                let Some(principal) = principal_of(&out) else {
                    continue;
                };
                pieces.push(Piece {
                    name: format!("console password of {}", principal.describe()),
                    standing: Standing::Restore,
                    left: Value::Null,
                    principal,
                    now: Value::Null,
                    restore_to: Value::Null,
                    op: Op::Note(
                        "not re-created: its password is unknown; the user sets a new one".into(),
                    ),
                });
            }
        }

        let drifted: Vec<Value> = pieces
            .iter()
            .filter(|p| p.standing == Standing::ChangedSince)
            .map(|p| drift(&p.name, &p.left, &p.now, &p.restore_to))
            .collect();
        if !drifted.is_empty() && !self.force {
            return Err(changed_since("IAM release", drifted));
        }
        let mut restored = Vec::new();
        for piece in &pieces {
            let (sent, state) = match (&piece.op, piece.standing) {
                (Op::Note(note), _) => (false, format!("not restored: {note}")),
                (_, Standing::AlreadyRestored) => (false, piece.standing.as_str().to_owned()),
                (op, standing) => (
                    apply(ctx, &piece.principal, op)
                        .await
                        .map_err(|e| e.with_outputs(json!({ "restored": restored })))?,
                    standing.as_str().to_owned(),
                ),
            };
            restored.push(json!({ "setting": piece.name, "state": state, "was": piece.now, "restored_to": piece.restore_to, "changed": sent }));
        }
        let changed = restored.iter().any(|r| r["changed"] == true);
        Ok(json!({ "restored": restored, "drifted": drifted, "changed": changed }))
    }
}

async fn key_status(
    ctx: &StepContext,
    user: &str,
    key_id: &str,
) -> Result<Option<String>, ActionError> {
    let iam = &ctx.clients().iam;
    let keys = ctx
        .call("iam", "ListAccessKeys", &[user], || {
            iam.list_access_keys().user_name(user).send()
        })
        .await?;
    Ok(keys
        .access_key_metadata()
        .iter()
        .find(|k| k.access_key_id() == Some(key_id))
        .and_then(|k| k.status())
        .map(|s| s.as_str().to_owned()))
}

async fn apply(ctx: &StepContext, principal: &Principal, op: &Op) -> Result<bool, ActionError> {
    let iam = &ctx.clients().iam;
    let name = principal.name();
    match op {
        Op::Note(_) => Ok(false),
        Op::Policy(policy, Value::Null) => delete_inline_policy(ctx, principal, policy).await,
        Op::Policy(policy, document) => put_inline_policy(ctx, principal, policy, document).await,
        Op::Detach(arn) => {
            let input = json!({ format!("{}_name", principal.kind()): name, "policy_arn": arn });
            Ok(match principal {
                Principal::User(user) => ctx
                    .change("iam", "DetachUserPolicy", &[user, arn], input, || {
                        iam.detach_user_policy()
                            .user_name(user)
                            .policy_arn(arn)
                            .send()
                    })
                    .await?
                    .is_some(),
                Principal::Role(role) => ctx
                    .change("iam", "DetachRolePolicy", &[role, arn], input, || {
                        iam.detach_role_policy()
                            .role_name(role)
                            .policy_arn(arn)
                            .send()
                    })
                    .await?
                    .is_some(),
            })
        }
        Op::Tag(tag, Value::Null) => {
            let input = json!({ format!("{}_name", principal.kind()): name, "tag_keys": [tag] });
            Ok(match principal {
                Principal::User(user) => ctx
                    .change("iam", "UntagUser", &[user], input, || {
                        iam.untag_user().user_name(user).tag_keys(tag).send()
                    })
                    .await?
                    .is_some(),
                Principal::Role(role) => ctx
                    .change("iam", "UntagRole", &[role], input, || {
                        iam.untag_role().role_name(role).tag_keys(tag).send()
                    })
                    .await?
                    .is_some(),
            })
        }
        Op::Tag(tag, value) => {
            let value = value.as_str().unwrap_or_default();
            let built = aws_sdk_iam::types::Tag::builder()
                .key(tag)
                .value(value)
                .build()
                .map_err(|e| ActionError::Failed(format!("invalid tag {tag}: {e}")))?;
            let input =
                json!({ format!("{}_name", principal.kind()): name, "tags": { tag: value } });
            Ok(match principal {
                Principal::User(user) => ctx
                    .change("iam", "TagUser", &[user], input, || {
                        iam.tag_user().user_name(user).tags(built.clone()).send()
                    })
                    .await?
                    .is_some(),
                Principal::Role(role) => ctx
                    .change("iam", "TagRole", &[role], input, || {
                        iam.tag_role().role_name(role).tags(built.clone()).send()
                    })
                    .await?
                    .is_some(),
            })
        }
        Op::Key(key_id) => Ok(ctx
            .change(
                "iam",
                "UpdateAccessKey",
                &[name, key_id],
                json!({ "user_name": name, "access_key_id": key_id, "status": "Active" }),
                || {
                    iam.update_access_key()
                        .user_name(name)
                        .access_key_id(key_id)
                        .status(aws_sdk_iam::types::StatusType::Active)
                        .send()
                },
            )
            .await?
            .is_some()),
    }
}
