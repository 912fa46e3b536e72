//! Elastic IPs `ec2.disassociate_addresses` took away: each associated again with the interface
//! and private address it had.

use serde_json::{Value, json};

use super::{Op, Piece};
use crate::actions::prior::Standing;
use crate::actions::{ActionError, StepContext};

pub(super) async fn plan(ctx: &StepContext, outputs: &[Value]) -> Result<Vec<Piece>, ActionError> {
    let mut pieces = Vec::new();
    let mut seen = Vec::new();
    for address in outputs
        .iter()
        .flat_map(|o| o["addresses"].as_array().into_iter().flatten())
    {
        let Some(allocation) = address["allocation_id"].as_str() else {
            continue;
        };
        if seen.contains(&allocation) {
            continue;
        }
        seen.push(allocation);
        let described = ctx
            .call("ec2", "DescribeAddresses", &[allocation], || {
                ctx.clients()
                    .ec2
                    .describe_addresses()
                    .allocation_ids(allocation)
                    .send()
            })
            .await?;
        // Associated (an association id) to which interface; moto keeps the interface id of a
        // disassociated address, so the association id decides.
        let now = json!(
            described
                .addresses()
                .first()
                .filter(|a| a.association_id().is_some())
                .and_then(|a| a.network_interface_id())
        );
        let before = address["network_interface_id"].clone();
        pieces.push(Piece {
            name: format!(
                "elastic_ip {}",
                address["public_ip"].as_str().unwrap_or(allocation)
            ),
            standing: Standing::of(&now, &before, &Value::Null, |a, b| a == b),
            left: Value::Null,
            now,
            restore_to: before,
            op: Op::Address(address.clone()),
        });
    }
    Ok(pieces)
}

pub(super) async fn apply(ctx: &StepContext, address: &Value) -> Result<bool, ActionError> {
    let allocation = address["allocation_id"].as_str().unwrap_or_default();
    let eni = address["network_interface_id"].as_str().unwrap_or_default();
    let private_ip = address["private_ip"].as_str().map(str::to_owned);
    Ok(ctx
        .ec2_change("AssociateAddress", &[allocation, eni], |dry_run| {
            ctx.clients()
                .ec2
                .associate_address()
                .dry_run(dry_run)
                .allocation_id(allocation)
                .network_interface_id(eni)
                .set_private_ip_address(private_ip.clone())
                // Never take the address from where someone put it since.
                .allow_reassociation(false)
                .send()
        })
        .await?
        .is_some())
}
