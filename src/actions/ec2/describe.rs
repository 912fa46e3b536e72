//! `ec2.describe_instance`: the facts later steps need, read once.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{ActionError, tag};
use crate::actions::StepContext;
use crate::actions::{Action, Execute};

/// Describe an instance (or several, in one batched call): state, network, volumes, profile.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DescribeInstance {
    /// The instance to describe.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// Several instances in one DescribeInstances call (outputs `instances`, keyed by id).
    #[serde(default)]
    pub instance_ids: Option<Vec<String>>,
}

impl Action for DescribeInstance {
    const NAME: &'static str = "ec2.describe_instance";
    const SUMMARY: &'static str = "read an instance's state, network interfaces, volumes, profile, tags and Auto Scaling group";
    const CALLS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:DescribeIamInstanceProfileAssociations",
    ];
    const PERMISSIONS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:DescribeIamInstanceProfileAssociations",
    ];
}

impl Execute for DescribeInstance {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let ids: Vec<String> = match (&self.instance_id, &self.instance_ids) {
            (Some(id), None) => vec![id.clone()],
            (None, Some(ids)) if !ids.is_empty() => ids.clone(),
            _ => {
                return Err(ActionError::Failed(
                    "give exactly one of `instance_id` or `instance_ids` (not empty)".into(),
                ));
            }
        };
        let targets: Vec<&str> = ids.iter().map(String::as_str).collect();
        let output = ctx
            .call("ec2", "DescribeInstances", &targets, || {
                ctx.clients()
                    .ec2
                    .describe_instances()
                    .set_instance_ids(Some(ids.clone()))
                    .send()
            })
            .await?;
        let associations = ctx
            .call(
                "ec2",
                "DescribeIamInstanceProfileAssociations",
                &targets,
                || {
                    ctx.clients()
                        .ec2
                        .describe_iam_instance_profile_associations()
                        .filters(
                            aws_sdk_ec2::types::Filter::builder()
                                .name("instance-id")
                                .set_values(Some(ids.clone()))
                                .build(),
                        )
                        .send()
                },
            )
            .await?;
        let mut facts = Map::new();
        for instance in output.reservations().iter().flat_map(|r| r.instances()) {
            let id = instance.instance_id().unwrap_or_default().to_owned();
            let association = associations
                .iam_instance_profile_associations()
                .iter()
                .find(|a| {
                    a.instance_id() == Some(id.as_str())
                        && a.state().is_some_and(|s| s.as_str() == "associated")
                });
            facts.insert(id, instance_facts(instance, association));
        }
        let missing: Vec<&str> = targets
            .iter()
            .copied()
            .filter(|id| !facts.contains_key(*id))
            .collect();
        if !missing.is_empty() {
            return Err(ActionError::Failed(format!(
                "instance(s) not found: {}",
                missing.join(", ")
            )));
        }
        match &self.instance_id {
            Some(id) => Ok(facts.remove(id).unwrap_or_default()),
            None => Ok(json!({ "instances": facts, "instance_ids": ids })),
        }
    }
}

fn instance_facts(
    instance: &aws_sdk_ec2::types::Instance,
    association: Option<&aws_sdk_ec2::types::IamInstanceProfileAssociation>,
) -> Value {
    let interfaces: Vec<Value> = instance
        .network_interfaces()
        .iter()
        .map(|eni| {
            json!({
                "network_interface_id": eni.network_interface_id(),
                "device_index": eni.attachment().and_then(|a| a.device_index()),
                "private_ip": eni.private_ip_address(),
                "public_ip": eni.association().and_then(|a| a.public_ip()),
                "groups": eni.groups().iter().filter_map(|g| g.group_id()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let volumes: Vec<Value> = instance
        .block_device_mappings()
        .iter()
        .filter_map(|mapping| {
            let ebs = mapping.ebs()?;
            Some(json!({
                "volume_id": ebs.volume_id(),
                "device": mapping.device_name(),
                "delete_on_termination": ebs.delete_on_termination(),
            }))
        })
        .collect();
    let tags: Map<String, Value> = instance
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_owned(), json!(t.value()))))
        .collect();
    let mut public_ips: Vec<&str> = instance
        .network_interfaces()
        .iter()
        .filter_map(|eni| eni.association().and_then(|a| a.public_ip()))
        .collect();
    if let Some(ip) = instance.public_ip_address()
        && !public_ips.contains(&ip)
    {
        public_ips.push(ip);
    }
    json!({
        "instance_id": instance.instance_id(),
        "state": instance.state().and_then(|s| s.name()).map(|n| n.as_str()),
        "instance_type": instance.instance_type().map(|t| t.as_str()),
        "image_id": instance.image_id(),
        "launch_time": instance.launch_time().map(|t| t.to_string()),
        "vpc_id": instance.vpc_id(),
        "subnet_id": instance.subnet_id(),
        "availability_zone": instance.placement().and_then(|p| p.availability_zone()),
        "private_ip": instance.private_ip_address(),
        "public_ips": public_ips,
        "network_interfaces": interfaces,
        "network_interface_ids": instance.network_interfaces().iter().filter_map(|e| e.network_interface_id()).collect::<Vec<_>>(),
        "volumes": volumes,
        "volume_ids": instance.block_device_mappings().iter().filter_map(|m| m.ebs().and_then(|e| e.volume_id())).collect::<Vec<_>>(),
        "instance_profile": association.map(|a| json!({
            "arn": a.iam_instance_profile().and_then(|p| p.arn()),
            "association_id": a.association_id(),
        })),
        "metadata_options": instance.metadata_options().map(|m| json!({
            "http_endpoint": m.http_endpoint().map(|e| e.as_str()),
            "http_tokens": m.http_tokens().map(|t| t.as_str()),
        })),
        "tags": tags,
        "autoscaling_group": tag(instance.tags(), "aws:autoscaling:groupName"),
    })
}
