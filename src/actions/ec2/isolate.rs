//! `ec2.isolate_instance`.

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, ResourceType, SecurityGroup, TagSpecification,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ActionError, describe_one, new_tag, tag, tags};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, arn, condition};
use crate::actions::{Action, Execute};

/// How to isolate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum IsolationStrategy {
    /// First an all-traffic group (existing connections become untracked), then the no-rule
    /// group: existing attacker sessions are cut, not only new ones.
    #[default]
    UntrackThenIsolate,
    /// Straight to the no-rule group; tracked connections already open may live on.
    IsolateOnly,
}

/// Isolate every network interface of the instance in a firebreak-managed security group with no rules, recording each interface's original groups.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IsolateInstance {
    pub instance_id: String,
    #[serde(default)]
    pub strategy: IsolationStrategy,
    /// Tags the groups firebreak creates with the case.
    #[serde(default)]
    pub case_id: Option<String>,
}

impl Action for IsolateInstance {
    const NAME: &'static str = "ec2.isolate_instance";
    const SUMMARY: &'static str = "cut every network interface off: all-traffic group first (untracks connections), then a group with no rules";
    const CALLS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSecurityGroups",
        "ec2:CreateSecurityGroup",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:CreateTags",
        "ec2:ModifyNetworkInterfaceAttribute",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[
        // A request condition holds for every resource of the request, so the VPC and the new
        // group share one statement.
        Grant::when(
            &["ec2:CreateSecurityGroup"],
            &[arn::VPC, arn::SECURITY_GROUP],
            condition::REQUEST_TAG_ROLE,
        ),
        // Rules change only on firebreak's own groups.
        Grant::when(
            &[
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupEgress",
            ],
            &[arn::SECURITY_GROUP],
            condition::RESOURCE_TAG_MANAGED,
        ),
        Grant::on(&["ec2:CreateTags"], arn::EC2_TAGGABLE),
        Grant::on(
            &["ec2:ModifyNetworkInterfaceAttribute"],
            &[arn::NETWORK_INTERFACE, arn::SECURITY_GROUP],
        ),
    ];
}

/// What a firebreak-managed security group is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// No rules at all: nothing in, nothing out.
    Isolation,
    /// All traffic in and out: connections through it are untracked, so the move to the
    /// isolation group cuts them.
    Untrack,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Isolation => "isolation",
            Role::Untrack => "untrack",
        }
    }
}

impl Execute for IsolateInstance {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let id = self.instance_id.as_str();
        let instance = describe_one(ctx, id).await?;
        let vpc = instance.vpc_id().ok_or_else(|| {
            ActionError::Failed(format!(
                "instance {id} is not in a VPC; cannot isolate it with security groups"
            ))
        })?;
        let case = self.case_id.as_deref();
        let isolation = find_or_create_group(ctx, vpc, Role::Isolation, case).await?;
        let untrack = match self.strategy {
            IsolationStrategy::UntrackThenIsolate => {
                Some(find_or_create_group(ctx, vpc, Role::Untrack, case).await?)
            }
            IsolationStrategy::IsolateOnly => None,
        };
        let interfaces = instance_interfaces(ctx, id).await?;
        // Which interfaces are already in the isolation group (the `group-id` filter reads an
        // interface's own groups exactly).
        let isolated_already = interfaces_in_group(ctx, id, &isolation).await?;

        let mut report: Vec<Value> = Vec::new();
        let mut changed = false;
        for (index, eni) in interfaces.iter().enumerate() {
            if isolated_already.contains(&eni.id) {
                report.push(json!({
                    "network_interface_id": eni.id,
                    "original_groups": eni.original_groups(),
                    "isolated": true,
                    "changed": false,
                }));
                continue;
            }
            let original = eni.original_groups();
            let result =
                isolate_interface(ctx, eni, &original, untrack.as_deref(), &isolation).await;
            match result {
                Ok(()) => {
                    changed = true;
                    report.push(json!({
                        "network_interface_id": eni.id,
                        "original_groups": original,
                        "isolated": true,
                        "changed": true,
                    }));
                }
                Err(error) => {
                    // Fail closed: what is isolated stays isolated; say exactly which are not.
                    report.push(json!({
                        "network_interface_id": eni.id,
                        "original_groups": original,
                        "isolated": false,
                        "error": error.to_string(),
                    }));
                    for rest in &interfaces[index + 1..] {
                        report.push(json!({
                            "network_interface_id": rest.id,
                            "original_groups": rest.original_groups(),
                            "isolated": isolated_already.contains(&rest.id),
                        }));
                    }
                    let not_isolated: Vec<&str> = report
                        .iter()
                        .filter(|r| r["isolated"] == false)
                        .filter_map(|r| r["network_interface_id"].as_str())
                        .collect();
                    let message = format!(
                        "isolation of {id} failed part-way; NOT isolated: {}; nothing was reverted",
                        not_isolated.join(", ")
                    );
                    let outputs = outputs(self, vpc, &isolation, untrack.as_deref(), report, true);
                    return Err(
                        ActionError::Failed(format!("{message}: {error}")).with_outputs(outputs)
                    );
                }
            }
        }
        Ok(outputs(
            self,
            vpc,
            &isolation,
            untrack.as_deref(),
            report,
            changed,
        ))
    }
}

