//! `iam.deny_instance_credentials`: the credentials already issued to a compromised instance
//! stop working, wherever they are used from, and the role's other instances keep theirs.
//!
//! Turning the metadata service off and swapping the profile stop *new* credentials; the ones
//! an attacker already copied stay valid for hours. This adds the instance's ARN to one deny
//! statement on the role (see [`super::instance_deny`]). Concurrent items of a fleet run that
//! share a role take turns on the document (a read-modify-write), and each reads the document
//! back after writing it: a writer in another process that overwrote it is seen, and the
//! instance is added again.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::instance_deny::{
    self, CONDITION_KEY, POLICY_NAME, ROLE_INLINE_LIMIT, denied_instances, with_instance,
};
use super::{ActionError, Principal, found, get_inline_policy, given, put_inline_policy};
use crate::actions::StepContext;
use crate::actions::ec2::original_profile;
use crate::actions::grants::{Grant, ROLE_SCOPE, ScopeField, arn};
use crate::actions::{Action, Execute};

/// How often a write that another writer overwrote is tried again.
const WRITE_ATTEMPTS: usize = 3;

/// Deny the credentials already issued to an instance: its ARN joins the one deny statement (`ec2:SourceInstanceARN`) of the inline policy `firebreak-deny-instance-credentials` on the instance's role. Other instances of the role are not affected; sessions the attacker chained with AssumeRole are not covered. The role is the instance's original profile's (recorded by `ec2.replace_instance_profile`, or given). Records the policy before; already listed changes nothing.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DenyInstanceCredentials {
    pub instance_id: String,
    /// The instance profile whose role issued the credentials (e.g.
    /// `{{steps.describe.outputs.instance_profile.arn}}`). Empty or absent: the profile the
    /// instance had before a firebreak run swapped it, else the one associated now.
    #[serde(default)]
    pub instance_profile_arn: Option<String>,
}

impl Action for DenyInstanceCredentials {
    const NAME: &'static str = "iam.deny_instance_credentials";
    const SUMMARY: &'static str = "deny the credentials already issued to an instance, on its role only for that instance (one ec2:SourceInstanceARN deny statement listing every contained instance)";
    const CALLS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:DescribeIamInstanceProfileAssociations",
        "iam:GetInstanceProfile",
        "iam:GetRolePolicy",
        "iam:PutRolePolicy",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[
        Grant::on(&["iam:GetInstanceProfile"], &[arn::INSTANCE_PROFILE]),
        // The instance's role is whatever its profile holds, found at run time: any role.
        Grant::on(
            &["iam:GetRolePolicy", "iam:PutRolePolicy"],
            &[arn::IAM_ROLE],
        ),
    ];
    const SCOPE: &'static [ScopeField] = ROLE_SCOPE;
}

