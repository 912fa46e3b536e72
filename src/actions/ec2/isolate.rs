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
use crate::journal::Event;
use crate::journal::event::Intent;

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
        let groups = FirebreakGroups {
            isolation: isolation.clone(),
            untrack: untrack.clone(),
        };
        // Every interface is tried, whatever happens to the others: fail closed means cutting
        // off as much as possible, then saying exactly what is not. Then the state is read
        // back; an interface attached meanwhile (an agent, the attacker) gets its own pass, up
        // to PASSES in all, and is reported if it is still not isolated after the last.
        let mut report: Vec<Value> = Vec::new();
        let mut changed = false;
        let mut interfaces = instance_interfaces(ctx, id).await?;
        let mut before = Membership::read(ctx, id, &interfaces, &groups).await?;
        for pass in 1..=PASSES {
            for eni in &interfaces {
                if before.exactly_isolated(&eni.id) {
                    report.push(json!({
                        "network_interface_id": eni.id,
                        "original_groups": eni.trusted_original(&before),
                        "state": "isolated",
                        "changed": false,
                    }));
                    continue;
                }
                let original = eni.trusted_original(&before);
                let outcome = isolate_interface(ctx, eni, &original, &before, &groups).await?;
                changed = true;
                let mut entry = outcome.report(&eni.id, &original);
                if pass > 1 {
                    entry["attached_during_isolation"] = json!(true);
                }
                report.push(entry);
            }
            if ctx.mode != crate::journal::Mode::Live {
                break;
            }
            // Read back: every attached interface in the isolation group and in no other.
            let now = instance_interfaces(ctx, id).await?;
            let after = Membership::read(ctx, id, &now, &groups).await?;
            let mut late = Vec::new();
            for eni in now {
                let verified = after.exactly_isolated(&eni.id);
                match report
                    .iter_mut()
                    .find(|r| r["network_interface_id"] == eni.id.as_str())
                {
                    Some(entry) => entry["verified"] = json!(verified),
                    None if pass < PASSES => late.push(eni),
                    None => report.push(json!({
                        "network_interface_id": eni.id,
                        "original_groups": eni.groups,
                        "state": if verified { "isolated" } else { "not-isolated" },
                        "verified": verified,
                        "attached_during_isolation": true,
                    })),
                }
            }
            if late.is_empty() {
                break;
            }
            interfaces = late;
            before = after;
        }
        // The isolation group itself must still have no rules: one added since (by a person,
        // by the attacker) would open every interface in it.
        let group_rules = if ctx.mode == crate::journal::Mode::Live {
            group_rule_count(ctx, &isolation).await?
        } else {
            0
        };
        let open = ids_where(&report, |r| r["state"] == "OPEN");
        let not_isolated = ids_where(&report, |r| {
            r["state"] != "isolated" || r["verified"] == false
        });
        let tracked = ids_where(&report, |r| r["tracked_flows_may_survive"] == true);
        let mut outputs = outputs(self, vpc, &isolation, untrack.as_deref(), report, changed);
        outputs["open"] = json!(open);
        outputs["tracked_flows_may_survive"] = json!(tracked);
        if group_rules > 0 {
            return Err(ActionError::Failed(format!(
                "the isolation group {isolation} has {group_rules} rule(s): interfaces in it are \
                 not cut off. Remove its rules (or delete it; firebreak makes a new one)"
            ))
            .with_outputs(outputs));
        }
        if not_isolated.is_empty() {
            return Ok(outputs);
        }
        let message = if open.is_empty() {
            format!(
                "isolation of {id} failed; NOT isolated: {} (back in their original groups, no \
                 more exposed than before)",
                not_isolated.join(", ")
            )
        } else {
            format!(
                "isolation of {id} failed and left {} OPEN: in the all-traffic untrack group, \
                 reachable from anywhere; move them to {isolation} or their original groups by \
                 hand now. NOT isolated: {}",
                open.join(", "),
                not_isolated.join(", ")
            )
        };
        Err(ActionError::Failed(message).with_outputs(outputs))
    }
}

