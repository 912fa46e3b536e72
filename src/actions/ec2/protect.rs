//! `ec2.protect_instance`.

use aws_sdk_ec2::types::{
    AttributeBooleanValue, EbsInstanceBlockDeviceSpecification, InstanceAttributeName,
    InstanceBlockDeviceMappingSpecification,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ActionError, describe_one};
use crate::actions::grants::{Grant, arn};
use crate::actions::{Action, Execute};
use crate::actions::{Mode, StepContext};

/// Turn on termination protection, set shutdown behaviour to `stop`, and keep every EBS volume on termination.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtectInstance {
    pub instance_id: String,
}

impl Action for ProtectInstance {
    const NAME: &'static str = "ec2.protect_instance";
    const SUMMARY: &'static str = "keep the instance and its evidence: termination protection on, shutdown behaviour `stop`, volumes kept on termination";
    const CALLS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:DescribeInstanceAttribute",
        "ec2:ModifyInstanceAttribute",
    ];
    const PERMISSIONS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:DescribeInstanceAttribute",
        "ec2:ModifyInstanceAttribute",
    ];
    const GRANTS: &'static [Grant] = &[Grant::on(
        &[
            "ec2:DescribeInstanceAttribute",
            "ec2:ModifyInstanceAttribute",
        ],
        &[arn::INSTANCE],
    )];
}

const WANTED_SHUTDOWN_BEHAVIOR: &str = "stop";

/// One EBS volume's `DeleteOnTermination`, as read.
struct Volume {
    device: String,
    volume_id: Option<String>,
    delete_on_termination: Option<bool>,
}

impl Volume {
    fn needs_change(&self) -> bool {
        // Unknown counts as "may be deleted": setting it to false is harmless.
        self.delete_on_termination != Some(false)
    }
}

impl Execute for ProtectInstance {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let id = self.instance_id.as_str();
        let instance = describe_one(ctx, id).await?;
        let volumes: Vec<Volume> = instance
            .block_device_mappings()
            .iter()
            .filter_map(|mapping| {
                let ebs = mapping.ebs()?;
                Some(Volume {
                    device: mapping.device_name()?.to_owned(),
                    volume_id: ebs.volume_id().map(str::to_owned),
                    delete_on_termination: ebs.delete_on_termination(),
                })
            })
            .collect();

