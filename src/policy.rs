//! The least-privilege IAM policy the engine needs to run given runbooks, derived from each
//! action's declared permissions: no wildcard actions, resources and condition keys scoped where
//! AWS supports it (snapshots only with the case tag in the request, security-group rules only
//! on firebreak's own groups, IAM changes only on the users and roles the runbooks' parameter
//! patterns allow, `iam:PassRole` only to the services that need it).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::actions;
use crate::runbook::Runbook;

/// The engine itself calls this for the journal's first record.
pub const ENGINE_PERMISSIONS: &[&str] = &["sts:GetCallerIdentity"];

/// What the runbooks tell us beyond their actions.
#[derive(Debug, Default)]
struct Scope {
    /// `arn:aws:iam::*:user/<glob>` for each user-name parameter pattern.
    users: BTreeSet<String>,
    roles: BTreeSet<String>,
    /// SSM documents sent.
    documents: BTreeSet<String>,
    /// CloudFormation stack name globs.
    stacks: BTreeSet<String>,
}

/// Every IAM action the runbooks need: the engine's and each step's action's.
pub fn permissions(runbooks: &[&Runbook]) -> BTreeSet<String> {
    let mut all: BTreeSet<String> = ENGINE_PERMISSIONS.iter().map(|p| p.to_string()).collect();
    for runbook in runbooks {
        for step in &runbook.steps {
            if let Some(info) = actions::find(&step.action) {
                all.extend(info.permissions.iter().map(|p| p.to_string()));
            }
        }
    }
    all
}

/// The policy document (IAM JSON) for the runbooks.
pub fn document(runbooks: &[&Runbook]) -> Value {
    let scope = scope_of(runbooks);
    // (resources, condition) → actions
    let mut grants: BTreeMap<(Vec<String>, String), BTreeSet<String>> = BTreeMap::new();
    for permission in permissions(runbooks) {
        for (resources, condition) in grants_for(&permission, &scope) {
            let key = (
                resources,
                condition.map(|c| c.to_string()).unwrap_or_default(),
            );
            grants.entry(key).or_default().insert(permission.clone());
        }
    }
    let statements: Vec<Value> = grants
        .into_iter()
        .enumerate()
        .map(|(i, ((resources, condition), actions))| {
            let mut statement = json!({
                "Sid": format!("Firebreak{}", i + 1),
                "Effect": "Allow",
                "Action": actions.into_iter().collect::<Vec<_>>(),
                "Resource": resources,
            });
            if !condition.is_empty() {
                statement["Condition"] =
                    serde_json::from_str(&condition).expect("a condition is JSON");
            }
            statement
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements})
}

fn scope_of(runbooks: &[&Runbook]) -> Scope {
    let mut scope = Scope::default();
    for runbook in runbooks {
        for (name, param) in &runbook.parameters {
            let glob = param
                .pattern
                .as_deref()
                .map(regex_to_glob)
                .unwrap_or_else(|| "*".into());
            match name.as_str() {
                "user_name" => {
                    scope.users.insert(glob);
                }
                "role_name" => {
                    scope.roles.insert(glob);
                }
                _ => {}
            }
        }
        for step in &runbook.steps {
            match step.action.as_str() {
                "ssm.run_command" => {
                    let document = step
                        .input
                        .get("document")
                        .and_then(Value::as_str)
                        .unwrap_or("AWS-RunShellScript");
                    scope.documents.insert(literal_prefix_glob(document));
                }
                "cloudformation.create_stack" | "cloudformation.delete_stack" => {
                    let name = step
                        .input
                        .get("stack_name")
                        .and_then(Value::as_str)
                        .unwrap_or("*");
                    scope.stacks.insert(literal_prefix_glob(name));
                }
                _ => {}
            }
        }
    }
    // Principals found from an access key id (no name parameter) can be any user.
    let touches_users = runbooks
        .iter()
        .any(|r| r.steps.iter().any(|s| s.action.starts_with("iam.")));
    if touches_users && scope.users.is_empty() {
        scope.users.insert("*".into());
    }
    if touches_users && scope.roles.is_empty() {
        scope.roles.insert("*".into());
    }
    scope
}

/// `firebreak-clean-room-{{params.case_id}}` → `firebreak-clean-room-*`.
fn literal_prefix_glob(text: &str) -> String {
    match text.find("{{") {
        Some(i) => format!("{}*", &text[..i]),
        None => text.to_owned(),
    }
}

/// A regular expression's literal prefix as an IAM ARN glob: `^app-[a-z]+$` → `app-*`.
fn regex_to_glob(pattern: &str) -> String {
    let body = pattern.trim_start_matches('^');
    let prefix: String = body
        .chars()
        .take_while(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '=' | ',' | '@' | '/')
        })
        .collect();
    let rest = &body[prefix.len()..];
    if rest == "$" || rest.is_empty() {
        prefix
    } else {
        format!("{prefix}*")
    }
}

type Grant = (Vec<String>, Option<Value>);

