//! Firebreak's isolation and untrack groups in a VPC: adopted only when they are exactly
//! firebreak's, else made.

use aws_sdk_ec2::types::{
    IpPermission, IpRange, Ipv6Range, ResourceType, SecurityGroup, TagSpecification,
};

use super::super::interfaces::role_groups;
use super::super::{ActionError, new_tag, tags};
use super::Role;
use crate::actions::{StepContext, reconcile};

/// The VPC's firebreak group for `role`: an existing one is adopted only if it carries
/// firebreak's tags and no rule beyond the role's (a group another run is still finishing, or
/// one left half-made by a run that stopped, is finished); anything else with firebreak's name
/// or tags is left alone and a new group is made, so a group someone planted is never trusted.
///
/// Safe across processes: when the name is taken (`InvalidGroup.Duplicate`) because another run
/// made the group a moment ago, the groups are read again and that one is adopted; rules it
/// already has are no error.
pub(super) async fn find_or_create_group(
    ctx: &StepContext,
    vpc: &str,
    role: Role,
    case: Option<&str>,
) -> Result<String, ActionError> {
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
        if let Some(id) = adopt(ctx, vpc, role).await? {
            return Ok(id);
        }
        // No client token: a group whose answer was lost is adopted (it carries firebreak's
        // tags from its creation) instead of being made again.
        let send = || async {
            ctx.ec2_change("CreateSecurityGroup", &[vpc], |dry_run| {
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
                    .customize()
                    .config_override(reconcile::ec2_once())
                    .send()
            })
            .await
            .map(|made| {
                made.map(|output| Created::Made(output.group_id().unwrap_or_default().to_owned()))
            })
        };
        let adopted = || async {
            Ok(adopt(ctx, vpc, role)
                .await?
                .map(|id| Some(Created::Adopted(id))))
        };
        match reconcile::until_done(send, adopted).await {
            Ok(Some(Created::Adopted(id))) => return Ok(id),
            Ok(Some(Created::Made(id))) => {
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
    if let Some(id) = adopt(ctx, vpc, role).await? {
        return Ok(id);
    }
    Err(ActionError::Failed(format!(
        "no usable {base} group in {vpc}, and both names firebreak would create are taken"
    )))
}

/// A group made by this call, or found after its answer was lost (rules already finished).
enum Created {
    Made(String),
    Adopted(String),
}

/// An adoptable group of the role in the VPC, its rules finished.
async fn adopt(ctx: &StepContext, vpc: &str, role: Role) -> Result<Option<String>, ActionError> {
    let candidates = tagged_groups(ctx, vpc, role).await?;
    match candidates.iter().find(|g| adoptable(g, role)) {
        Some(group) => {
            finish_rules(ctx, group, role).await?;
            Ok(Some(group.group_id().unwrap_or_default().to_owned()))
        }
        None => Ok(None),
    }
}

/// A rule change another run already made (it is finishing the same group) is done, not failed.
fn already(result: Result<(), ActionError>) -> Result<(), ActionError> {
    match result {
        Err(error)
            if matches!(
                error.code(),
                Some("InvalidPermission.Duplicate" | "InvalidPermission.NotFound")
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// The VPC's groups tagged as firebreak's group for `role`.
pub(super) async fn tagged_groups(
    ctx: &StepContext,
    vpc: &str,
    role: Role,
) -> Result<Vec<SecurityGroup>, ActionError> {
    let mut groups = role_groups(ctx, vpc, role.name()).await?;
    // The oldest-named first, so every run picks the same one.
    groups.sort_by(|a, b| a.group_name().cmp(&b.group_name()));
    Ok(groups)
}

/// Whether a tagged group has no rule beyond its role's: isolation none (or only the default
/// egress rule a new group gets), untrack nothing but all traffic from and to 0.0.0.0/0 and
/// ::/0 (perhaps not all of it yet: a group another run is finishing).
pub(super) fn adoptable(group: &SecurityGroup, role: Role) -> bool {
    match role {
        Role::Isolation => {
            group.ip_permissions().is_empty()
                && (group.ip_permissions_egress().is_empty()
                    || is_default_egress(group.ip_permissions_egress()))
        }
        Role::Untrack => {
            within_all_traffic(group.ip_permissions())
                && within_all_traffic(group.ip_permissions_egress())
        }
    }
}

/// A group's rules brought to the role's, by changes that commute, so two runs finishing the
/// same group at once both succeed: the isolation group loses every egress rule (one already
/// gone is no error); the untrack group gains whichever of all-traffic IPv4 and IPv6 it lacks,
/// in and out (a new group's default egress is the IPv4 half; one already there is no error).
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
                let revoked = ctx
                    .ec2_change("RevokeSecurityGroupEgress", &[id], |dry_run| {
                        ctx.clients()
                            .ec2
                            .revoke_security_group_egress()
                            .dry_run(dry_run)
                            .group_id(id)
                            .set_ip_permissions(Some(rules.clone()))
                            .send()
                    })
                    .await;
                already(revoked.map(|_| ()))?;
            }
        }
        Role::Untrack => {
            if let Some(missing) = missing_all_traffic(group.ip_permissions()) {
                let authorized = ctx
                    .ec2_change("AuthorizeSecurityGroupIngress", &[id], |dry_run| {
                        ctx.clients()
                            .ec2
                            .authorize_security_group_ingress()
                            .dry_run(dry_run)
                            .group_id(id)
                            .ip_permissions(missing.clone())
                            .send()
                    })
                    .await;
                already(authorized.map(|_| ()))?;
            }
            if let Some(missing) = missing_all_traffic(group.ip_permissions_egress()) {
                let authorized = ctx
                    .ec2_change("AuthorizeSecurityGroupEgress", &[id], |dry_run| {
                        ctx.clients()
                            .ec2
                            .authorize_security_group_egress()
                            .dry_run(dry_run)
                            .group_id(id)
                            .ip_permissions(missing.clone())
                            .send()
                    })
                    .await;
                already(authorized.map(|_| ()))?;
            }
        }
    }
    Ok(())
}

/// The all-traffic rule for whichever of 0.0.0.0/0 and ::/0 `rules` lack, if any.
fn missing_all_traffic(rules: &[IpPermission]) -> Option<IpPermission> {
    let everything = |r: &&IpPermission| r.ip_protocol() == Some("-1");
    let has_v4 = rules.iter().filter(everything).any(|r| {
        r.ip_ranges()
            .iter()
            .any(|x| x.cidr_ip() == Some("0.0.0.0/0"))
    });
    let has_v6 = rules.iter().filter(everything).any(|r| {
        r.ipv6_ranges()
            .iter()
            .any(|x| x.cidr_ipv6() == Some("::/0"))
    });
    if has_v4 && has_v6 {
        return None;
    }
    let mut rule = IpPermission::builder().ip_protocol("-1");
    if !has_v4 {
        rule = rule.ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build());
    }
    if !has_v6 {
        rule = rule.ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build());
    }
    Some(rule.build())
}

/// No rule beyond all traffic from (or to) 0.0.0.0/0 and ::/0: what an untrack group is, or
/// is on its way to being.
fn within_all_traffic(rules: &[IpPermission]) -> bool {
    rules.iter().all(|r| {
        r.ip_protocol() == Some("-1")
            && r.user_id_group_pairs().is_empty()
            && r.prefix_list_ids().is_empty()
            && r.ip_ranges()
                .iter()
                .all(|x| x.cidr_ip() == Some("0.0.0.0/0"))
            && r.ipv6_ranges()
                .iter()
                .all(|x| x.cidr_ipv6() == Some("::/0"))
    })
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
