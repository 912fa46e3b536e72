//! Permission preflight for drills: asks IAM (`iam:SimulatePrincipalPolicy`) whether the caller
//! holds every permission the plan needs. Unavailable or denied simulation is reported and the
//! drill carries on — it never fails a drill.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::actions::{self, RunUses, StepContext};
use crate::journal::event::Preflight;
use crate::runbook::Runbook;

/// The IAM principal to simulate for a caller ARN: an assumed-role session is simulated as its
/// role (looked up for its path).
async fn principal(ctx: &StepContext, caller: &str) -> String {
    let Some(rest) = caller.split(":assumed-role/").nth(1) else {
        return caller.to_owned();
    };
    let role = rest.split('/').next().unwrap_or_default();
    let found = ctx
        .call("iam", "GetRole", &[role], || {
            ctx.clients().iam.get_role().role_name(role).send()
        })
        .await;
    match found {
        Ok(output) => output
            .role()
            .map(|r| r.arn().to_owned())
            .unwrap_or_default(),
        Err(_) => {
            let account = caller.split(':').nth(4).unwrap_or_default();
            format!("arn:aws:iam::{account}:role/{role}")
        }
    }
}

/// The simulation's verdict per permission and per step; `checked: false` with the reason when
/// it could not be made. Its calls are journaled under `ctx`'s pseudo-step (`preflight`).
pub async fn run(
    ctx: &StepContext,
    caller: Option<&str>,
    runbook: &Runbook,
    uses: RunUses,
) -> Preflight {
    let Some(caller) = caller else {
        return Preflight {
            checked: false,
            principal: None,
            error: Some("the caller identity is unknown (sts:GetCallerIdentity failed)".into()),
            decisions: None,
            steps: None,
        };
    };
    let principal = principal(ctx, caller).await;
    let mut permissions: Vec<String> = actions::permissions(&[runbook], uses).into_iter().collect();
    permissions.sort();
    let mut decisions = BTreeMap::new();
    // SimulatePrincipalPolicy takes a bounded number of actions per call.
    for chunk in permissions.chunks(50) {
        let result = ctx
            .call("iam", "SimulatePrincipalPolicy", &[&principal], || {
                ctx.clients()
                    .iam
                    .simulate_principal_policy()
                    .policy_source_arn(&principal)
                    .set_action_names(Some(chunk.to_vec()))
                    .send()
            })
            .await;
        match result {
            Ok(output) => {
                for evaluation in output.evaluation_results() {
                    let allowed = evaluation.eval_decision().as_str() == "allowed";
                    decisions.insert(
                        evaluation.eval_action_name().to_owned(),
                        if allowed { "allowed" } else { "denied" },
                    );
                }
            }
            Err(error) => {
                return Preflight {
                    checked: false,
                    principal: Some(principal),
                    error: Some(format!("could not check permissions: {error}")),
                    decisions: None,
                    steps: None,
                };
            }
        }
    }
    let mut steps = Map::new();
    for (id, step) in runbook.qualified_action_steps() {
        let Some(info) = actions::find(&step.action) else {
            continue;
        };
        let (allowed, denied): (Vec<&str>, Vec<&str>) = info
            .permissions
            .iter()
            .copied()
            .partition(|p| decisions.get(*p) == Some(&"allowed"));
        steps.insert(id, json!({"allowed": allowed, "denied": denied}));
    }
    Preflight {
        checked: true,
        principal: Some(principal),
        error: None,
        decisions: Some(
            decisions
                .into_iter()
                .map(|(k, v)| (k, Value::from(v)))
                .collect(),
        ),
        steps: Some(steps),
    }
}
