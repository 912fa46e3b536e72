//! Firebreak's isolation and untrack groups in a VPC: adopted only when they are exactly
//! firebreak's, else made.

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, ResourceType, SecurityGroup, TagSpecification,
};

use super::super::{ActionError, new_tag, tags};
use super::Role;
use crate::actions::StepContext;

/// The VPC's firebreak group for `role`: an existing one is adopted only if it carries
/// firebreak's tags and exactly the rules the role needs (an isolation group left with the
/// default egress rule by a run that stopped right after creating it is finished); anything
/// else with firebreak's name or tags is left alone and a new group is made, so a group someone
/// planted is never trusted.
pub(super) async fn find_or_create_group(
    ctx: &StepContext,
    vpc: &str,
    role: Role,
    case: Option<&str>,
) -> Result<String, ActionError> {
    let candidates = tagged_groups(ctx, vpc, role).await?;
    if let Some(group) = candidates.iter().find(|g| adoptable(g, role)) {
        let id = group.group_id().unwrap_or_default().to_owned();
        finish_rules(ctx, group, role).await?;
        return Ok(id);
    }
    let base = format!("firebreak-{}", role.name());
    let mut group_tags = vec![
        new_tag(tags::ROLE, role.name()),
        new_tag(tags::MANAGED, "true"),
    ];
    if let Some(case) = case {
        group_tags.push(new_tag(tags::CASE, case));
    }
    // The plain name first; when it is taken (by a group that is not adoptable), a name that
    // says which run made it.
    for name in [
        base.clone(),
        format!("{base}-{}", ctx.run_id.to_lowercase()),
    ] {
        let created = ctx
            .ec2_change("CreateSecurityGroup", &[vpc], |dry_run| {
                ctx.clients()
                    .ec2
                    .create_security_group()
                    .dry_run(dry_run)
                    .vpc_id(vpc)
                    .group_name(&name)
                    .description(match role {
                        Role::Isolation => "firebreak isolation: no inbound, no outbound",
                        Role::Untrack => "firebreak: all traffic, so connections become untracked before isolation",
                    })
                    .tag_specifications(
                        TagSpecification::builder()
                            .resource_type(ResourceType::SecurityGroup)
                            .set_tags(Some(group_tags.clone()))
                            .build(),
                    )
                    .send()
            })
            .await;
        match created {
            Ok(Some(output)) => {
                let id = output.group_id().unwrap_or_default().to_owned();
                let made = tagged_groups(ctx, vpc, role).await?;
                match made.iter().find(|g| g.group_id() == Some(id.as_str())) {
                    Some(group) => finish_rules(ctx, group, role).await?,
                    None => {
                        return Err(ActionError::Failed(format!(
                            "security group {name} ({id}) was created in {vpc} but cannot be read back"
                        )));
                    }
                }
                return Ok(id);
            }
            Ok(None) => {
                return Ok(format!(
                    "<would be created by step {}: {name} in {vpc}>",
                    ctx.step_id
                ));
            }
            Err(error) if error.code() == Some("InvalidGroup.Duplicate") => continue,
            Err(error) => return Err(error),
        }
    }
    Err(ActionError::Failed(format!(
        "no usable {base} group in {vpc}, and both names firebreak would create are taken"
    )))
}

/// The VPC's groups tagged as firebreak's group for `role`.
pub(super) async fn tagged_groups(
    ctx: &StepContext,
    vpc: &str,
    role: Role,
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
                        .values(role.name())
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
    let mut groups = output.security_groups().to_vec();
    // The oldest-named first, so every run picks the same one.
    groups.sort_by(|a, b| a.group_name().cmp(&b.group_name()));
    Ok(groups)
}

/// Whether a tagged group has the rules its role needs: isolation none (or only the default
/// egress rule a new group gets), untrack exactly all traffic from and to 0.0.0.0/0 and ::/0.
pub(super) fn adoptable(group: &SecurityGroup, role: Role) -> bool {
    match role {
        Role::Isolation => {
            group.ip_permissions().is_empty()
                && (group.ip_permissions_egress().is_empty()
                    || is_default_egress(group.ip_permissions_egress()))
        }
        Role::Untrack => {
            is_all_traffic(group.ip_permissions()) && is_all_traffic(group.ip_permissions_egress())
        }
    }
}

