//! A seeded "compromised" instance in moto (scripts/seed-sandbox.py, shared with the demo).

use std::process::Command;

use serde_json::Value;

/// Seeds moto (reset first by the caller via `moto::exclusive`) straight, not through the
/// proxy (so seeding is not counted), and returns the ids.
pub fn seed(name: &str) -> Value {
    seed_with(name, &[])
}

pub fn seed_with(name: &str, extra: &[&str]) -> Value {
    let python = super::repo(".venv/bin/python");
    let out = Command::new(&python)
        .arg(super::repo("scripts/seed-sandbox.py"))
        .args(["--endpoint", super::moto::upstream(), "--name", name])
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("failed to run {}: {e}; run scripts/venv", python.display()));
    assert!(
        out.status.success(),
        "seed-sandbox.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("seed-sandbox.py prints JSON")
}

/// An outbreak seeded straight in moto (scripts/seed-fleet.py): `instances` over `vpcs`, every
/// fifth with a second interface. `{"instances": [{instance_id, vpc_id, network_interface_ids,
/// volume_ids}], "vpcs": [{vpc_id, ...}]}`.
pub fn seed_fleet(instances: usize, vpcs: usize) -> Value {
    seed_fleet_with(instances, vpcs, &[])
}

/// [`seed_fleet`] with more of seed-fleet.py's options (`--shared-profile NAME`: one role for
/// every instance; the ids then carry `instance_profile_arn` and `role_name`).
pub fn seed_fleet_with(instances: usize, vpcs: usize, extra: &[&str]) -> Value {
    let python = super::repo(".venv/bin/python");
    let out = Command::new(&python)
        .arg(super::repo("scripts/seed-fleet.py"))
        .args(["--endpoint", super::moto::upstream()])
        .args([
            "--instances",
            &instances.to_string(),
            "--vpcs",
            &vpcs.to_string(),
        ])
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("failed to run {}: {e}; run scripts/venv", python.display()));
    assert!(
        out.status.success(),
        "seed-fleet.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("seed-fleet.py prints JSON")
}

