//! Auto Scaling membership `ec2.detach_from_autoscaling` changed: attached to its group again,
//! or out of standby; then its scale-in protection as it was.

use serde_json::{Value, json};

use super::{Op, Piece};
use crate::actions::prior::Standing;
use crate::actions::{ActionError, StepContext};

pub(crate) struct Wanted {
    group: String,
    from_standby: bool,
    protected: bool,
}

pub(super) async fn plan(
    ctx: &StepContext,
    id: &str,
    outputs: &[Value],
) -> Result<Vec<Piece>, ActionError> {
    let Some(first) = outputs
        .iter()
        .find(|o| o["in_group"] == true && o["autoscaling_group"].is_string())
    else {
        return Ok(Vec::new());
    };
    let group = first["autoscaling_group"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let standby = first["mode"] == "standby";
    let before = json!({ "group": group, "state": "InService" });
    let after = if standby {
        json!({ "group": group, "state": "Standby" })
    } else {
        json!({ "group": null, "state": null })
    };
    let membership = ctx
        .call("autoscaling", "DescribeAutoScalingInstances", &[id], || {
            ctx.clients()
                .autoscaling
                .describe_auto_scaling_instances()
                .instance_ids(id)
                .send()
        })
        .await?;
    let member = membership.auto_scaling_instances().first();
    let state = member.and_then(|m| m.lifecycle_state());
    // On the way there counts as there.
    let state = match state {
        Some("Pending" | "Pending:Wait" | "Pending:Proceed" | "EnteringStandby") if standby => {
            Some("Standby")
        }
        Some(s) if s.starts_with("Pending") => Some("InService"),
        other => other,
    };
    let now = json!({
        "group": member.and_then(|m| m.auto_scaling_group_name()),
        "state": state,
    });
    Ok(vec![Piece {
        name: "autoscaling_group".into(),
        standing: Standing::of(&now, &before, &after, |a, b| a == b),
        left: after,
        now,
        restore_to: before,
        op: Op::Group(Wanted {
            group,
            from_standby: standby,
            protected: first["protected_from_scale_in_before"] == true,
        }),
    }])
}

pub(super) async fn apply(
    ctx: &StepContext,
    id: &str,
    wanted: &Wanted,
) -> Result<bool, ActionError> {
    let autoscaling = &ctx.clients().autoscaling;
    let group = wanted.group.as_str();
    let input = json!({ "AutoScalingGroupName": group, "InstanceIds": [id] });
    let sent = if wanted.from_standby {
        ctx.change("autoscaling", "ExitStandby", &[id, group], input, || {
            autoscaling
                .exit_standby()
                .auto_scaling_group_name(group)
                .instance_ids(id)
                .send()
        })
        .await?
        .is_some()
    } else {
        ctx.change(
            "autoscaling",
            "AttachInstances",
            &[id, group],
            input,
            || {
                autoscaling
                    .attach_instances()
                    .auto_scaling_group_name(group)
                    .instance_ids(id)
                    .send()
            },
        )
        .await?
        .is_some()
    };
    if sent {
        ctx.change(
            "autoscaling",
            "SetInstanceProtection",
            &[id, group],
            json!({ "AutoScalingGroupName": group, "InstanceIds": [id], "ProtectedFromScaleIn": wanted.protected }),
            || {
                autoscaling
                    .set_instance_protection()
                    .auto_scaling_group_name(group)
                    .instance_ids(id)
                    .protected_from_scale_in(wanted.protected)
                    .send()
            },
        )
        .await?;
    }
    Ok(sent)
}