/// A new group's rules brought to the role's: the isolation group loses its default egress
/// rule; the untrack group gets all traffic both ways.
pub(super) async fn finish_rules(
    ctx: &StepContext,
    group: &SecurityGroup,
    role: Role,
) -> Result<(), ActionError> {
    let id = group.group_id().unwrap_or_default();
    match role {
        Role::Isolation => {
            if !group.ip_permissions_egress().is_empty() {
                let rules = group.ip_permissions_egress().to_vec();
                ctx.ec2_change("RevokeSecurityGroupEgress", &[id], |dry_run| {
                    ctx.clients()
                        .ec2
                        .revoke_security_group_egress()
                        .dry_run(dry_run)
                        .group_id(id)
                        .set_ip_permissions(Some(rules.clone()))
                        .send()
                })
                .await?;
            }
        }
        Role::Untrack => {
            if !is_all_traffic(group.ip_permissions()) {
                ctx.ec2_change("AuthorizeSecurityGroupIngress", &[id], |dry_run| {
                    ctx.clients()
                        .ec2
                        .authorize_security_group_ingress()
                        .dry_run(dry_run)
                        .group_id(id)
                        .ip_permissions(all_traffic())
                        .send()
                })
                .await?;
            }
            if !is_all_traffic(group.ip_permissions_egress()) {
                // A new group's default egress (IPv4 only) is replaced by both families.
                if !group.ip_permissions_egress().is_empty() {
                    let rules = group.ip_permissions_egress().to_vec();
                    ctx.ec2_change("RevokeSecurityGroupEgress", &[id], |dry_run| {
                        ctx.clients()
                            .ec2
                            .revoke_security_group_egress()
                            .dry_run(dry_run)
                            .group_id(id)
                            .set_ip_permissions(Some(rules.clone()))
                            .send()
                    })
                    .await?;
                }
                ctx.ec2_change("AuthorizeSecurityGroupEgress", &[id], |dry_run| {
                    ctx.clients()
                        .ec2
                        .authorize_security_group_egress()
                        .dry_run(dry_run)
                        .group_id(id)
                        .ip_permissions(all_traffic())
                        .send()
                })
                .await?;
            }
        }
    }
    Ok(())
}

pub(super) fn all_traffic() -> IpPermission {
    IpPermission::builder()
        .ip_protocol("-1")
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
        .build()
}

/// Exactly one rule: every protocol from (or to) 0.0.0.0/0 and ::/0 — what makes connections
/// untracked (ICMP stays tracked whatever the rules).
pub(super) fn is_all_traffic(rules: &[IpPermission]) -> bool {
    let v4: Vec<&str> = rules
        .iter()
        .flat_map(|r| r.ip_ranges().iter().filter_map(|x| x.cidr_ip()))
        .collect();
    let v6: Vec<&str> = rules
        .iter()
        .flat_map(|r| r.ipv6_ranges().iter().filter_map(|x| x.cidr_ipv6()))
        .collect();
    rules.iter().all(|r| {
        r.ip_protocol() == Some("-1")
            && r.user_id_group_pairs().is_empty()
            && r.prefix_list_ids().is_empty()
    }) && v4 == ["0.0.0.0/0"]
        && v6 == ["::/0"]
}

/// The egress rule every new group starts with: all traffic to 0.0.0.0/0.
pub(super) fn is_default_egress(rules: &[IpPermission]) -> bool {
    rules.len() == 1
        && rules[0].ip_protocol() == Some("-1")
        && rules[0].ipv6_ranges().is_empty()
        && rules[0].user_id_group_pairs().is_empty()
        && rules[0].prefix_list_ids().is_empty()
        && rules[0].ip_ranges().len() == 1
        && rules[0].ip_ranges()[0].cidr_ip() == Some("0.0.0.0/0")
}
