//! The engine with mocked AWS answers: step-level retries of throttling (and none for access
//! denied), and fail-closed partial isolation.

use std::path::Path;

use aws_sdk_ec2::operation::describe_instances::{DescribeInstancesError, DescribeInstancesOutput};
use aws_sdk_ec2::types::{
    GroupIdentifier, Instance, InstanceNetworkInterface, InstanceNetworkInterfaceAttachment,
    IpPermission, IpRange, NetworkInterface, NetworkInterfaceAttachment, Reservation,
    SecurityGroup,
};
use aws_smithy_mocks::Rule;
use aws_smithy_mocks::mock;
use aws_smithy_types::error::ErrorMetadata;
use firebreak::engine::{RunOutcome, RunStatus};

use crate::support::aws::MockAws;
use crate::support::run::Run;
use serde_json::Value;

const INSTANCE: &str = "i-0123456789abcdef0";

/// Runs `runbook` (text) on EC2 mocked by `rules`.
async fn run_on(dir: &Path, runbook: &str, rules: &[&Rule]) -> RunOutcome {
    let aws = MockAws::new()
        .ec2(rules.iter().map(|r| (*r).clone()))
        .build();
    Run::yaml(dir, runbook)
        .clients(aws.clients.clone())
        .start(dir)
        .await
        .run
}

fn records(path: &Path) -> Vec<Value> {
    crate::support::journal::values(path)
}

fn instance_output() -> DescribeInstancesOutput {
    let eni = |id: &str, index: i32, group: &str| {
        InstanceNetworkInterface::builder()
            .network_interface_id(id)
            .attachment(
                InstanceNetworkInterfaceAttachment::builder()
                    .device_index(index)
                    .build(),
            )
            .groups(GroupIdentifier::builder().group_id(group).build())
            .build()
    };
    DescribeInstancesOutput::builder()
        .reservations(
            Reservation::builder()
                .instances(
                    Instance::builder()
                        .instance_id(INSTANCE)
                        .vpc_id("vpc-0aaa")
                        .network_interfaces(eni("eni-0first", 0, "sg-0web"))
                        .network_interfaces(eni("eni-0second", 1, "sg-0admin"))
                        .build(),
                )
                .build(),
        )
        .build()
}

const DESCRIBE_WITH_RETRY: &str = r#"
version: 1
name: describe-retry
steps:
  - id: describe
    action: ec2.describe_instance
    retry: { attempts: 3 }
    with: { instance_id: "i-0123456789abcdef0" }
"#;

#[tokio::test]
async fn throttling_is_retried_with_every_attempt_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let describe = mock!(aws_sdk_ec2::Client::describe_instances)
        .sequence()
        .error(|| {
            DescribeInstancesError::generic(
                ErrorMetadata::builder()
                    .code("RequestLimitExceeded")
                    .message("slow down")
                    .build(),
            )
        })
        .times(2)
        .output(instance_output)
        .build();
    let associations = mock!(aws_sdk_ec2::Client::describe_iam_instance_profile_associations)
        .then_output(|| aws_sdk_ec2::operation::describe_iam_instance_profile_associations::DescribeIamInstanceProfileAssociationsOutput::builder().build());
    let outcome = run_on(dir.path(), DESCRIBE_WITH_RETRY, &[&describe, &associations]).await;
    assert_eq!(outcome.status, RunStatus::Succeeded);
    assert_eq!(outcome.steps[0].outputs["vpc_id"], "vpc-0aaa");
    let records = records(&outcome.journal);
    let retries: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "step_retry")
        .collect();
    assert_eq!(retries.len(), 2);
    assert_eq!(retries[0]["class"], "throttling");
    assert_eq!(retries[0]["attempt"], 1);
    assert_eq!(retries[1]["attempt"], 2);
    let calls: Vec<(&Value, &Value)> = records
        .iter()
        .filter(|r| r["type"] == "api_call" && r["operation"] == "DescribeInstances")
        .map(|r| (&r["attempt"], &r["outcome"]))
        .collect();
    assert_eq!(
        calls.len(),
        3,
        "every attempt's call is journaled: {calls:?}"
    );
    assert_eq!(calls[2].1, "ok");
}

#[tokio::test]
async fn access_denied_is_never_retried() {
    let dir = tempfile::tempdir().unwrap();
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_error(|| {
        DescribeInstancesError::generic(
            ErrorMetadata::builder()
                .code("UnauthorizedOperation")
                .message("no")
                .build(),
        )
    });
    let outcome = run_on(dir.path(), DESCRIBE_WITH_RETRY, &[&describe]).await;
    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(describe.num_calls(), 1);
    let records = records(&outcome.journal);
    assert!(!records.iter().any(|r| r["type"] == "step_retry"));
    let failed = records.iter().find(|r| r["type"] == "step_failed").unwrap();
    assert_eq!(failed["class"], "access-denied");
    assert_eq!(failed["code"], "UnauthorizedOperation");
}

