//! Load balancer registrations `elbv2.deregister_targets` removed: registered again where
//! they were (group, port, zone).

use serde_json::{Value, json};

use super::{Op, Piece};
use crate::actions::elbv2::registrations;
use crate::actions::prior::Standing;
use crate::actions::{ActionError, StepContext};

pub(super) async fn plan(
    ctx: &StepContext,
    id: &str,
    outputs: &[Value],
) -> Result<Vec<Piece>, ActionError> {
    let removed: Vec<&Value> = outputs
        .iter()
        .flat_map(|o| o["deregistered"].as_array().into_iter().flatten())
        .collect();
    if removed.is_empty() {
        return Ok(Vec::new());
    }
    let now_registered = registrations(ctx, id).await?;
    // A load balancer refuses a target that is not running: a stopped instance (a person
    // approved the stop) is registered again after someone starts it.
    let running = crate::actions::ec2::describe_one(ctx, id)
        .await?
        .state()
        .and_then(|s| s.name())
        .is_some_and(|n| n.as_str() == "running");
    let mut pieces = Vec::new();
    for registration in removed {
        let group = &registration["target_group_arn"];
        let now = json!(
            now_registered
                .iter()
                .any(|r| &r["target_group_arn"] == group)
        );
        pieces.push(Piece {
            name: format!("target_group {}", group.as_str().unwrap_or_default()),
            standing: Standing::of(&now, &json!(true), &json!(false), |a, b| a == b),
            left: json!(false),
            now,
            restore_to: json!(true),
            op: if running {
                Op::Target(registration.clone())
            } else {
                Op::Deferred(format!(
                    "instance {id} is not running; register it in {} after starting it",
                    group.as_str().unwrap_or_default()
                ))
            },
        });
    }
    Ok(pieces)
}