async fn group_rule_count(ctx: &StepContext, group: &str) -> Result<usize, ActionError> {
    let output = ctx
        .call("ec2", "DescribeSecurityGroups", &[group], || {
            ctx.clients()
                .ec2
                .describe_security_groups()
                .group_ids(group)
                .send()
        })
        .await?;
    Ok(output
        .security_groups()
        .iter()
        .map(|g| g.ip_permissions().len() + g.ip_permissions_egress().len())
        .sum())
}

fn ids_where(report: &[Value], keep: impl Fn(&Value) -> bool) -> Vec<String> {
    report
        .iter()
        .filter(|r| keep(r))
        .filter_map(|r| r["network_interface_id"].as_str().map(str::to_owned))
        .collect()
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

/// The VPC's firebreak groups this isolation uses.
struct FirebreakGroups {
    isolation: String,
    untrack: Option<String>,
}

/// An interface of the instance, as DescribeNetworkInterfaces reports it.
struct Interface {
    id: String,
    groups: Vec<String>,
    /// The `firebreak:original-groups` tag, left by an earlier (perhaps interrupted) isolation.
    tagged_original: Option<Vec<String>>,
}

impl Interface {
    /// The groups to restore later. The tag is trusted only while the interface sits in
    /// firebreak's groups alone (an earlier isolation got that far and wrote it); otherwise
    /// anyone who can tag the interface could have written it, and the groups it has now are
    /// the truth.
    fn trusted_original(&self, membership: &Membership) -> Vec<String> {
        match &self.tagged_original {
            Some(tagged) if membership.only_firebreak(&self.id) => tagged.clone(),
            _ => self
                .groups
                .iter()
                .filter(|g| !membership.firebreak.contains(g))
                .cloned()
                .collect(),
        }
    }
}

/// Which interfaces of the instance are in which groups, read with the `group-id` filter (an
/// interface's own groups exactly, whatever the `Groups` field shows).
struct Membership {
    firebreak: Vec<String>,
    in_isolation: Vec<String>,
    in_untrack: Vec<String>,
    /// In any group that is not firebreak's.
    in_other: Vec<String>,
}

impl Membership {
    async fn read(
        ctx: &StepContext,
        instance_id: &str,
        interfaces: &[Interface],
        groups: &FirebreakGroups,
    ) -> Result<Membership, ActionError> {
        let mut firebreak = vec![groups.isolation.clone()];
        firebreak.extend(groups.untrack.clone());
        let mut others: Vec<String> = interfaces
            .iter()
            .flat_map(|e| e.groups.iter().cloned())
            .filter(|g| !firebreak.contains(g))
            .collect();
        others.sort();
        others.dedup();
        let in_untrack = match &groups.untrack {
            Some(untrack) => {
                interfaces_in_groups(ctx, instance_id, std::slice::from_ref(untrack)).await?
            }
            None => Vec::new(),
        };
        Ok(Membership {
            in_isolation: interfaces_in_groups(
                ctx,
                instance_id,
                std::slice::from_ref(&groups.isolation),
            )
            .await?,
            in_untrack,
            in_other: interfaces_in_groups(ctx, instance_id, &others).await?,
            firebreak,
        })
    }

    fn exactly_isolated(&self, eni: &String) -> bool {
        self.in_isolation.contains(eni)
            && !self.in_untrack.contains(eni)
            && !self.in_other.contains(eni)
    }

    fn only_firebreak(&self, eni: &String) -> bool {
        (self.in_isolation.contains(eni) || self.in_untrack.contains(eni))
            && !self.in_other.contains(eni)
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

/// The instance's interfaces that are in any of `groups`.
async fn interfaces_in_groups(
    ctx: &StepContext,
    instance_id: &str,
    groups: &[String],
) -> Result<Vec<String>, ActionError> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let mut targets = vec![instance_id];
    targets.extend(groups.iter().map(String::as_str));
    let output = ctx
        .call("ec2", "DescribeNetworkInterfaces", &targets, || {
            ctx.clients()
                .ec2
                .describe_network_interfaces()
                .filters(
                    Filter::builder()
                        .name("attachment.instance-id")
                        .values(instance_id)
                        .build(),
                )
                .filters(
                    Filter::builder()
                        .name("group-id")
                        .set_values(Some(groups.to_vec()))
                        .build(),
                )
                .send()
        })
        .await?;
    Ok(output
        .network_interfaces()
        .iter()
        .filter_map(|eni| eni.network_interface_id().map(str::to_owned))
        .collect())
}

/// How one interface's isolation ended.
enum InterfaceOutcome {
    /// In the isolation group; `tracked` when the untrack move failed and it went straight
    /// there (connections open before may live on).
    Isolated { tracked: Option<String> },
    /// The isolation move kept failing; the interface is back in its original groups.
    Restored { error: String },
    /// Neither the isolation move nor the restore went through: it may sit in the all-traffic
    /// group.
    Open { error: String },
    /// A drill: what would be done was checked with DryRun, nothing moved.
    Drilled { error: Option<String> },
}

impl InterfaceOutcome {
    fn report(&self, eni: &str, original: &[String]) -> Value {
        let (state, error, tracked) = match self {
            InterfaceOutcome::Isolated { tracked } => {
                ("isolated", tracked.clone(), tracked.is_some())
            }
            InterfaceOutcome::Restored { error } => ("restored", Some(error.clone()), false),
            InterfaceOutcome::Open { error } => ("OPEN", Some(error.clone()), false),
            InterfaceOutcome::Drilled { error } => (
                if error.is_some() {
                    "not-isolated"
                } else {
                    "isolated"
                },
                error.clone(),
                false,
            ),
        };
        let mut entry = json!({
            "network_interface_id": eni,
            "original_groups": original,
            "state": state,
            "changed": !matches!(self, InterfaceOutcome::Drilled { .. }),
        });
        if let Some(error) = error {
            entry["error"] = json!(error);
        }
        if tracked {
            entry["tracked_flows_may_survive"] = json!(true);
        }
        entry
    }
}

/// Rounds of "isolate what is attached, read back": a second or third round catches interfaces
/// attached while the first ran.
const PASSES: u32 = 3;

/// Attempts for the move into isolation, and for the restore when it keeps failing: whatever
/// the error (the move is idempotent), with backoff.
const MOVE_ATTEMPTS: u32 = 10;

/// Records the original groups on the interface and the intent in the journal (before any
/// change, so a crash cannot lose them), then moves it — untrack group first when given, then
/// the isolation group — as one shielded unit that a step timeout or Ctrl-C does not cut in
/// half. Only an error of the journal itself returns `Err`.
async fn isolate_interface(
    ctx: &StepContext,
    eni: &Interface,
    original: &[String],
    before: &Membership,
    groups: &FirebreakGroups,
) -> Result<InterfaceOutcome, ActionError> {
    let value = original.join(",");
    if eni.tagged_original.as_deref() != Some(original) {
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
    // Already in the untrack group alone (a run stopped between the moves): straight on.
    let untracked_alone = before.in_untrack.contains(&eni.id)
        && !before.in_isolation.contains(&eni.id)
        && !before.in_other.contains(&eni.id);
    let untrack_first = groups.untrack.clone().filter(|_| !untracked_alone);
    let mut path: Vec<String> = untrack_first.iter().cloned().collect();
    path.push(groups.isolation.clone());
    ctx.record(Event::Intent(Intent {
        step: ctx.step_id.clone(),
        item_index: ctx.item_index,
        operation: "isolate".into(),
        resource: eni.id.clone(),
        from: original.to_vec(),
        to: path.clone(),
    }))?;
    if ctx.mode == crate::journal::Mode::DryRun {
        // Each move once, with DryRun: what would be denied or fail is what the drill shows.
        for group in &path {
            if let Err(error) = move_once(ctx, &eni.id, std::slice::from_ref(group)).await {
                if error.is_journal() {
                    return Err(error);
                }
                return Ok(InterfaceOutcome::Drilled {
                    error: Some(error.to_string()),
                });
            }
        }
        return Ok(InterfaceOutcome::Drilled { error: None });
    }
    let task = ctx.clone();
    let eni_id = eni.id.clone();
    let original = original.to_vec();
    let isolation = groups.isolation.clone();
    ctx.shielded(async move {
        move_pair(
            &task,
            &eni_id,
            untrack_first.as_deref(),
            &isolation,
            &original,
        )
        .await
    })
    .await?
}

/// The two moves, and what to do when either fails.
async fn move_pair(
    ctx: &StepContext,
    eni: &str,
    untrack: Option<&str>,
    isolation: &str,
    original: &[String],
) -> Result<InterfaceOutcome, ActionError> {
    let mut tracked = None;
    if let Some(untrack) = untrack {
        // Without the untrack step, isolation still works; tracked connections may live on.
        if let Err(error) = move_once(ctx, eni, &[untrack.to_owned()]).await {
            if error.is_journal() {
                return Err(error);
            }
            tracked = Some(format!(
                "the move to the untrack group failed ({error}); moved straight to isolation, so \
                 connections open before may survive"
            ));
        }
    }
    let isolated = move_retrying(ctx, eni, &[isolation.to_owned()]).await;
    match isolated {
        Ok(()) => Ok(InterfaceOutcome::Isolated { tracked }),
        Err(error) if error.is_journal() => Err(error),
        Err(error) => {
            // Back to where it was: less exposed than the all-traffic group.
            match move_retrying(ctx, eni, original).await {
                Ok(()) => Ok(InterfaceOutcome::Restored {
                    error: error.to_string(),
                }),
                Err(restore) if restore.is_journal() => Err(restore),
                Err(restore) => Ok(InterfaceOutcome::Open {
                    error: format!("{error}; restoring its groups failed too: {restore}"),
                }),
            }
        }
    }
}

async fn move_retrying(ctx: &StepContext, eni: &str, groups: &[String]) -> Result<(), ActionError> {
    let mut attempt = 1;
    loop {
        match move_once(ctx, eni, groups).await {
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

async fn move_once(ctx: &StepContext, eni: &str, groups: &[String]) -> Result<(), ActionError> {
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

/// The VPC's firebreak group for `role`: an existing one is adopted only if it carries
/// firebreak's tags and exactly the rules the role needs (an isolation group left with the
/// default egress rule by a run that stopped right after creating it is finished); anything
/// else with firebreak's name or tags is left alone and a new group is made, so a group someone
/// planted is never trusted.
async fn find_or_create_group(
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
async fn tagged_groups(
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
fn adoptable(group: &SecurityGroup, role: Role) -> bool {
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
async fn finish_rules(
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

fn all_traffic() -> IpPermission {
    IpPermission::builder()
        .ip_protocol("-1")
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
        .build()
}

/// Exactly one rule: every protocol from (or to) 0.0.0.0/0 and ::/0 — what makes connections
/// untracked (ICMP stays tracked whatever the rules).
fn is_all_traffic(rules: &[IpPermission]) -> bool {
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
fn is_default_egress(rules: &[IpPermission]) -> bool {
    rules.len() == 1
        && rules[0].ip_protocol() == Some("-1")
        && rules[0].ipv6_ranges().is_empty()
        && rules[0].user_id_group_pairs().is_empty()
        && rules[0].prefix_list_ids().is_empty()
        && rules[0].ip_ranges().len() == 1
        && rules[0].ip_ranges()[0].cidr_ip() == Some("0.0.0.0/0")
}