fn outputs(
    input: &IsolateInstance,
    vpc: &str,
    isolation: &str,
    untrack: Option<&str>,
    interfaces: Vec<Value>,
    changed: bool,
) -> Value {
    json!({
        "instance_id": input.instance_id,
        "vpc_id": vpc,
        "strategy": input.strategy,
        "isolation_group": isolation,
        "untrack_group": untrack,
        "interfaces": interfaces,
        "changed": changed,
    })
}

/// An interface of the instance, as it is now.
struct Interface {
    id: String,
    groups: Vec<String>,
    /// The `firebreak:original-groups` tag, left by an earlier (perhaps interrupted) isolation.
    tagged_original: Option<Vec<String>>,
}

impl Interface {
    /// The groups to restore later: the tag if an earlier attempt wrote one (the interface may
    /// already sit in the untrack group), else the current groups.
    fn original_groups(&self) -> Vec<String> {
        self.tagged_original
            .clone()
            .unwrap_or_else(|| self.groups.clone())
    }
}

async fn instance_interfaces(
    ctx: &StepContext,
    instance_id: &str,
) -> Result<Vec<Interface>, ActionError> {
    let output = super::attached_interfaces(ctx, instance_id).await?;
    let mut interfaces: Vec<(i32, Interface)> = output
        .network_interfaces()
        .iter()
        .filter_map(|eni| {
            let id = eni.network_interface_id()?.to_owned();
            let index = eni.attachment().and_then(|a| a.device_index()).unwrap_or(0);
            let groups = eni
                .groups()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_owned))
                .collect();
            let tagged_original = tag(eni.tag_set(), tags::ORIGINAL_GROUPS).map(|value| {
                value
                    .split(',')
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect()
            });
            Some((
                index,
                Interface {
                    id,
                    groups,
                    tagged_original,
                },
            ))
        })
        .collect();
    if interfaces.is_empty() {
        return Err(ActionError::Failed(format!(
            "instance {instance_id} has no network interfaces"
        )));
    }
    interfaces.sort_by_key(|(index, _)| *index);
    Ok(interfaces.into_iter().map(|(_, eni)| eni).collect())
}

async fn interfaces_in_group(
    ctx: &StepContext,
    instance_id: &str,
    group: &str,
) -> Result<Vec<String>, ActionError> {
    let output = ctx
        .call(
            "ec2",
            "DescribeNetworkInterfaces",
            &[instance_id, group],
            || {
                ctx.clients()
                    .ec2
                    .describe_network_interfaces()
                    .filters(
                        Filter::builder()
                            .name("attachment.instance-id")
                            .values(instance_id)
                            .build(),
                    )
                    .filters(Filter::builder().name("group-id").values(group).build())
                    .send()
            },
        )
        .await?;
    Ok(output
        .network_interfaces()
        .iter()
        .filter_map(|eni| eni.network_interface_id().map(str::to_owned))
        .collect())
}