fn arns(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn request_tag(key: &str) -> Value {
    json!({"Null": {format!("aws:RequestTag/{key}"): "false"}})
}

/// Where and under which condition one permission is granted.
fn grants_for(permission: &str, scope: &Scope) -> Vec<Grant> {
    const INSTANCE: &str = "arn:aws:ec2:*:*:instance/*";
    const VOLUME: &str = "arn:aws:ec2:*:*:volume/*";
    const SNAPSHOT: &str = "arn:aws:ec2:*::snapshot/*";
    const ENI: &str = "arn:aws:ec2:*:*:network-interface/*";
    const GROUP: &str = "arn:aws:ec2:*:*:security-group/*";
    let users = || {
        scope
            .users
            .iter()
            .map(|g| format!("arn:aws:iam::*:user/{g}"))
            .collect::<Vec<_>>()
    };
    let roles = || {
        scope
            .roles
            .iter()
            .map(|g| format!("arn:aws:iam::*:role/{g}"))
            .collect::<Vec<_>>()
    };
    let stacks = || {
        let list: Vec<String> = scope
            .stacks
            .iter()
            .map(|g| format!("arn:aws:cloudformation:*:*:stack/{g}/*"))
            .collect();
        if list.is_empty() {
            vec!["arn:aws:cloudformation:*:*:stack/*/*".into()]
        } else {
            list
        }
    };
    match permission {
        // EC2 changes on instances.
        "ec2:DescribeInstanceAttribute"
        | "ec2:ModifyInstanceAttribute"
        | "ec2:ModifyInstanceMetadataOptions"
        | "ec2:StopInstances"
        | "ec2:GetConsoleOutput"
        | "ec2:DisassociateIamInstanceProfile" => vec![(arns(&[INSTANCE]), None)],
        "ec2:ReplaceIamInstanceProfileAssociation" => vec![(arns(&[INSTANCE]), None)],
        "ec2:ModifyNetworkInterfaceAttribute" => vec![(arns(&[ENI, GROUP]), None)],
        // A request condition holds for every resource of the request, so the VPC and the new
        // group share one statement.
        "ec2:CreateSecurityGroup" => vec![(
            arns(&["arn:aws:ec2:*:*:vpc/*", GROUP]),
            Some(request_tag("firebreak:role")),
        )],
        // Rules change only on firebreak's own groups.
        "ec2:AuthorizeSecurityGroupIngress"
        | "ec2:AuthorizeSecurityGroupEgress"
        | "ec2:RevokeSecurityGroupIngress"
        | "ec2:RevokeSecurityGroupEgress" => vec![(
            arns(&[GROUP]),
            Some(json!({"StringEquals": {"aws:ResourceTag/firebreak:managed": "true"}})),
        )],
        "ec2:CreateTags" => vec![(arns(&[INSTANCE, VOLUME, SNAPSHOT, ENI, GROUP]), None)],
        // Snapshots only with the case tag in the request.
        "ec2:CreateSnapshot" => vec![(
            arns(&[VOLUME, SNAPSHOT]),
            Some(request_tag("firebreak:case")),
        )],
        "ec2:DescribeSnapshotAttribute" => vec![(arns(&[SNAPSHOT]), None)],
        "ec2:CopySnapshot" => vec![(arns(&[SNAPSHOT]), Some(request_tag("firebreak:case")))],
        // Only the case's snapshots are shared.
        "ec2:ModifySnapshotAttribute" => vec![(
            arns(&[SNAPSHOT]),
            Some(json!({"Null": {"aws:ResourceTag/firebreak:case": "false"}})),
        )],
        "ec2:CreateVolume" => vec![(
            arns(&[VOLUME, SNAPSHOT]),
            Some(request_tag("firebreak:case")),
        )],
        "ec2:AttachVolume" => vec![(arns(&[INSTANCE, VOLUME]), None)],
        "ec2:DisassociateAddress" => vec![(arns(&["arn:aws:ec2:*:*:elastic-ip/*"]), None)],
        "autoscaling:SetInstanceProtection"
        | "autoscaling:DetachInstances"
        | "autoscaling:EnterStandby" => {
            vec![(
                arns(&["arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/*"]),
                None,
            )]
        }
        // Roles are passed only to EC2 (instance profiles) and to the services the clean room's
        // template configures.
        "iam:PassRole" => vec![(
            arns(&["arn:aws:iam::*:role/*"]),
            Some(
                json!({"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "vpc-flow-logs.amazonaws.com"]}}),
            ),
        )],
        p if p.starts_with("iam:") && p.contains("User")
            || p.starts_with("iam:") && p.contains("AccessKey")
            || p.starts_with("iam:") && p.contains("LoginProfile")
            || p.starts_with("iam:") && p.contains("MFA")
            || p == "iam:ListGroupsForUser" =>
        {
            vec![(users(), None)]
        }
        p if p.starts_with("iam:") && p.contains("Role")
            || p == "iam:ListInstanceProfilesForRole" =>
        {
            vec![(roles(), None)]
        }
        "ssm:SendCommand" => {
            let mut resources = vec![INSTANCE.to_string()];
            resources.extend(
                scope
                    .documents
                    .iter()
                    .map(|d| format!("arn:aws:ssm:*:*:document/{d}")),
            );
            vec![(resources, None)]
        }
        p if p.starts_with("cloudformation:") && p != "cloudformation:DescribeStacks" => {
            vec![(stacks(), None)]
        }
        "kms:CreateGrant"
        | "kms:DescribeKey"
        | "kms:GenerateDataKeyWithoutPlaintext"
        | "kms:ReEncryptFrom"
        | "kms:ReEncryptTo" => vec![(
            arns(&["arn:aws:kms:*:*:key/*"]),
            Some(json!({"StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}})),
        )],
        // Describe/List/Get calls that AWS does not scope to resources.
        _ => vec![(arns(&["*"]), None)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_from_patterns() {
        assert_eq!(regex_to_glob("^app-[a-z]+$"), "app-*");
        assert_eq!(regex_to_glob("^[A-Za-z0-9+=,.@_-]+$"), "*");
        assert_eq!(regex_to_glob("^exact$"), "exact");
        assert_eq!(
            literal_prefix_glob("firebreak-clean-room-{{params.case_id}}"),
            "firebreak-clean-room-*"
        );
    }
}
