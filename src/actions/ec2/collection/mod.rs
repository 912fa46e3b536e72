//! `ec2.open_collection_path` and `ec2.close_collection_path`: after isolation, the instance's
//! SSM agent may reach the VPC's Systems Manager endpoints (and S3, when its endpoint is
//! restricted) while volatile evidence is collected; then that path is cut too.
//!
//! Why this shape: security groups only allow, so an isolated interface given a second group
//! gets exactly that group's rules. The collection group has no inbound rule and outbound only
//! HTTPS to the endpoints' own addresses (and S3's prefix list). Every state a failure or a
//! crash can leave is "isolated" or "isolated plus the endpoints" — never open — and a run that
//! resumes closes the path in its next step.

mod endpoints;
mod group;

use aws_sdk_ec2::types::SecurityGroup;
use endpoints::{Destination, Endpoints, endpoint_addresses, s3_destination, s3_policy_restricted};
use group::{Egress, collection_group};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::interfaces::{COLLECTION_ROLE, interfaces_in_groups, move_retrying, role_groups};
use super::{ActionError, attached_interfaces, describe_one};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, arn, condition};
use crate::actions::{Action, Execute};

/// The endpoints the SSM agent needs to take and answer a command.
const SSM_SERVICES: [&str; 3] = ["ssm", "ssmmessages", "ec2messages"];

/// After isolation, let the instance reach only its VPC's SSM endpoints (and a restricted S3 endpoint) so evidence can be collected; skipped, with the reason, when the endpoints are not there.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenCollectionPath {
    pub instance_id: String,
    #[serde(default)]
    pub case_id: Option<String>,
    /// Also reach S3 through an endpoint whose policy allows every bucket. While collection
    /// runs, whoever controls the instance could then upload anywhere through it. Off (the
    /// default), S3 is reached only through an endpoint whose policy is restricted; otherwise
    /// command output stays in SSM and memory capture is skipped.
    #[serde(default)]
    pub allow_unrestricted_s3_endpoint: bool,
}

const READS: [&str; 5] = [
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribePrefixLists",
];

impl Action for OpenCollectionPath {
    const NAME: &'static str = "ec2.open_collection_path";
    const SUMMARY: &'static str = "after isolation, let the instance reach only the VPC's SSM (and a restricted S3) endpoints, for collection";
    const CALLS: &'static [&'static str] = &[
        READS[0],
        READS[1],
        READS[2],
        READS[3],
        READS[4],
        "ec2:CreateSecurityGroup",
        "ec2:AuthorizeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:ModifyNetworkInterfaceAttribute",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[
        Grant::when(
            &["ec2:CreateSecurityGroup"],
            &[arn::VPC, arn::SECURITY_GROUP],
            condition::REQUEST_TAG_ROLE,
        ),
        // CreateSecurityGroup with tags needs CreateTags on the new group.
        Grant::when(
            &["ec2:CreateTags"],
            &[arn::SECURITY_GROUP],
            condition::REQUEST_TAG_ROLE,
        ),
        Grant::when(
            &[
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupEgress",
            ],
            &[arn::SECURITY_GROUP],
            condition::RESOURCE_TAG_MANAGED,
        ),
        Grant::on(
            &["ec2:ModifyNetworkInterfaceAttribute"],
            &[arn::NETWORK_INTERFACE, arn::SECURITY_GROUP],
        ),
    ];
}