/// Resource id → value of tag `key`, from DescribeTags.
pub async fn tagged_with(key: &str) -> std::collections::BTreeMap<String, String> {
    ec2()
        .await
        .describe_tags()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("key")
                .values(key)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .map(|t| {
            (
                t.resource_id().unwrap().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Each access key of `user` with its status (`Active`, `Inactive`), sorted.
pub async fn key_statuses(iam: &aws_sdk_iam::Client, user: &str) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = iam
        .list_access_keys()
        .user_name(user)
        .send()
        .await
        .unwrap()
        .access_key_metadata()
        .iter()
        .map(|k| {
            (
                k.access_key_id().unwrap().to_owned(),
                k.status().unwrap().as_str().to_owned(),
            )
        })
        .collect();
    keys.sort();
    keys
}

/// An EC2 client straight to moto, for a test to look at the state (not counted by the proxy).
pub async fn ec2() -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&super::moto::direct_config().await)
}

/// [`ec2`] in another region.
pub async fn ec2_in(region: &str) -> aws_sdk_ec2::Client {
    let config = aws_sdk_ec2::config::Builder::from(&super::moto::direct_config().await)
        .region(aws_sdk_ec2::config::Region::new(region.to_owned()))
        .build();
    aws_sdk_ec2::Client::from_conf(config)
}

fn filter(name: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .values(value)
        .build()
}

/// The instance's interfaces whose own groups include `group`, sorted (the `group-id` filter
/// reads an interface's own groups exactly; moto's group lists do not).
pub async fn interfaces_in(ec2: &aws_sdk_ec2::Client, instance: &str, group: &str) -> Vec<String> {
    let output = ec2
        .describe_network_interfaces()
        .filters(filter("attachment.instance-id", instance))
        .filters(filter("group-id", group))
        .send()
        .await
        .unwrap();
    let mut ids: Vec<String> = output
        .network_interfaces()
        .iter()
        .filter_map(|e| e.network_interface_id().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

/// The ARN of the instance profile associated with the instance now, if any.
pub async fn associated_profile(ec2: &aws_sdk_ec2::Client, instance: &str) -> Option<String> {
    ec2.describe_iam_instance_profile_associations()
        .filters(filter("instance-id", instance))
        .send()
        .await
        .unwrap()
        .iam_instance_profile_associations()
        .iter()
        .find(|a| a.state().is_some_and(|s| s.as_str() == "associated"))
        .and_then(|a| a.iam_instance_profile())
        .and_then(|p| p.arn())
        .map(str::to_owned)
}

/// The security groups carrying `firebreak:role=<role>`.
pub async fn firebreak_groups(ec2: &aws_sdk_ec2::Client, role: &str) -> Vec<String> {
    ec2.describe_security_groups()
        .filters(filter("tag:firebreak:role", role))
        .send()
        .await
        .unwrap()
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id().map(str::to_owned))
        .collect()
}

/// The region's S3 prefix list id (the clean room's template needs it).
pub async fn s3_prefix_list() -> String {
    ec2()
        .await
        .describe_managed_prefix_lists()
        .filters(filter("prefix-list-name", "com.amazonaws.us-east-1.s3"))
        .send()
        .await
        .unwrap()
        .prefix_lists()[0]
        .prefix_list_id()
        .unwrap()
        .to_owned()
}

/// Creates, straight in moto, the VPC's SSM interface endpoints (and an S3 gateway endpoint
/// with `s3_policy`, `None` for AWS's allow-all default, if given): the endpoints' own
/// addresses as /32s.
pub async fn vpc_endpoints(ids: &Value, s3_policy: Option<Option<&str>>) -> Vec<String> {
    let ec2 = ec2().await;
    let vpc = ids["vpc_id"].as_str().unwrap();
    let subnet = ids["subnet_id"].as_str().unwrap();
    let mut enis = Vec::new();
    for service in ["ssm", "ssmmessages", "ec2messages"] {
        let made = ec2
            .create_vpc_endpoint()
            .vpc_id(vpc)
            .service_name(format!("com.amazonaws.us-east-1.{service}"))
            .vpc_endpoint_type(aws_sdk_ec2::types::VpcEndpointType::Interface)
            .subnet_ids(subnet)
            .private_dns_enabled(true)
            .send()
            .await
            .unwrap();
        enis.extend(
            made.vpc_endpoint()
                .unwrap()
                .network_interface_ids()
                .to_vec(),
        );
    }
    if let Some(policy) = s3_policy {
        ec2.create_vpc_endpoint()
            .vpc_id(vpc)
            .service_name("com.amazonaws.us-east-1.s3")
            .vpc_endpoint_type(aws_sdk_ec2::types::VpcEndpointType::Gateway)
            .set_policy_document(policy.map(str::to_owned))
            .send()
            .await
            .unwrap();
    }
    let described = ec2
        .describe_network_interfaces()
        .set_network_interface_ids(Some(enis))
        .send()
        .await
        .unwrap();
    let mut cidrs: Vec<String> = described
        .network_interfaces()
        .iter()
        .filter_map(|e| e.private_ip_address())
        .map(|ip| format!("{ip}/32"))
        .collect();
    cidrs.sort();
    cidrs.dedup();
    cidrs
}

/// An S3 bucket in moto's account.
pub async fn bucket(name: &str) {
    let config = aws_sdk_s3::config::Builder::from(&super::moto::direct_config().await)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
        .create_bucket()
        .bucket(name)
        .send()
        .await
        .unwrap();
}

/// Puts the event's Security Hub findings into moto's Security Hub (as the service holds them
/// before it emits the event), with `changes` (`Workflow.Status=RESOLVED`) applied; straight to
/// moto, not counted by the proxy.
pub fn import_findings(event_text: &str, changes: &[&str]) {
    use std::io::Write;
    let python = super::repo(".venv/bin/python");
    let mut child = Command::new(&python)
        .arg(super::repo("tests/support/import_findings.py"))
        .args(["--endpoint", super::moto::upstream()])
        .args(changes.iter().flat_map(|c| ["--set", c]))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("failed to run {}: {e}; run scripts/venv", python.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(event_text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "import_findings.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A policy document as IAM returns it (URL-encoded JSON), decoded.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// A role's inline policy `name`, parsed; `None` when the role has none of that name.
pub async fn role_policy(role: &str, name: &str) -> Option<Value> {
    let iam = aws_sdk_iam::Client::new(&super::moto::direct_config().await);
    match iam
        .get_role_policy()
        .role_name(role)
        .policy_name(name)
        .send()
        .await
    {
        Ok(out) => Some(serde_json::from_str(&percent_decode(out.policy_document())).unwrap()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            None
        }
        Err(e) => panic!("GetRolePolicy {role}/{name}: {e:?}"),
    }
}

/// The instance ARNs in firebreak's instance-credential deny on `role` (empty: no policy).
pub async fn denied_instances(role: &str) -> Vec<String> {
    let Some(policy) = role_policy(role, "firebreak-deny-instance-credentials").await else {
        return Vec::new();
    };
    let statements = policy["Statement"].as_array().expect("a statement list");
    let ours: Vec<&Value> = statements
        .iter()
        .filter(|s| s["Sid"] == "FirebreakDenyInstanceCredentials")
        .collect();
    assert_eq!(ours.len(), 1, "one deny statement: {policy}");
    assert_eq!(ours[0]["Effect"], "Deny", "{policy}");
    assert_eq!(ours[0]["Action"], "*", "{policy}");
    ours[0]["Condition"]["StringEquals"]["ec2:SourceInstanceARN"]
        .as_array()
        .expect("a list of instance ARNs")
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}