const ISOLATE: &str = r#"
version: 1
name: isolate-partial
steps:
  - id: isolate
    action: ec2.isolate_instance
    with: { instance_id: "i-0123456789abcdef0" }
"#;

#[tokio::test]
async fn partial_isolation_fails_closed_and_reports_each_interface() {
    use aws_sdk_ec2::operation::describe_network_interfaces::DescribeNetworkInterfacesOutput;
    use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
    use aws_sdk_ec2::operation::modify_network_interface_attribute::{
        ModifyNetworkInterfaceAttributeError, ModifyNetworkInterfaceAttributeOutput,
    };

    let dir = tempfile::tempdir().unwrap();
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(instance_output);
    // Both firebreak groups exist already: isolation without rules, untrack with all traffic.
    let groups =
        mock!(aws_sdk_ec2::Client::describe_security_groups).then_compute_output(|input| {
            let role = input
                .filters()
                .iter()
                .find(|f| f.name() == Some("tag:firebreak:role"))
                .and_then(|f| f.values().first().cloned());
            let group = match role.as_deref() {
                Some("isolation") => SecurityGroup::builder().group_id("sg-0isolation").build(),
                _ => {
                    let all = IpPermission::builder()
                        .ip_protocol("-1")
                        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                        .build();
                    SecurityGroup::builder()
                        .group_id("sg-0untrack")
                        .ip_permissions(all.clone())
                        .ip_permissions_egress(all)
                        .build()
                }
            };
            DescribeSecurityGroupsOutput::builder()
                .security_groups(group)
                .build()
        });
    let interfaces =
        mock!(aws_sdk_ec2::Client::describe_network_interfaces).then_compute_output(|input| {
            let in_group_query = input.filters().iter().any(|f| f.name() == Some("group-id"));
            let eni = |id: &str, index: i32, group: &str| {
                NetworkInterface::builder()
                    .network_interface_id(id)
                    .attachment(
                        NetworkInterfaceAttachment::builder()
                            .device_index(index)
                            .build(),
                    )
                    .groups(GroupIdentifier::builder().group_id(group).build())
                    .build()
            };
            let mut output = DescribeNetworkInterfacesOutput::builder();
            if !in_group_query {
                output = output
                    .network_interfaces(eni("eni-0first", 0, "sg-0web"))
                    .network_interfaces(eni("eni-0second", 1, "sg-0admin"));
            }
            output.build()
        });
    let tags = mock!(aws_sdk_ec2::Client::create_tags)
        .then_output(|| aws_sdk_ec2::operation::create_tags::CreateTagsOutput::builder().build());
    let modify_second = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute)
        .match_requests(|input| input.network_interface_id() == Some("eni-0second"))
        .then_error(|| {
            ModifyNetworkInterfaceAttributeError::generic(
                ErrorMetadata::builder()
                    .code("InvalidParameterValue")
                    .message("injected failure")
                    .build(),
            )
        });
    let modify_first = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute)
        .match_requests(|input| input.network_interface_id() == Some("eni-0first"))
        .then_output(|| ModifyNetworkInterfaceAttributeOutput::builder().build());
    let outcome = run_on(
        dir.path(),
        ISOLATE,
        &[
            &describe,
            &groups,
            &interfaces,
            &tags,
            &modify_second,
            &modify_first,
        ],
    )
    .await;
    assert_eq!(outcome.status, RunStatus::Failed);
    // The first interface moved twice (untrack, then isolation) and was never moved back.
    assert_eq!(
        modify_first.num_calls(),
        2,
        "no revert of the isolated interface"
    );
    assert_eq!(modify_second.num_calls(), 1);
    let records = records(&outcome.journal);
    let failed = records.iter().find(|r| r["type"] == "step_failed").unwrap();
    let message = failed["message"].as_str().unwrap();
    assert!(message.contains("NOT isolated: eni-0second"), "{message}");
    assert!(message.contains("nothing was reverted"), "{message}");
    let interfaces = failed["outputs"]["interfaces"].as_array().unwrap();
    assert_eq!(interfaces[0]["network_interface_id"], "eni-0first");
    assert_eq!(interfaces[0]["isolated"], true);
    assert_eq!(
        interfaces[0]["original_groups"],
        serde_json::json!(["sg-0web"])
    );
    assert_eq!(interfaces[1]["network_interface_id"], "eni-0second");
    assert_eq!(interfaces[1]["isolated"], false);
}
