//! The run's collection group: no inbound rule, HTTPS out to the endpoints only.

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, PrefixListId, ResourceType, TagSpecification,
};
use serde_json::{Value, json};

use super::super::interfaces::{COLLECTION_PREFIX, COLLECTION_ROLE};
use super::super::{ActionError, new_tag, tag, tags};
use crate::actions::StepContext;

/// The collection group's outbound rules: HTTPS to these addresses and prefix lists.
#[derive(Default)]
pub(super) struct Egress {
    pub(super) cidrs: Vec<String>,
    pub(super) prefix_lists: Vec<String>,
}

impl Egress {
    pub(super) fn describe(&self) -> Value {
        json!({"tcp_443_to": self.cidrs, "tcp_443_to_prefix_lists": self.prefix_lists})
    }

    pub(super) fn permission(&self) -> IpPermission {
        IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(443)
            .to_port(443)
            .set_ip_ranges(Some(
                self.cidrs
                    .iter()
                    .map(|c| IpRange::builder().cidr_ip(c).build())
                    .collect(),
            ))
            .set_prefix_list_ids(Some(
                self.prefix_lists
                    .iter()
                    .map(|p| PrefixListId::builder().prefix_list_id(p).build())
                    .collect(),
            ))
            .build()
    }

    /// Whether a group's outbound rules are exactly these.
    pub(super) fn matches(&self, rules: &[IpPermission]) -> bool {
        let mut cidrs: Vec<String> = Vec::new();
        let mut lists: Vec<String> = Vec::new();
        for rule in rules {
            if rule.ip_protocol() != Some("tcp")
                || rule.from_port() != Some(443)
                || rule.to_port() != Some(443)
                || !rule.ipv6_ranges().is_empty()
                || !rule.user_id_group_pairs().is_empty()
            {
                return false;
            }
            cidrs.extend(
                rule.ip_ranges()
                    .iter()
                    .filter_map(|r| r.cidr_ip().map(str::to_owned)),
            );
            lists.extend(
                rule.prefix_list_ids()
                    .iter()
                    .filter_map(|p| p.prefix_list_id().map(str::to_owned)),
            );
        }
        cidrs.sort();
        lists.sort();
        let mut want = self.prefix_lists.clone();
        want.sort();
        cidrs == self.cidrs && lists == want
    }
}

/// This run's collection group in the VPC, found by its name or created, with exactly the
/// `egress` rules and no inbound rule. `Ok(Err(reason))` when a group of that name exists but
/// is not firebreak's for this run: it is left alone and the path stays shut.
pub(super) async fn collection_group(
    ctx: &StepContext,
    vpc: &str,
    case: Option<&str>,
    egress: &Egress,
) -> Result<Result<String, String>, ActionError> {
    let name = format!("{COLLECTION_PREFIX}{}", ctx.run_id.to_lowercase());
    let existing = ctx
        .call("ec2", "DescribeSecurityGroups", &[vpc], || {
            ctx.clients()
                .ec2
                .describe_security_groups()
                .filters(Filter::builder().name("vpc-id").values(vpc).build())
                .filters(Filter::builder().name("group-name").values(&name).build())
                .send()
        })
        .await?;
    let group = match existing.security_groups().first() {
        Some(group) => {
            let ours = tag(group.tags(), tags::ROLE) == Some(COLLECTION_ROLE)
                && tag(group.tags(), tags::MANAGED) == Some("true")
                && tag(group.tags(), tags::RUN) == Some(ctx.run_id.as_str());
            if !ours || !group.ip_permissions().is_empty() {
                return Ok(Err(format!(
                    "a group named {name} exists in {vpc} but is not this run's collection \
                     group (tags or inbound rules): left alone, collection skipped"
                )));
            }
            group.clone()
        }
        None => {
            let mut group_tags = vec![
                new_tag(tags::ROLE, COLLECTION_ROLE),
                new_tag(tags::MANAGED, "true"),
                new_tag(tags::RUN, &ctx.run_id),
            ];
            if let Some(case) = case {
                group_tags.push(new_tag(tags::CASE, case));
            }
            let created = ctx
                .ec2_change("CreateSecurityGroup", &[vpc], |dry_run| {
                    ctx.clients()
                        .ec2
                        .create_security_group()
                        .dry_run(dry_run)
                        .vpc_id(vpc)
                        .group_name(&name)
                        .description(
                            "firebreak collection: HTTPS to the VPC's SSM/S3 endpoints only",
                        )
                        .tag_specifications(
                            TagSpecification::builder()
                                .resource_type(ResourceType::SecurityGroup)
                                .set_tags(Some(group_tags.clone()))
                                .build(),
                        )
                        .send()
                })
                .await?;
            let Some(created) = created else {
                return Ok(Ok(format!(
                    "<would be created by step {}: {name} in {vpc}>",
                    ctx.step_id
                )));
            };
            let id = created.group_id().unwrap_or_default().to_owned();
            let read = ctx
                .call("ec2", "DescribeSecurityGroups", &[id.as_str()], || {
                    ctx.clients()
                        .ec2
                        .describe_security_groups()
                        .group_ids(&id)
                        .send()
                })
                .await?;
            read.security_groups().first().cloned().ok_or_else(|| {
                ActionError::Failed(format!(
                    "security group {name} ({id}) was created in {vpc} but cannot be read back"
                ))
            })?
        }
    };
    let id = group.group_id().unwrap_or_default().to_owned();
    if !egress.matches(group.ip_permissions_egress()) {
        if !group.ip_permissions_egress().is_empty() {
            let rules = group.ip_permissions_egress().to_vec();
            ctx.ec2_change("RevokeSecurityGroupEgress", &[&id], |dry_run| {
                ctx.clients()
                    .ec2
                    .revoke_security_group_egress()
                    .dry_run(dry_run)
                    .group_id(&id)
                    .set_ip_permissions(Some(rules.clone()))
                    .send()
            })
            .await?;
        }
        ctx.ec2_change("AuthorizeSecurityGroupEgress", &[&id], |dry_run| {
            ctx.clients()
                .ec2
                .authorize_security_group_egress()
                .dry_run(dry_run)
                .group_id(&id)
                .ip_permissions(egress.permission())
                .send()
        })
        .await?;
    }
    Ok(Ok(id))
}