/// Records the original groups on the interface (before any change, so a crash cannot lose
/// them), then moves it: untrack group first when given, then the isolation group.
async fn isolate_interface(
    ctx: &StepContext,
    eni: &Interface,
    original: &[String],
    untrack: Option<&str>,
    isolation: &str,
) -> Result<(), ActionError> {
    if eni.tagged_original.is_none() {
        let value = original.join(",");
        ctx.ec2_change("CreateTags", &[&eni.id], |dry_run| {
            ctx.clients()
                .ec2
                .create_tags()
                .dry_run(dry_run)
                .resources(&eni.id)
                .tags(new_tag(tags::ORIGINAL_GROUPS, value.clone()))
                .send()
        })
        .await?;
    }
    let already_untracked = untrack.is_some_and(|u| eni.groups == [u.to_owned()]);
    let mut moves: Vec<&str> = Vec::new();
    if let Some(untrack) = untrack
        && !already_untracked
    {
        moves.push(untrack);
    }
    moves.push(isolation);
    for group in moves {
        ctx.ec2_change(
            "ModifyNetworkInterfaceAttribute",
            &[&eni.id, group],
            |dry_run| {
                ctx.clients()
                    .ec2
                    .modify_network_interface_attribute()
                    .dry_run(dry_run)
                    .network_interface_id(&eni.id)
                    .groups(group)
                    .send()
            },
        )
        .await?;
    }
    Ok(())
}

/// The VPC's firebreak group for `role`, found by tag (or by name, if a run crashed between
/// creating and tagging it) or created, with its rules brought to what the role needs.
async fn find_or_create_group(
    ctx: &StepContext,
    vpc: &str,
    role: Role,
    case: Option<&str>,
) -> Result<String, ActionError> {
    let name = format!("firebreak-{}", role.name());
    let group = match find_group(ctx, vpc, role, &name).await? {
        Some(group) => group,
        None => {
            let mut group_tags = vec![
                new_tag(tags::ROLE, role.name()),
                new_tag(tags::MANAGED, "true"),
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
                Ok(Some(_)) | Err(_) => match find_group(ctx, vpc, role, &name).await? {
                    Some(group) => group,
                    None => {
                        return Err(created.err().unwrap_or_else(|| {
                            ActionError::Failed(format!(
                                "security group {name} was created in {vpc} but cannot be found"
                            ))
                        }));
                    }
                },
                Ok(None) => {
                    return Ok(format!(
                        "<would be created by step {}: {name} in {vpc}>",
                        ctx.step_id
                    ));
                }
            }
        }
    };
    let id = group.group_id().unwrap_or_default().to_owned();
    ensure_rules(ctx, &group, role).await?;
    Ok(id)
}

async fn find_group(
    ctx: &StepContext,
    vpc: &str,
    role: Role,
    name: &str,
) -> Result<Option<SecurityGroup>, ActionError> {
    let by = |filter: Filter| async move {
        let output = ctx
            .call("ec2", "DescribeSecurityGroups", &[vpc], || {
                ctx.clients()
                    .ec2
                    .describe_security_groups()
                    .filters(Filter::builder().name("vpc-id").values(vpc).build())
                    .filters(filter)
                    .send()
            })
            .await?;
        Ok::<_, ActionError>(output.security_groups().first().cloned())
    };
    if let Some(group) = by(Filter::builder()
        .name(format!("tag:{}", tags::ROLE))
        .values(role.name())
        .build())
    .await?
    {
        return Ok(Some(group));
    }
    by(Filter::builder().name("group-name").values(name).build()).await
}

/// Isolation: no ingress, no egress (a new group comes with allow-all egress: revoke it).
/// Untrack: all traffic in and out, IPv4 and IPv6.
async fn ensure_rules(
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
            if !group.ip_permissions().is_empty() {
                let rules = group.ip_permissions().to_vec();
                ctx.ec2_change("RevokeSecurityGroupIngress", &[id], |dry_run| {
                    ctx.clients()
                        .ec2
                        .revoke_security_group_ingress()
                        .dry_run(dry_run)
                        .group_id(id)
                        .set_ip_permissions(Some(rules.clone()))
                        .send()
                })
                .await?;
            }
        }
        Role::Untrack => {
            if !allows_all(group.ip_permissions()) {
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
            if !allows_all(group.ip_permissions_egress()) {
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

fn all_traffic() -> IpPermission {
    IpPermission::builder()
        .ip_protocol("-1")
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
        .build()
}

fn allows_all(rules: &[IpPermission]) -> bool {
    rules.iter().any(|rule| {
        rule.ip_protocol() == Some("-1")
            && rule
                .ip_ranges()
                .iter()
                .any(|r| r.cidr_ip() == Some("0.0.0.0/0"))
    })
}
