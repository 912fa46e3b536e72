//! `identitycenter.inventory_user`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::user::{assignments, find, memberships};
use super::{ActionError, StepContext};
use crate::actions::grants::Grant;
use crate::actions::{Action, Execute};

/// Record an IAM Identity Center user's direct account assignments and group memberships as hashed evidence. Changes nothing.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryUser {
    /// The user's Identity Center user name.
    pub user_name: String,
    /// The Identity Center instance (default: the account's only one).
    #[serde(default)]
    pub instance_arn: Option<String>,
}

impl Action for InventoryUser {
    const NAME: &'static str = "identitycenter.inventory_user";
    const SUMMARY: &'static str = "record an Identity Center user's account assignments and group memberships as hashed evidence";
    const CALLS: &'static [&'static str] = &[
        "sso:ListInstances",
        "identitystore:GetUserId",
        "sso:ListAccountAssignmentsForPrincipal",
        "identitystore:ListGroupMembershipsForMember",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[];
}

impl Execute for InventoryUser {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let user = find(ctx, &self.user_name, self.instance_arn.as_deref()).await?;
        let assigned = assignments(ctx, &user).await?;
        let groups = memberships(ctx, &user).await?;
        let mut out = json!({
            "user_name": user.user_name,
            "user_id": user.user_id,
            "instance_arn": user.instance_arn,
            "identity_store_id": user.identity_store_id,
            "account_assignments": assigned,
            "group_memberships": groups,
            "permission_set_arns": permission_sets(&assigned),
        });
        let bytes = serde_json::to_vec_pretty(&out)
            .map_err(|e| ActionError::Failed(format!("cannot serialise the inventory: {e}")))?;
        out["evidence"] = ctx.write_evidence(
            &format!("identity-center-user-{}.json", user.user_id),
            &bytes,
        )?;
        Ok(out)
    }
}

/// The distinct permission sets of a list of assignments.
pub fn permission_sets(assigned: &[Value]) -> Vec<String> {
    let mut sets: Vec<String> = assigned
        .iter()
        .filter_map(|a| a["permission_set_arn"].as_str().map(str::to_owned))
        .collect();
    sets.sort();
    sets.dedup();
    sets
}
