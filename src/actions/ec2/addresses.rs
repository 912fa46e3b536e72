//! `ec2.disassociate_addresses`.

use aws_sdk_ec2::types::{Address, Filter};
use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::protect::change_flags;
use super::{ActionError, describe_one};
use crate::actions::grants::{Grant, arn};
use crate::actions::{Action, Execute};
use crate::actions::{StepContext, reconcile};

/// Disassociate every Elastic IP of the instance (all its interfaces), recording what was where.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DisassociateAddresses {
    pub instance_id: String,
}

impl Action for DisassociateAddresses {
    const NAME: &'static str = "ec2.disassociate_addresses";
    const SUMMARY: &'static str = "disassociate the Elastic IPs of the instance, recording each";
    const CALLS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:DescribeAddresses",
        "ec2:DisassociateAddress",
    ];
    const PERMISSIONS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:DescribeAddresses",
        "ec2:DisassociateAddress",
    ];
    const GRANTS: &'static [Grant] = &[Grant::on(&["ec2:DisassociateAddress"], &[arn::ELASTIC_IP])];
}

impl Execute for DisassociateAddresses {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let id = self.instance_id.as_str();
        let instance = describe_one(ctx, id).await?;
        let interfaces: Vec<String> = instance
            .network_interfaces()
            .iter()
            .filter_map(|eni| eni.network_interface_id().map(str::to_owned))
            .collect();

        // By instance, and by each of its interfaces: an address associated with a secondary
        // interface need not carry the instance id (moto leaves it out). Both reads are
        // batched with the other items'.
        let mut addresses = associated_with(ctx, "instance-id", id).await?;
        for eni in &interfaces {
            for address in associated_with(ctx, "network-interface-id", eni).await? {
                if !addresses.iter().any(|a| same(a, &address)) {
                    addresses.push(address);
                }
            }
        }
        let associated: Vec<&Address> = addresses
            .iter()
            .filter(|a| a.association_id().is_some())
            .collect();

        let mut done: Vec<Value> = Vec::new();
        for address in &associated {
            let association = address.association_id().unwrap_or_default();
            let public_ip = address.public_ip().unwrap_or_default();
            let targets = [id, public_ip, association];
            // Once it has worked the association id is gone and a second send fails: after a
            // lost answer, an association no longer there is this call's doing.
            let send = || async {
                ctx.ec2_change("DisassociateAddress", &targets, |dry_run| {
                    ctx.clients()
                        .ec2
                        .disassociate_address()
                        .dry_run(dry_run)
                        .association_id(association)
                        .customize()
                        .config_override(reconcile::ec2_once())
                        .send()
                })
                .await
                .map(|_| ())
            };
            let gone = || async { Ok(association_gone(ctx, association).await?.then_some(())) };
            reconcile::until_done(send, gone)
                .await
                .map_err(|e| e.with_outputs(outputs(id, &done, &associated, ctx)))?;
            done.push(describe_address(address));
        }
        Ok(outputs(id, &done, &associated, ctx))
    }
}

/// The addresses whose `filter` (`instance-id` or `network-interface-id`) is `value`, read
/// together with the same question of concurrent items.
async fn associated_with(
    ctx: &StepContext,
    filter: &'static str,
    value: &str,
) -> Result<Vec<Address>, ActionError> {
    let found = ctx
        .batched(
            &format!("ec2:DescribeAddresses/{filter}"),
            value,
            move |ctx, values| async move {
                let targets: Vec<&str> = values.iter().map(String::as_str).collect();
                let output = ctx
                    .call("ec2", "DescribeAddresses", &targets, || {
                        ctx.clients()
                            .ec2
                            .describe_addresses()
                            .filters(
                                Filter::builder()
                                    .name(filter)
                                    .set_values(Some(values.clone()))
                                    .build(),
                            )
                            .send()
                    })
                    .await?;
                let mut found: HashMap<String, Vec<Address>> = HashMap::new();
                for address in output.addresses() {
                    let key = match filter {
                        "instance-id" => address.instance_id(),
                        _ => address.network_interface_id(),
                    };
                    if let Some(key) = key {
                        found
                            .entry(key.to_owned())
                            .or_default()
                            .push(address.clone());
                    }
                }
                Ok(found)
            },
        )
        .await?;
    Ok(found.unwrap_or_default())
}

/// Whether no address holds `association` any more.
async fn association_gone(ctx: &StepContext, association: &str) -> Result<bool, ActionError> {
    let output = ctx
        .call("ec2", "DescribeAddresses", &[association], || {
            ctx.clients()
                .ec2
                .describe_addresses()
                .filters(
                    Filter::builder()
                        .name("association-id")
                        .values(association)
                        .build(),
                )
                .send()
        })
        .await?;
    Ok(output.addresses().is_empty())
}

fn same(a: &Address, b: &Address) -> bool {
    match (a.allocation_id(), b.allocation_id()) {
        (Some(x), Some(y)) => x == y,
        _ => a.public_ip() == b.public_ip(),
    }
}

/// An address as it was before: where it was associated.
fn describe_address(address: &Address) -> Value {
    json!({
        "public_ip": address.public_ip(),
        "allocation_id": address.allocation_id(),
        "association_id": address.association_id(),
        "network_interface_id": address.network_interface_id(),
        "private_ip": address.private_ip_address(),
        "instance_id": address.instance_id(),
    })
}

/// `addresses`: those disassociated (or, in a drill, that would be), each with its prior
/// association; `not_disassociated` (after a failure): those not reached.
fn outputs(instance_id: &str, done: &[Value], associated: &[&Address], ctx: &StepContext) -> Value {
    let pending: Vec<Value> = associated
        .iter()
        .skip(done.len())
        .map(|a| describe_address(a))
        .collect();
    let mut out = json!({
        "instance_id": instance_id,
        "addresses": done,
        "public_ips": done.iter().map(|a| a["public_ip"].clone()).collect::<Vec<_>>(),
    });
    if !pending.is_empty() {
        out["not_disassociated"] = json!(pending);
    }
    change_flags(&mut out, !done.is_empty(), ctx.mode);
    out
}
