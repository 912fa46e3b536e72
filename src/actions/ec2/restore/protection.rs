//! What `ec2.protect_instance` changed for preservation: termination protection, the shutdown
//! behaviour, and each volume's delete-on-termination.

use aws_sdk_ec2::types::{
    AttributeBooleanValue, AttributeValue, EbsInstanceBlockDeviceSpecification,
    InstanceAttributeName, InstanceBlockDeviceMappingSpecification,
};
use serde_json::{Value, json};

use super::{Op, Piece};
use crate::actions::ec2::describe_one;
use crate::actions::prior::Standing;
use crate::actions::{ActionError, StepContext};

pub(crate) enum Wanted {
    Termination(bool),
    Shutdown(String),
    DeleteOnTermination { device: String, value: bool },
}

async fn attribute(
    ctx: &StepContext,
    id: &str,
    name: InstanceAttributeName,
) -> Result<
    aws_sdk_ec2::operation::describe_instance_attribute::DescribeInstanceAttributeOutput,
    ActionError,
> {
    ctx.call("ec2", "DescribeInstanceAttribute", &[id], || {
        ctx.clients()
            .ec2
            .describe_instance_attribute()
            .instance_id(id)
            .attribute(name.clone())
            .send()
    })
    .await
}

pub(super) async fn plan(
    ctx: &StepContext,
    id: &str,
    outputs: &[Value],
) -> Result<Vec<Piece>, ActionError> {
    let (Some(first), Some(last)) = (outputs.first(), outputs.last()) else {
        return Ok(Vec::new());
    };
    let mut pieces = Vec::new();
    let termination = (
        &first["termination_protection"]["before"],
        &last["termination_protection"]["after"],
    );
    if termination.0 != termination.1 && termination.0.is_boolean() {
        let out = attribute(ctx, id, InstanceAttributeName::DisableApiTermination).await?;
        let now = json!(out.disable_api_termination().and_then(|v| v.value()));
        pieces.push(Piece {
            name: "termination_protection".into(),
            standing: Standing::of(&now, termination.0, termination.1, |a, b| a == b),
            left: termination.1.clone(),
            now,
            restore_to: termination.0.clone(),
            op: Op::Protection(Wanted::Termination(
                termination.0.as_bool().unwrap_or(false),
            )),
        });
    }
    let shutdown = (
        &first["shutdown_behavior"]["before"],
        &last["shutdown_behavior"]["after"],
    );
    if shutdown.0 != shutdown.1
        && let Some(before) = shutdown.0.as_str()
    {
        let out = attribute(
            ctx,
            id,
            InstanceAttributeName::InstanceInitiatedShutdownBehavior,
        )
        .await?;
        let now = json!(
            out.instance_initiated_shutdown_behavior()
                .and_then(|v| v.value())
        );
        pieces.push(Piece {
            name: "shutdown_behavior".into(),
            standing: Standing::of(&now, shutdown.0, shutdown.1, |a, b| a == b),
            left: shutdown.1.clone(),
            now,
            restore_to: shutdown.0.clone(),
            op: Op::Protection(Wanted::Shutdown(before.to_owned())),
        });
    }
    let changed: Vec<&Value> = first["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| {
            v["delete_on_termination_before"].is_boolean()
                && last["volumes"].as_array().into_iter().flatten().any(|l| {
                    l["device"] == v["device"]
                        && l["delete_on_termination_after"] != v["delete_on_termination_before"]
                })
        })
        .collect();
    if !changed.is_empty() {
        let instance = describe_one(ctx, id).await?;
        for volume in changed {
            let device = volume["device"].as_str().unwrap_or_default();
            let now = json!(
                instance
                    .block_device_mappings()
                    .iter()
                    .find(|m| m.device_name() == Some(device))
                    .and_then(|m| m.ebs())
                    .and_then(|e| e.delete_on_termination())
            );
            let before = volume["delete_on_termination_before"].clone();
            let after = json!(!before.as_bool().unwrap_or(false));
            pieces.push(Piece {
                name: format!("delete_on_termination {device}"),
                standing: Standing::of(&now, &before, &after, |a, b| a == b),
                left: after,
                now,
                op: Op::Protection(Wanted::DeleteOnTermination {
                    device: device.to_owned(),
                    value: before.as_bool().unwrap_or(true),
                }),
                restore_to: before,
            });
        }
    }
    Ok(pieces)
}

pub(super) async fn apply(
    ctx: &StepContext,
    id: &str,
    wanted: &Wanted,
) -> Result<bool, ActionError> {
    let ec2 = &ctx.clients().ec2;
    Ok(ctx
        .ec2_change("ModifyInstanceAttribute", &[id], |dry_run| {
            let request = ec2
                .modify_instance_attribute()
                .dry_run(dry_run)
                .instance_id(id);
            match wanted {
                Wanted::Termination(value) => request.disable_api_termination(
                    AttributeBooleanValue::builder().value(*value).build(),
                ),
                Wanted::Shutdown(value) => request.instance_initiated_shutdown_behavior(
                    AttributeValue::builder().value(value).build(),
                ),
                Wanted::DeleteOnTermination { device, value } => request.block_device_mappings(
                    InstanceBlockDeviceMappingSpecification::builder()
                        .device_name(device)
                        .ebs(
                            EbsInstanceBlockDeviceSpecification::builder()
                                .delete_on_termination(*value)
                                .build(),
                        )
                        .build(),
                ),
            }
            .send()
        })
        .await?
        .is_some())
}
