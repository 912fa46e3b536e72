//! The inline policy that denies the credentials of named instances on their role: one deny
//! statement whose `ec2:SourceInstanceARN` condition lists every contained instance.
//!
//! One statement with a list, not a statement per instance: a role shared by a fleet would
//! otherwise reach IAM's inline-policy size limit after a few dozen instances. The condition
//! key is carried by every request signed with credentials the instance metadata service
//! delivered — wherever they are used from — so the deny reaches credentials an attacker
//! already copied off the instance, and no other instance of the role is touched.

use serde_json::{Value, json};

use super::POLICY_VERSION;

/// The inline policy firebreak writes on the instance's role.
pub const POLICY_NAME: &str = "firebreak-deny-instance-credentials";
/// The statement firebreak owns inside it.
pub const SID: &str = "FirebreakDenyInstanceCredentials";
/// The condition key naming the instance a role session was issued to.
pub const CONDITION_KEY: &str = "ec2:SourceInstanceARN";
/// IAM's limit on all the inline policies of one role together (characters, whitespace not
/// counted). A document alone over it is refused before it is sent, with the count.
pub const ROLE_INLINE_LIMIT: usize = 10_240;

/// The instance ARNs the document's firebreak statement denies.
pub fn denied_instances(document: Option<&Value>) -> Vec<String> {
    let Some(statement) = document.and_then(own_statement) else {
        return Vec::new();
    };
    match &statement["Condition"]["StringEquals"][CONDITION_KEY] {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The document with `instance_arn` in the firebreak statement's list (other statements, if
/// someone added any, are kept as they are).
pub fn with_instance(previous: Option<&Value>, instance_arn: &str) -> Value {
    let mut instances = denied_instances(previous);
    if !instances.iter().any(|a| a == instance_arn) {
        instances.push(instance_arn.to_owned());
    }
    document_with(previous, &instances)
}

/// The document without `instance_arn`; `None` when nothing would be left (the policy is then
/// deleted, not left empty: IAM refuses a document without statements).
pub fn without_instance(previous: Option<&Value>, instance_arn: &str) -> Option<Value> {
    let instances: Vec<String> = denied_instances(previous)
        .into_iter()
        .filter(|a| a != instance_arn)
        .collect();
    let others = other_statements(previous);
    if instances.is_empty() && others.is_empty() {
        return None;
    }
    Some(document_with(previous, &instances))
}

/// Characters IAM counts against the role's limit (the document without whitespace).
pub fn size(document: &Value) -> usize {
    document.to_string().len()
}

fn document_with(previous: Option<&Value>, instances: &[String]) -> Value {
    let mut statements = other_statements(previous);
    if !instances.is_empty() {
        statements.push(json!({
            "Sid": SID,
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": { "StringEquals": { CONDITION_KEY: instances } },
        }));
    }
    json!({ "Version": POLICY_VERSION, "Statement": statements })
}

fn statements(document: Option<&Value>) -> Vec<Value> {
    match document.map(|d| &d["Statement"]) {
        Some(Value::Array(list)) => list.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

fn own_statement(document: &Value) -> Option<Value> {
    statements(Some(document))
        .into_iter()
        .find(|s| s["Sid"] == SID)
}

fn other_statements(document: Option<&Value>) -> Vec<Value> {
    statements(document)
        .into_iter()
        .filter(|s| s["Sid"] != SID)
        .collect()
}

/// `arn:PARTITION:ec2:REGION:ACCOUNT:instance/ID`, the partition and account taken from the
/// role's ARN (`arn:PARTITION:iam::ACCOUNT:role/…`).
pub fn instance_arn(role_arn: &str, region: &str, instance_id: &str) -> Option<String> {
    let mut parts = role_arn.splitn(6, ':');
    let (_, partition, _, _, account) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if partition.is_empty() || account.is_empty() {
        return None;
    }
    Some(format!(
        "arn:{partition}:ec2:{region}:{account}:instance/{instance_id}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "arn:aws:ec2:us-east-1:123456789012:instance/i-0a";
    const B: &str = "arn:aws:ec2:us-east-1:123456789012:instance/i-0b";

    #[test]
    fn instances_join_one_statement_and_leave_it() {
        let one = with_instance(None, A);
        assert_eq!(denied_instances(Some(&one)), [A]);
        let two = with_instance(Some(&one), B);
        assert_eq!(two["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(denied_instances(Some(&two)), [A, B]);
        // Adding again changes nothing.
        assert_eq!(with_instance(Some(&two), A), two);
        let back = without_instance(Some(&two), B).unwrap();
        assert_eq!(back, one);
        assert_eq!(without_instance(Some(&one), A), None);
    }

    #[test]
    fn statements_someone_else_added_are_kept() {
        let theirs = json!({"Sid": "Theirs", "Effect": "Deny", "Action": "s3:*", "Resource": "*"});
        let doc = json!({"Version": POLICY_VERSION, "Statement": theirs.clone()});
        let added = with_instance(Some(&doc), A);
        assert_eq!(added["Statement"][0], theirs);
        let removed = without_instance(Some(&added), A).unwrap();
        assert_eq!(removed["Statement"], json!([theirs]));
    }

    #[test]
    fn a_fleet_on_one_role_stays_under_the_limit() {
        let mut doc = None;
        for i in 0..140 {
            let arn = format!("arn:aws:ec2:us-east-1:123456789012:instance/i-{i:017x}");
            doc = Some(with_instance(doc.as_ref(), &arn));
        }
        let doc = doc.unwrap();
        assert_eq!(denied_instances(Some(&doc)).len(), 140);
        assert!(size(&doc) < ROLE_INLINE_LIMIT, "{}", size(&doc));
    }

    #[test]
    fn instance_arns_follow_the_roles_partition_and_account() {
        assert_eq!(
            instance_arn("arn:aws:iam::123456789012:role/app", "us-east-1", "i-0a").unwrap(),
            A
        );
        assert_eq!(
            instance_arn(
                "arn:aws-cn:iam::111122223333:role/p/app",
                "cn-north-1",
                "i-1"
            )
            .unwrap(),
            "arn:aws-cn:ec2:cn-north-1:111122223333:instance/i-1"
        );
        assert_eq!(instance_arn("nonsense", "us-east-1", "i-1"), None);
    }
}