impl Execute for OpenCollectionPath {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let id = self.instance_id.as_str();
        let instance = describe_one(ctx, id).await?;
        let Some(vpc) = instance.vpc_id() else {
            return Ok(not_opened(id, None, "the instance is not in a VPC".into()));
        };
        let skip = |reason: String| Ok(not_opened(id, Some(vpc), reason));
        // Only from isolation: the path adds the endpoints to "nothing", never to more.
        let isolation = role_groups(ctx, vpc, "isolation").await?;
        let collection = role_groups(ctx, vpc, COLLECTION_ROLE).await?;
        let collection_ids: Vec<String> = collection.iter().filter_map(group_id).collect();
        let interfaces = interface_groups(ctx, id).await?;
        let mut isolation_group = None;
        for (eni, groups) in &interfaces {
            let rest: Vec<&String> = groups
                .iter()
                .filter(|g| !collection_ids.contains(g))
                .collect();
            match rest.as_slice() {
                [only]
                    if isolation
                        .iter()
                        .any(|g| group_id(g).as_ref() == Some(*only)) =>
                {
                    isolation_group = Some((*only).clone());
                }
                _ => {
                    return skip(format!(
                        "{eni} is not isolated (groups {}); the collection path opens only \
                         from isolation",
                        groups.join(", ")
                    ));
                }
            }
        }
        let Some(isolation_group) = isolation_group else {
            return skip("the instance has no network interfaces".into());
        };
        let region = ctx.clients().region().unwrap_or_default();
        let found = Endpoints::find(ctx, vpc, &region).await?;
        if !found.missing.is_empty() {
            return skip(format!(
                "no usable VPC endpoint in {vpc} for {} (interface, available, private DNS on): \
                 the agent could not reach Systems Manager without the internet",
                found.missing.join(", ")
            ));
        }
        let mut egress = Egress {
            cidrs: endpoint_addresses(ctx, &found.ssm_interfaces).await?,
            prefix_lists: Vec::new(),
        };
        let (s3, s3_note) = match &found.s3 {
            None => (false, Some("no S3 endpoint in the VPC".to_owned())),
            Some(endpoint) => {
                let restricted = s3_policy_restricted(endpoint.policy_document());
                if !restricted && !self.allow_unrestricted_s3_endpoint {
                    (
                        false,
                        Some(format!(
                            "the S3 endpoint {} allows every bucket (an exfiltration path): \
                             S3 left out; output stays in SSM",
                            endpoint.vpc_endpoint_id().unwrap_or_default()
                        )),
                    )
                } else {
                    match s3_destination(ctx, endpoint, &region).await? {
                        Destination::PrefixList(list) => egress.prefix_lists.push(list),
                        Destination::Addresses(mut cidrs) => egress.cidrs.append(&mut cidrs),
                    }
                    let note = (!restricted).then(|| {
                        "the S3 endpoint allows every bucket; opened because the runbook allows it"
                            .to_owned()
                    });
                    (true, note)
                }
            }
        };
        egress.cidrs.sort();
        egress.cidrs.dedup();
        let group = match collection_group(ctx, vpc, self.case_id.as_deref(), &egress).await? {
            Ok(group) => group,
            Err(reason) => return skip(reason),
        };
        let mut outputs = json!({
            "instance_id": id,
            "vpc_id": vpc,
            "opened": true,
            "collection_group": group,
            "isolation_group": isolation_group,
            "endpoints": found.ids,
            "egress": egress.describe(),
            "s3": s3,
            "s3_note": s3_note,
        });
        if ctx.mode != crate::journal::Mode::Live {
            outputs["dry_run"] = json!(true);
            return Ok(outputs);
        }
        let mut moved = Vec::new();
        let mut failed = Vec::new();
        for (eni, groups) in &interfaces {
            if groups.contains(&group) {
                moved.push(json!({"network_interface_id": eni, "changed": false}));
                continue;
            }
            // A failed move leaves the interface isolated: nothing to undo.
            match move_retrying(ctx, eni, &[isolation_group.clone(), group.clone()]).await {
                Ok(()) => moved.push(json!({"network_interface_id": eni, "changed": true})),
                Err(error) if error.is_journal() => return Err(error),
                Err(error) => failed.push(json!({
                    "network_interface_id": eni, "error": error.to_string(),
                })),
            }
        }
        outputs["opened"] = json!(!moved.is_empty());
        outputs["interfaces"] = json!(moved);
        outputs["still_isolated"] = json!(failed);
        Ok(outputs)
    }
}

/// Cut the collection path again: every interface of the instance back to its isolation group alone, and the run's collection groups deleted once unused.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseCollectionPath {
    pub instance_id: String,
}

impl Action for CloseCollectionPath {
    const NAME: &'static str = "ec2.close_collection_path";
    const SUMMARY: &'static str =
        "take the collection group off every interface (isolation alone again) and delete it";
    const CALLS: &'static [&'static str] = &[
        READS[0],
        READS[1],
        READS[2],
        "ec2:ModifyNetworkInterfaceAttribute",
        "ec2:DeleteSecurityGroup",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[
        Grant::on(
            &["ec2:ModifyNetworkInterfaceAttribute"],
            &[arn::NETWORK_INTERFACE, arn::SECURITY_GROUP],
        ),
        Grant::when(
            &["ec2:DeleteSecurityGroup"],
            &[arn::SECURITY_GROUP],
            condition::RESOURCE_TAG_MANAGED,
        ),
    ];
}