        let termination = ctx
            .call("ec2", "DescribeInstanceAttribute", &[id], || {
                ctx.clients()
                    .ec2
                    .describe_instance_attribute()
                    .instance_id(id)
                    .attribute(InstanceAttributeName::DisableApiTermination)
                    .send()
            })
            .await?;
        let protected_before = termination
            .disable_api_termination()
            .and_then(AttributeBooleanValue::value)
            .unwrap_or(false);
        let shutdown = ctx
            .call("ec2", "DescribeInstanceAttribute", &[id], || {
                ctx.clients()
                    .ec2
                    .describe_instance_attribute()
                    .instance_id(id)
                    .attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior)
                    .send()
            })
            .await?;
        let shutdown_before = shutdown
            .instance_initiated_shutdown_behavior()
            .and_then(|v| v.value())
            .map(str::to_owned);

        let mut progress = Progress::default();
        let outputs = |progress: &Progress| {
            outputs(
                id,
                protected_before,
                shutdown_before.as_deref(),
                &volumes,
                progress,
                ctx.mode,
            )
        };

        if !protected_before {
            ctx.ec2_change("ModifyInstanceAttribute", &[id], |dry_run| {
                ctx.clients()
                    .ec2
                    .modify_instance_attribute()
                    .dry_run(dry_run)
                    .instance_id(id)
                    .disable_api_termination(AttributeBooleanValue::builder().value(true).build())
                    .send()
            })
            .await
            .map_err(|e| e.with_outputs(outputs(&progress)))?;
            progress.termination_protection = true;
        }

        if shutdown_before.as_deref() != Some(WANTED_SHUTDOWN_BEHAVIOR) {
            // The `Attribute`/`Value` form, documented for this attribute. (moto 5.2.5 does not
            // know the structured `InstanceInitiatedShutdownBehavior.Value` form: it takes it
            // for a `Groups` change and empties the instance's security groups.)
            ctx.ec2_change("ModifyInstanceAttribute", &[id], |dry_run| {
                ctx.clients()
                    .ec2
                    .modify_instance_attribute()
                    .dry_run(dry_run)
                    .instance_id(id)
                    .attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior)
                    .value(WANTED_SHUTDOWN_BEHAVIOR)
                    .send()
            })
            .await
            .map_err(|e| e.with_outputs(outputs(&progress)))?;
            progress.shutdown_behavior = true;
        }

        let to_change: Vec<&Volume> = volumes.iter().filter(|v| v.needs_change()).collect();
        if !to_change.is_empty() {
            let mappings: Vec<InstanceBlockDeviceMappingSpecification> = to_change
                .iter()
                .map(|volume| {
                    InstanceBlockDeviceMappingSpecification::builder()
                        .device_name(&volume.device)
                        .ebs(
                            EbsInstanceBlockDeviceSpecification::builder()
                                .delete_on_termination(false)
                                .build(),
                        )
                        .build()
                })
                .collect();
            let mut targets = vec![id];
            targets.extend(to_change.iter().filter_map(|v| v.volume_id.as_deref()));
            ctx.ec2_change("ModifyInstanceAttribute", &targets, |dry_run| {
                ctx.clients()
                    .ec2
                    .modify_instance_attribute()
                    .dry_run(dry_run)
                    .instance_id(id)
                    .set_block_device_mappings(Some(mappings.clone()))
                    .send()
            })
            .await
            .map_err(|e| e.with_outputs(outputs(&progress)))?;
            progress.volumes = true;
        }

        Ok(outputs(&progress))
    }
}

/// Which of the three changes have been made (or, in a drill, would be).
#[derive(Default)]
struct Progress {
    termination_protection: bool,
    shutdown_behavior: bool,
    volumes: bool,
}

fn outputs(
    instance_id: &str,
    protected_before: bool,
    shutdown_before: Option<&str>,
    volumes: &[Volume],
    progress: &Progress,
    mode: Mode,
) -> Value {
    let volume_changed = |v: &Volume| progress.volumes && v.needs_change();
    let volume_outputs: Vec<Value> = volumes
        .iter()
        .map(|v| {
            json!({
                "device": v.device,
                "volume_id": v.volume_id,
                "delete_on_termination_before": v.delete_on_termination,
                "delete_on_termination_after": if volume_changed(v) { Some(false) } else { v.delete_on_termination },
            })
        })
        .collect();
    let volumes_changed: Vec<&str> = volumes
        .iter()
        .filter(|v| volume_changed(v))
        .map(|v| v.volume_id.as_deref().unwrap_or(v.device.as_str()))
        .collect();
    let changed = progress.termination_protection || progress.shutdown_behavior || progress.volumes;
    let mut out = json!({
        "instance_id": instance_id,
        "termination_protection": {
            "before": protected_before,
            "after": protected_before || progress.termination_protection,
        },
        "shutdown_behavior": {
            "before": shutdown_before,
            "after": if progress.shutdown_behavior { Some(WANTED_SHUTDOWN_BEHAVIOR) } else { shutdown_before },
        },
        "volumes": volume_outputs,
        "volumes_changed": volumes_changed,
    });
    change_flags(&mut out, changed, mode);
    out
}

/// Sets `changed` on an action's outputs, the same way for every action of this family: live,
/// whether anything was changed; in a drill (`ctx.mode` dry-run) nothing was, so `changed` is
/// false, `dry_run` is true and `would_change` says whether a live run would change anything
/// (the other outputs then describe what it would do). Shared by the EC2 containment actions.
pub(super) fn change_flags(out: &mut Value, changed: bool, mode: Mode) {
    match mode {
        Mode::Live => out["changed"] = json!(changed),
        Mode::DryRun => {
            out["changed"] = json!(false);
            out["dry_run"] = json!(true);
            out["would_change"] = json!(changed);
        }
    }
}
