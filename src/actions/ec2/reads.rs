//! The reads every EC2 action makes per instance — the instance, its interfaces, which of
//! them sit in a group, a group's rule count — batched across concurrent items (see
//! [`crate::actions::Batches`]). Batched with filters, not id lists: one id EC2 does not know
//! fails a whole `InstanceIds` call, while a filter just leaves it out, and each item then
//! handles its own absence.

use std::collections::HashMap;

use aws_sdk_ec2::types::{Filter, Instance, NetworkInterface};

use super::{ActionError, MAX_FILTER_VALUES};
use crate::actions::StepContext;

/// The instance, or a clear not-found error.
pub(crate) async fn describe_one(
    ctx: &StepContext,
    instance_id: &str,
) -> Result<Instance, ActionError> {
    ctx.batched(
        "ec2:DescribeInstances",
        instance_id,
        |ctx, ids| async move { describe_instances(&ctx, &ids).await },
    )
    .await?
    .ok_or_else(|| ActionError::Failed(format!("instance {instance_id} not found")))
}

/// The network interfaces attached to an instance, with their own groups and tags
/// (DescribeNetworkInterfaces reports an interface's groups exactly; DescribeInstances may not).
pub(crate) async fn attached_interfaces(
    ctx: &StepContext,
    instance_id: &str,
) -> Result<Vec<NetworkInterface>, ActionError> {
    let found = ctx
        .batched(
            "ec2:DescribeNetworkInterfaces/attached",
            instance_id,
            |ctx, ids| async move { interfaces_of(&ctx, &ids, None).await },
        )
        .await?;
    Ok(found.unwrap_or_default())
}

/// The ids of the instance's interfaces that are in `group`, read with the `group-id` filter
/// (exact, whatever an interface's `Groups` field shows).
pub(crate) async fn interfaces_in_group(
    ctx: &StepContext,
    instance_id: &str,
    group: &str,
) -> Result<Vec<String>, ActionError> {
    let owned = group.to_owned();
    let found = ctx
        .batched(
            &format!("ec2:DescribeNetworkInterfaces/in/{group}"),
            instance_id,
            move |ctx, ids| async move { interfaces_of(&ctx, &ids, Some(&owned)).await },
        )
        .await?;
    Ok(found
        .unwrap_or_default()
        .iter()
        .filter_map(|eni| eni.network_interface_id().map(str::to_owned))
        .collect())
}

/// How many rules (in and out) the group has; an error if EC2 does not know it.
pub(crate) async fn group_rule_count(ctx: &StepContext, group: &str) -> Result<usize, ActionError> {
    ctx.batched(
        "ec2:DescribeSecurityGroups/rules",
        group,
        |ctx, groups| async move { rule_counts(&ctx, &groups).await },
    )
    .await?
    .ok_or_else(|| ActionError::Failed(format!("security group {group} not found")))
}

async fn describe_instances(
    ctx: &StepContext,
    ids: &[String],
) -> Result<HashMap<String, Instance>, ActionError> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(MAX_FILTER_VALUES) {
        let targets: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let mut token = None;
        loop {
            let page = ctx
                .call("ec2", "DescribeInstances", &targets, || {
                    ctx.clients()
                        .ec2
                        .describe_instances()
                        .filters(
                            Filter::builder()
                                .name("instance-id")
                                .set_values(Some(chunk.to_vec()))
                                .build(),
                        )
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                if let Some(id) = instance.instance_id() {
                    found.insert(id.to_owned(), instance.clone());
                }
            }
            token = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(found)
}

/// The interfaces attached to `instances` (in `group`, when given), by instance.
async fn interfaces_of(
    ctx: &StepContext,
    instances: &[String],
    group: Option<&str>,
) -> Result<HashMap<String, Vec<NetworkInterface>>, ActionError> {
    let mut found: HashMap<String, Vec<NetworkInterface>> = HashMap::new();
    for chunk in instances.chunks(MAX_FILTER_VALUES) {
        let mut targets: Vec<&str> = chunk.iter().map(String::as_str).collect();
        targets.extend(group);
        let mut token = None;
        loop {
            let page = ctx
                .call("ec2", "DescribeNetworkInterfaces", &targets, || {
                    let mut request = ctx
                        .clients()
                        .ec2
                        .describe_network_interfaces()
                        .filters(
                            Filter::builder()
                                .name("attachment.instance-id")
                                .set_values(Some(chunk.to_vec()))
                                .build(),
                        )
                        .set_next_token(token.clone());
                    if let Some(group) = group {
                        request = request
                            .filters(Filter::builder().name("group-id").values(group).build());
                    }
                    request.send()
                })
                .await?;
            for eni in page.network_interfaces() {
                if let Some(instance) = eni.attachment().and_then(|a| a.instance_id()) {
                    found
                        .entry(instance.to_owned())
                        .or_default()
                        .push(eni.clone());
                }
            }
            token = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(found)
}

async fn rule_counts(
    ctx: &StepContext,
    groups: &[String],
) -> Result<HashMap<String, usize>, ActionError> {
    let mut found = HashMap::new();
    for chunk in groups.chunks(MAX_FILTER_VALUES) {
        let targets: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let output = ctx
            .call("ec2", "DescribeSecurityGroups", &targets, || {
                ctx.clients()
                    .ec2
                    .describe_security_groups()
                    .filters(
                        Filter::builder()
                            .name("group-id")
                            .set_values(Some(chunk.to_vec()))
                            .build(),
                    )
                    .send()
            })
            .await?;
        for group in output.security_groups() {
            if let Some(id) = group.group_id() {
                let rules = group.ip_permissions().len() + group.ip_permissions_egress().len();
                found.insert(id.to_owned(), rules);
            }
        }
    }
    Ok(found)
}