impl Execute for DenyInstanceCredentials {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let id = self.instance_id.as_str();
        let Some(target) = resolve(ctx, id, self.instance_profile_arn.as_deref()).await? else {
            return Ok(json!({
                "instance_id": id,
                "done": "no-profile",
                "changed": false,
                "note": "the instance has no instance profile: it holds no role credentials",
            }));
        };
        let Some(role) = target.role.clone() else {
            return Ok(json!({
                "instance_id": id,
                "instance_profile_arn": target.profile_arn,
                "done": "no-role",
                "changed": false,
            }));
        };
        let region = ctx.clients().region().unwrap_or_default();
        let instance_arn = instance_deny::instance_arn(&role.arn, &region, id)
            .ok_or_else(|| ActionError::Failed(format!("cannot read the role ARN {}", role.arn)))?;
        let principal = Principal::Role(role.name.clone());
        let turn = role_turn(&role.arn);
        let _turn = turn.lock().await;
        let mut out = json!({
            "instance_id": id,
            "instance_arn": instance_arn,
            "instance_profile_arn": target.profile_arn,
            "profile_source": target.source,
            "role_name": role.name,
            "role_arn": role.arn,
            "policy_name": POLICY_NAME,
            "condition_key": CONDITION_KEY,
        });
        let mut wrote = false;
        for attempt in 1..=WRITE_ATTEMPTS {
            let previous = get_inline_policy(ctx, &principal, POLICY_NAME).await?;
            if attempt == 1 {
                out["previous_policy"] = json!(previous);
            }
            if denied_instances(previous.as_ref()).contains(&instance_arn) {
                out["instances"] = json!(denied_instances(previous.as_ref()));
                out["done"] = json!(if wrote { "denied" } else { "already-denied" });
                out["changed"] = json!(wrote);
                return Ok(out);
            }
            let document = with_instance(previous.as_ref(), &instance_arn);
            let size = instance_deny::size(&document);
            if size > ROLE_INLINE_LIMIT {
                return Err(ActionError::Failed(format!(
                    "the deny for {id} would make {POLICY_NAME} on role {} {size} characters, \
                     over IAM's {ROLE_INLINE_LIMIT} for a role's inline policies; nothing was \
                     changed. Revoke the role's sessions instead (iam.revoke_role_sessions; \
                     every instance of the role loses its credentials)",
                    role.name
                )));
            }
            let sent = put_inline_policy(ctx, &principal, POLICY_NAME, &document).await?;
            if !sent {
                out["instances"] = json!(denied_instances(Some(&document)));
                out["done"] = json!("would-deny");
                out["changed"] = json!(false);
                out["dry_run"] = json!(true);
                return Ok(out);
            }
            wrote = true;
        }
        Err(ActionError::Failed(format!(
            "{POLICY_NAME} on role {} was overwritten {WRITE_ATTEMPTS} times while {id} was \
             added (another writer edits it); the instance may not be denied yet",
            role.name
        ))
        .with_outputs(out))
    }
}

/// The profile (and its role) whose credentials the instance was issued.
pub(crate) struct Target {
    pub profile_arn: String,
    pub source: &'static str,
    pub role: Option<Role>,
}

#[derive(Clone)]
pub(crate) struct Role {
    pub name: String,
    pub arn: String,
}

/// The instance's profile (given, recorded, or associated) and the role in it.
pub(crate) async fn resolve(
    ctx: &StepContext,
    instance_id: &str,
    given_arn: Option<&str>,
) -> Result<Option<Target>, ActionError> {
    let (profile_arn, source) = match given(given_arn) {
        Some(arn) => (arn.to_owned(), "input"),
        None => match original_profile(ctx, instance_id).await? {
            Some(found) => found,
            None => return Ok(None),
        },
    };
    // `arn:…:instance-profile/PATH/NAME`: the name is the last part.
    let name = profile_arn
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && profile_arn.contains(":instance-profile/"))
        .ok_or_else(|| ActionError::Input(format!("{profile_arn} is not an instance profile ARN")))?
        .to_owned();
    let iam = &ctx.clients().iam;
    let profile = found(
        ctx.call("iam", "GetInstanceProfile", &[&name], || {
            iam.get_instance_profile()
                .instance_profile_name(&name)
                .send()
        })
        .await,
    )?
    .ok_or_else(|| {
        ActionError::Failed(format!(
            "instance profile {profile_arn} of instance {instance_id} does not exist"
        ))
    })?;
    let role = profile
        .instance_profile()
        .and_then(|p| p.roles().first())
        .map(|r| Role {
            name: r.role_name().to_owned(),
            arn: r.arn().to_owned(),
        });
    Ok(Some(Target {
        profile_arn,
        source,
        role,
    }))
}

/// One turn at a time on a role's deny document within this process.
pub(crate) fn role_turn(role_arn: &str) -> Arc<tokio::sync::Mutex<()>> {
    static TURNS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(Default::default);
    TURNS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(role_arn.to_owned())
        .or_default()
        .clone()
}