impl Execute for CloseCollectionPath {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let id = self.instance_id.as_str();
        let instance = describe_one(ctx, id).await?;
        let Some(vpc) = instance.vpc_id() else {
            return Ok(json!({"instance_id": id, "closed": true, "interfaces": []}));
        };
        let collection: Vec<String> = role_groups(ctx, vpc, COLLECTION_ROLE)
            .await?
            .iter()
            .filter_map(group_id)
            .collect();
        let mut report = Vec::new();
        let mut used = Vec::new();
        let mut stuck = Vec::new();
        for (eni, groups) in interface_groups(ctx, id).await? {
            let keep: Vec<String> = groups
                .iter()
                .filter(|g| !collection.contains(g))
                .cloned()
                .collect();
            if keep.len() == groups.len() {
                continue;
            }
            used.extend(groups.iter().filter(|g| collection.contains(g)).cloned());
            if keep.is_empty() {
                stuck.push(format!("{eni} (in the collection group alone)"));
                continue;
            }
            match move_retrying(ctx, &eni, &keep).await {
                Ok(()) => report.push(json!({"network_interface_id": eni, "groups": keep})),
                Err(error) if error.is_journal() => return Err(error),
                Err(error) => stuck.push(format!("{eni} ({error})")),
            }
        }
        used.sort();
        used.dedup();
        let mut deleted = Vec::new();
        if stuck.is_empty() && ctx.mode == crate::journal::Mode::Live {
            for group in &used {
                // Another instance's collection may still use it: then it stays.
                let result = ctx
                    .ec2_change("DeleteSecurityGroup", &[group], |dry_run| {
                        ctx.clients()
                            .ec2
                            .delete_security_group()
                            .dry_run(dry_run)
                            .group_id(group)
                            .send()
                    })
                    .await;
                match result {
                    Ok(_) => deleted.push(group.clone()),
                    Err(error) if error.is_journal() => return Err(error),
                    Err(_) => {}
                }
            }
        }
        let outputs = json!({
            "instance_id": id,
            "closed": stuck.is_empty(),
            "interfaces": report,
            "deleted_groups": deleted,
        });
        if stuck.is_empty() {
            return Ok(outputs);
        }
        Err(ActionError::Failed(format!(
            "the collection path is still open on {}: they reach only the VPC's SSM/S3 \
             endpoints, not the internet; take the collection group off by hand",
            stuck.join(", ")
        ))
        .with_outputs(outputs))
    }
}

fn not_opened(instance: &str, vpc: Option<&str>, reason: String) -> Value {
    json!({"instance_id": instance, "vpc_id": vpc, "opened": false, "s3": false, "reason": reason})
}

fn group_id(group: &SecurityGroup) -> Option<String> {
    group.group_id().map(str::to_owned)
}

/// Each attached interface with its own groups, read group by group with the `group-id`
/// filter: an interface's `Groups` field is not exact everywhere (the emulator the tests use
/// adds the instance's groups), the filter is.
async fn interface_groups(
    ctx: &StepContext,
    instance_id: &str,
) -> Result<Vec<(String, Vec<String>)>, ActionError> {
    let attached = attached_interfaces(ctx, instance_id).await?;
    let mut candidates: Vec<String> = attached
        .iter()
        .flat_map(|eni| {
            eni.groups()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_owned))
        })
        .collect();
    candidates.sort();
    candidates.dedup();
    let mut interfaces: Vec<(String, Vec<String>)> = attached
        .iter()
        .filter_map(|eni| Some((eni.network_interface_id()?.to_owned(), Vec::new())))
        .collect();
    for group in candidates {
        let members = interfaces_in_groups(ctx, instance_id, std::slice::from_ref(&group)).await?;
        for (eni, groups) in interfaces.iter_mut() {
            if members.contains(eni) {
                groups.push(group.clone());
            }
        }
    }
    Ok(interfaces)
}
