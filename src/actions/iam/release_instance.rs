//! `iam.release_instance_credentials`: the instance leaves the deny statement
//! `iam.deny_instance_credentials` put it in; the policy goes when nothing is left in it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::deny_instance::{DenyInstanceCredentials, resolve, role_turn};
use super::instance_deny::{self, POLICY_NAME, denied_instances, without_instance};
use super::{
    ActionError, Principal, delete_inline_policy, get_inline_policy, given, put_inline_policy,
};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, ROLE_SCOPE, ScopeField, arn};
use crate::actions::prior::{chosen_instances, recorded_outputs};
use crate::actions::{Action, Execute};

/// Take instances out of the credential deny on their role: those a containing run's verified journal records (`journal`), or one instance (`instance_id`). Removes the policy `firebreak-deny-instance-credentials` when it lists no instance any more; an instance no longer listed is reported as already released.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseInstanceCredentials {
    /// The journal of the run that denied (verified before it is read).
    #[serde(default)]
    pub journal: Option<String>,
    /// With `journal`: the deny step's id (default: every `iam.deny_instance_credentials` step).
    #[serde(default)]
    pub step: Option<String>,
    /// With `journal`: the instances to release; required when the journal denied more than
    /// one (releasing one instance of a fleet must not release the others). An instance the
    /// run did not deny (it had no role) is not an error: there is nothing to release.
    #[serde(default)]
    pub instance_ids: Option<Vec<String>>,
    /// Without a journal: the instance to release (its role found as the deny found it).
    #[serde(default)]
    pub instance_id: Option<String>,
    /// With `instance_id`: the profile whose role holds the deny.
    #[serde(default)]
    pub instance_profile_arn: Option<String>,
}

impl Action for ReleaseInstanceCredentials {
    const NAME: &'static str = "iam.release_instance_credentials";
    const SUMMARY: &'static str =
        "take instances out of the credential deny on their role (from a verified journal)";
    const CALLS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:DescribeIamInstanceProfileAssociations",
        "iam:GetInstanceProfile",
        "iam:GetRolePolicy",
        "iam:PutRolePolicy",
        "iam:DeleteRolePolicy",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[
        Grant::on(&["iam:GetInstanceProfile"], &[arn::INSTANCE_PROFILE]),
        Grant::on(
            &[
                "iam:GetRolePolicy",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
            ],
            &[arn::IAM_ROLE],
        ),
    ];
    const SCOPE: &'static [ScopeField] = ROLE_SCOPE;
}

/// One instance on one role.
struct Denied {
    instance_id: String,
    instance_arn: String,
    role_name: String,
    role_arn: String,
}

impl Execute for ReleaseInstanceCredentials {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        if self.instance_ids.is_some() && given(self.journal.as_deref()).is_none() {
            return Err(ActionError::Input(
                "`instance_ids` chooses among a journal's instances; give it with `journal`".into(),
            ));
        }
        let denied = match (
            given(self.journal.as_deref()),
            given(self.instance_id.as_deref()),
        ) {
            (Some(path), None) => from_journal(
                path,
                self.step.as_deref(),
                self.instance_ids.as_deref(),
                ctx.journal_key(),
            )?,
            (None, Some(id)) => {
                from_instance(ctx, id, self.instance_profile_arn.as_deref()).await?
            }
            _ => {
                return Err(ActionError::Input(
                    "give exactly one of `journal` (with `instance_ids` for a fleet's) or `instance_id`"
                        .into(),
                ));
            }
        };
        let mut released = Vec::new();
        for item in &denied {
            let outcome = release_one(ctx, item)
                .await
                .map_err(|e| e.with_outputs(json!({ "released": released })))?;
            released.push(outcome);
        }
        let changed = released.iter().any(|r| r["changed"] == true);
        Ok(json!({ "released": released, "changed": changed }))
    }
}

async fn release_one(ctx: &StepContext, item: &Denied) -> Result<Value, ActionError> {
    let principal = Principal::Role(item.role_name.clone());
    let turn = role_turn(&item.role_arn);
    let _turn = turn.lock().await;
    let current = get_inline_policy(ctx, &principal, POLICY_NAME).await?;
    let mut out = json!({
        "instance_id": item.instance_id,
        "instance_arn": item.instance_arn,
        "role_name": item.role_name,
        "policy_before": current,
    });
    if !denied_instances(current.as_ref()).contains(&item.instance_arn) {
        out["done"] = json!("already-released");
        out["changed"] = json!(false);
        return Ok(out);
    }
    let sent = match without_instance(current.as_ref(), &item.instance_arn) {
        Some(document) => {
            out["done"] = json!("removed-from-list");
            out["instances"] = json!(denied_instances(Some(&document)));
            put_inline_policy(ctx, &principal, POLICY_NAME, &document).await?
        }
        None => {
            out["done"] = json!("policy-deleted");
            out["instances"] = json!([]);
            delete_inline_policy(ctx, &principal, POLICY_NAME).await?
        }
    };
    out["changed"] = json!(sent);
    if !sent {
        out["dry_run"] = json!(true);
    }
    Ok(out)
}

/// Every chosen instance a deny step of the journal put on a role (denied now or already
/// before).
fn from_journal(
    path: &str,
    step: Option<&str>,
    wanted: Option<&[String]>,
    key: Option<&[u8]>,
) -> Result<Vec<Denied>, ActionError> {
    let outputs = recorded_outputs(path, DenyInstanceCredentials::NAME, step, key)?;
    let mut found: Vec<Denied> = Vec::new();
    for out in &outputs {
        let (Some(instance_id), Some(instance_arn), Some(role_name), Some(role_arn)) = (
            out["instance_id"].as_str(),
            out["instance_arn"].as_str(),
            out["role_name"].as_str(),
            out["role_arn"].as_str(),
        ) else {
            continue;
        };
        if out["dry_run"] == true || found.iter().any(|f| f.instance_arn == instance_arn) {
            continue;
        }
        found.push(Denied {
            instance_id: instance_id.to_owned(),
            instance_arn: instance_arn.to_owned(),
            role_name: role_name.to_owned(),
            role_arn: role_arn.to_owned(),
        });
    }
    // A run that denied nothing (an older runbook, an instance without a role) leaves
    // nothing to release: an empty list, not an error.
    let recorded: Vec<String> = found.iter().map(|d| d.instance_id.clone()).collect();
    let chosen = chosen_instances(path, &recorded, wanted)?;
    found.retain(|d| chosen.contains(&d.instance_id));
    Ok(found)
}

async fn from_instance(
    ctx: &StepContext,
    instance_id: &str,
    profile_arn: Option<&str>,
) -> Result<Vec<Denied>, ActionError> {
    let role = resolve(ctx, instance_id, profile_arn)
        .await?
        .and_then(|t| t.role)
        .ok_or_else(|| {
            ActionError::Failed(format!(
                "instance {instance_id} has no instance profile with a role; give \
                 `instance_profile_arn` (the profile it had when it was contained)"
            ))
        })?;
    let region = ctx.clients().region().unwrap_or_default();
    let instance_arn = instance_deny::instance_arn(&role.arn, &region, instance_id)
        .ok_or_else(|| ActionError::Failed(format!("cannot read the role ARN {}", role.arn)))?;
    Ok(vec![Denied {
        instance_id: instance_id.to_owned(),
        instance_arn,
        role_name: role.name,
        role_arn: role.arn,
    }])
}
