//! Interfaces and firebreak's groups, shared by isolation and the collection path: which of
//! an instance's interfaces are in which groups (read exactly), moving an interface with
//! retries, firebreak's groups of a role in a VPC.

use aws_sdk_ec2::types::{Filter, SecurityGroup};

use super::{ActionError, tags};
use crate::actions::StepContext;

/// The role tag of a collection group.
pub(super) const COLLECTION_ROLE: &str = "collection";

/// Its name's prefix (the run id follows): a hint only; the tags decide.
pub(super) const COLLECTION_PREFIX: &str = "firebreak-collection-";

/// The VPC's groups firebreak made for `role` (its role and managed tags).
pub(super) async fn role_groups(
    ctx: &StepContext,
    vpc: &str,
    role: &str,
) -> Result<Vec<SecurityGroup>, ActionError> {
    let output = ctx
        .call("ec2", "DescribeSecurityGroups", &[vpc], || {
            ctx.clients()
                .ec2
                .describe_security_groups()
                .filters(Filter::builder().name("vpc-id").values(vpc).build())
                .filters(
                    Filter::builder()
                        .name(format!("tag:{}", tags::ROLE))
                        .values(role)
                        .build(),
                )
                .filters(
                    Filter::builder()
                        .name(format!("tag:{}", tags::MANAGED))
                        .values("true")
                        .build(),
                )
                .send()
        })
        .await?;
    Ok(output.security_groups().to_vec())
}

/// The instance's interfaces that are in any of `groups`: one read per group, each batched
/// with the same group's reads for other instances.
pub(super) async fn interfaces_in_groups(
    ctx: &StepContext,
    instance_id: &str,
    groups: &[String],
) -> Result<Vec<String>, ActionError> {
    let mut found = Vec::new();
    for group in groups {
        for eni in super::reads::interfaces_in_group(ctx, instance_id, group).await? {
            if !found.contains(&eni) {
                found.push(eni);
            }
        }
    }
    Ok(found)
}

/// Attempts for the move into isolation, and for the restore when it keeps failing: whatever
/// the error (the move is idempotent), with backoff.
pub(super) const MOVE_ATTEMPTS: u32 = 10;

pub(super) async fn move_retrying(
    ctx: &StepContext,
    eni: &str,
    groups: &[String],
) -> Result<(), ActionError> {
    // This loop bounds the retries (about 30 s), not the call's own re-sends.
    let once = ctx.sending_once();
    let mut attempt = 1;
    loop {
        match move_once(&once, eni, groups).await {
            Ok(()) => return Ok(()),
            Err(error) if error.is_journal() || attempt >= MOVE_ATTEMPTS => return Err(error),
            Err(_) => {
                // 500 ms doubling to 4 s, with jitter: about 30 s in all.
                let wait = crate::aws::backoff::equal_jitter(
                    attempt,
                    std::time::Duration::from_millis(500),
                    std::time::Duration::from_secs(4),
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        }
    }
}

pub(super) async fn move_once(
    ctx: &StepContext,
    eni: &str,
    groups: &[String],
) -> Result<(), ActionError> {
    let mut targets = vec![eni];
    targets.extend(groups.iter().map(String::as_str));
    ctx.ec2_change("ModifyNetworkInterfaceAttribute", &targets, |dry_run| {
        ctx.clients()
            .ec2
            .modify_network_interface_attribute()
            .dry_run(dry_run)
            .network_interface_id(eni)
            .set_groups(Some(groups.to_vec()))
            .send()
    })
    .await
    .map(|_| ())
}
