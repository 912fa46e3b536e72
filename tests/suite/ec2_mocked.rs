//! The EC2 containment actions where moto cannot go, with aws-smithy-mocks clients and the
//! engine in-process: a wait that polls, a wait cut by the step timeout, DryRun on
//! ModifyInstanceMetadataOptions (moto ignores it and applies the change), a denied drill,
//! Auto Scaling lifecycle states moto never reaches, and failures part-way that must report
//! what was already done. A request no rule matches panics, so an unexpected call fails.

use crate::support::aws::MockAws;
use crate::support::journal::ENGINE_STEPS;
use crate::support::run::ec2_fixture_with as run;
use aws_sdk_autoscaling::operation::describe_auto_scaling_instances::DescribeAutoScalingInstancesOutput;
use aws_sdk_autoscaling::operation::detach_instances::DetachInstancesError;
use aws_sdk_autoscaling::operation::set_instance_protection::SetInstanceProtectionOutput;
use aws_sdk_autoscaling::types::AutoScalingInstanceDetails;
use aws_sdk_ec2::operation::create_tags::CreateTagsOutput;
use aws_sdk_ec2::operation::describe_iam_instance_profile_associations::DescribeIamInstanceProfileAssociationsOutput;
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::operation::modify_instance_metadata_options::ModifyInstanceMetadataOptionsError;
use aws_sdk_ec2::operation::replace_iam_instance_profile_association::ReplaceIamInstanceProfileAssociationError;
use aws_sdk_ec2::operation::stop_instances::StopInstancesOutput;
use aws_sdk_ec2::types::{
    HttpTokensState, IamInstanceProfile, IamInstanceProfileAssociation,
    IamInstanceProfileAssociationState, Instance, InstanceMetadataEndpointState,
    InstanceMetadataOptionsResponse, InstanceState, InstanceStateChange, InstanceStateName,
    Reservation,
};
use aws_smithy_mocks::mock;
use aws_smithy_types::error::ErrorMetadata;
use firebreak::engine::{Mode, RunStatus, StepStatus};
use serde_json::{Value, json};

const INSTANCE: &str = "i-0123456789abcdef0";
const APP_PROFILE: &str = "arn:aws:iam::123456789012:instance-profile/app";
const QUARANTINE: &str = "arn:aws:iam::123456789012:instance-profile/quarantine";

fn instance(state: InstanceStateName) -> Instance {
    Instance::builder()
        .instance_id(INSTANCE)
        .state(InstanceState::builder().name(state).build())
        .metadata_options(
            InstanceMetadataOptionsResponse::builder()
                .http_endpoint(InstanceMetadataEndpointState::Enabled)
                .http_tokens(HttpTokensState::Optional)
                .http_put_response_hop_limit(2)
                .build(),
        )
        .build()
}

fn described(state: InstanceStateName) -> DescribeInstancesOutput {
    DescribeInstancesOutput::builder()
        .reservations(Reservation::builder().instances(instance(state)).build())
        .build()
}

fn error(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message(format!("mocked {code}"))
        .build()
}

fn step_outputs(outcome: &firebreak::engine::RunOutcome) -> Value {
    outcome.steps[0].outputs.clone()
}

fn operations(journal: &[Value]) -> Vec<String> {
    journal
        .iter()
        .filter(|r| {
            r["type"] == "api_call"
                && !ENGINE_STEPS.contains(&r["step"].as_str().unwrap_or_default())
        })
        .map(|r| r["operation"].as_str().unwrap().to_owned())
        .collect()
}

fn stop_instances_rule() -> aws_smithy_mocks::Rule {
    // Never forced, never hibernated, never a dry run in a live run.
    mock!(aws_sdk_ec2::Client::stop_instances)
        .match_requests(|r| {
            r.instance_ids() == [INSTANCE]
                && r.dry_run() != Some(true)
                && r.force().is_none()
                && r.hibernate().is_none()
        })
        .then_output(|| {
            StopInstancesOutput::builder()
                .stopping_instances(
                    InstanceStateChange::builder()
                        .instance_id(INSTANCE)
                        .previous_state(
                            InstanceState::builder()
                                .name(InstanceStateName::Running)
                                .build(),
                        )
                        .current_state(
                            InstanceState::builder()
                                .name(InstanceStateName::Stopping)
                                .build(),
                        )
                        .build(),
                )
                .build()
        })
}

#[tokio::test]
async fn stop_polls_until_stopped() {
    let describes = mock!(aws_sdk_ec2::Client::describe_instances)
        .sequence()
        .output(|| described(InstanceStateName::Running))
        .output(|| described(InstanceStateName::Stopping))
        .output(|| described(InstanceStateName::Stopped))
        .build();
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let (outcome, journal) = run(
        dir.path(),
        "stop.yaml",
        &[("instance_id", INSTANCE)],
        Mode::Live,
        MockAws::new()
            .ec2([describes, stop_instances_rule()])
            .build()
            .clients
            .clone(),
    )
    .await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{journal:#?}");
    let out = step_outputs(&outcome);
    assert_eq!(out["state_before"], "running", "{out}");
    assert_eq!(out["state_after"], "stopped");
    assert_eq!(out["waited"], true);
    assert_eq!(out["polls"], 2);
    assert_eq!(
        operations(&journal),
        [
            "DescribeInstances",
            "StopInstances",
            "DescribeInstances",
            "DescribeInstances"
        ]
    );
    // One `poll_delay` between the two polls.
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
}

#[tokio::test]
async fn the_step_timeout_bounds_the_wait() {
    let describes = mock!(aws_sdk_ec2::Client::describe_instances)
        .sequence()
        .output(|| described(InstanceStateName::Running))
        .output(|| described(InstanceStateName::Stopping))
        .repeatedly()
        .build();
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let (outcome, journal) = run(
        dir.path(),
        "stop-timeout.yaml",
        &[("instance_id", INSTANCE)],
        Mode::Live,
        MockAws::new()
            .ec2([describes, stop_instances_rule()])
            .build()
            .clients
            .clone(),
    )
    .await;
    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(outcome.steps[0].status, StepStatus::Failed);
    let failed = journal
        .iter()
        .find(|r| r["type"] == "step_failed")
        .expect("step_failed");
    assert_eq!(failed["class"], "timeout", "{failed}");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("timed out after 2s"),
        "{failed}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(operations(&journal).contains(&"StopInstances".to_owned()));
}

#[tokio::test]
async fn metadata_drill_sends_a_dry_run_keeping_the_other_setting() {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances)
        .then_output(|| described(InstanceStateName::Running));
    let modify = mock!(aws_sdk_ec2::Client::modify_instance_metadata_options)
        .match_requests(|r| {
            r.dry_run() == Some(true)
                && r.instance_id() == Some(INSTANCE)
                && r.http_endpoint() == Some(&InstanceMetadataEndpointState::Disabled)
                && r.http_tokens() == Some(&HttpTokensState::Optional)
        })
        .then_error(|| ModifyInstanceMetadataOptionsError::generic(error("DryRunOperation")));
    let dir = tempfile::tempdir().unwrap();
    let (outcome, journal) = run(
        dir.path(),
        "metadata.yaml",
        &[("instance_id", INSTANCE)],
        Mode::DryRun,
        MockAws::new()
            .ec2([describe, modify])
            .build()
            .clients
            .clone(),
    )
    .await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{journal:#?}");
    let out = step_outputs(&outcome);
    assert_eq!(out["dry_run"], true, "{out}");
    assert_eq!(out["changed"], false);
    assert_eq!(out["would_change"], true);
    assert_eq!(out["before"]["http_endpoint"], "enabled");
    assert_eq!(out["after"]["http_endpoint"], "disabled");
    assert_eq!(out["after"]["http_tokens"], "optional");
    let modify = journal
        .iter()
        .filter(|r| r["type"] == "api_call")
        .find(|r| r["operation"] == "ModifyInstanceMetadataOptions")
        .unwrap();
    assert_eq!(modify["outcome"], "would-succeed", "{modify}");
    assert_eq!(modify["dry_run"], true);
}

#[tokio::test]
async fn a_denied_drill_fails_the_step_and_says_so() {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances)
        .then_output(|| described(InstanceStateName::Running));
    let modify = mock!(aws_sdk_ec2::Client::modify_instance_metadata_options)
        .match_requests(|r| r.dry_run() == Some(true))
        .then_error(|| ModifyInstanceMetadataOptionsError::generic(error("UnauthorizedOperation")));
    let dir = tempfile::tempdir().unwrap();
    let (outcome, journal) = run(
        dir.path(),
        "metadata.yaml",
        &[("instance_id", INSTANCE), ("mode", "require-tokens")],
        Mode::DryRun,
        MockAws::new()
            .ec2([describe, modify])
            .build()
            .clients
            .clone(),
    )
    .await;
    assert_eq!(outcome.status, RunStatus::Failed);
    let modify = journal
        .iter()
        .filter(|r| r["type"] == "api_call")
        .find(|r| r["operation"] == "ModifyInstanceMetadataOptions")
        .unwrap();
    assert_eq!(modify["outcome"], "would-be-denied", "{modify}");
    let failed = journal.iter().find(|r| r["type"] == "step_failed").unwrap();
    assert_eq!(failed["class"], "access-denied", "{failed}");
    assert_eq!(failed["code"], "UnauthorizedOperation");
}

fn autoscaling_member(state: &'static str) -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_instances).then_output(move || {
        DescribeAutoScalingInstancesOutput::builder()
            .auto_scaling_instances(
                AutoScalingInstanceDetails::builder()
                    .instance_id(INSTANCE)
                    .auto_scaling_group_name("web-asg")
                    .lifecycle_state(state)
                    .protected_from_scale_in(false)
                    .health_status("Healthy")
                    .availability_zone("us-east-1a")
                    .build(),
            )
            .build()
    })
}

#[tokio::test]
async fn an_instance_the_group_is_terminating_fails_without_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let (outcome, journal) = run(
        dir.path(),
        "autoscaling.yaml",
        &[("instance_id", INSTANCE)],
        Mode::Live,
        MockAws::new()
            .autoscaling([autoscaling_member("Terminating:Wait")])
            .build()
            .clients
            .clone(),
    )
    .await;
    assert_eq!(outcome.status, RunStatus::Failed);
    let failed = journal.iter().find(|r| r["type"] == "step_failed").unwrap();
    let message = failed["message"].as_str().unwrap();
    assert!(
        message.contains(INSTANCE)
            && message.contains("web-asg")
            && message.contains("Terminating:Wait"),
        "{message}"
    );
    assert_eq!(operations(&journal), ["DescribeAutoScalingInstances"]);
}

#[tokio::test]
async fn a_failed_detach_reports_the_protection_already_set() {
    let protect = mock!(aws_sdk_autoscaling::Client::set_instance_protection)
        .match_requests(|r| {
            r.instance_ids() == [INSTANCE]
                && r.auto_scaling_group_name() == Some("web-asg")
                && r.protected_from_scale_in() == Some(true)
        })
        .then_output(|| SetInstanceProtectionOutput::builder().build());
    let detach = mock!(aws_sdk_autoscaling::Client::detach_instances)
        .match_requests(|r| r.should_decrement_desired_capacity() == Some(true))
        .then_error(|| DetachInstancesError::generic(error("ValidationError")));
    let dir = tempfile::tempdir().unwrap();
    let (outcome, journal) = run(
        dir.path(),
        "autoscaling.yaml",
        &[("instance_id", INSTANCE), ("decrement", "true")],
        Mode::Live,
        MockAws::new()
            .autoscaling([autoscaling_member("InService"), protect, detach])
            .build()
            .clients
            .clone(),
    )
    .await;
    assert_eq!(outcome.status, RunStatus::Failed);
    // What was done before the failure is journaled with it.
    let failed = journal.iter().find(|r| r["type"] == "step_failed").unwrap();
    assert_eq!(failed["code"], "ValidationError", "{failed}");
    let out = &failed["outputs"];
    assert_eq!(out["done"], json!(["set_instance_protection"]), "{out}");
    assert_eq!(out["changed"], true);
    assert_eq!(out["autoscaling_group"], "web-asg");
    assert_eq!(out["decrement_desired_capacity"], true);
}

/// The instance has the application's profile (association `iip-assoc-0a1`).
fn app_profile_associated() -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_ec2::Client::describe_iam_instance_profile_associations).then_output(|| {
        DescribeIamInstanceProfileAssociationsOutput::builder()
            .iam_instance_profile_associations(
                IamInstanceProfileAssociation::builder()
                    .association_id("iip-assoc-0a1")
                    .instance_id(INSTANCE)
                    .state(IamInstanceProfileAssociationState::Associated)
                    .iam_instance_profile(IamInstanceProfile::builder().arn(APP_PROFILE).build())
                    .build(),
            )
            .build()
    })
}

#[tokio::test]
async fn a_failed_replacement_keeps_the_recorded_original() {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances)
        .then_output(|| described(InstanceStateName::Running));
    let associations = app_profile_associated();
    let tag = mock!(aws_sdk_ec2::Client::create_tags)
        .match_requests(|r| {
            r.resources() == [INSTANCE]
                && r.tags().len() == 1
                && r.tags()[0].key() == Some("firebreak:original-instance-profile")
                && r.tags()[0].value() == Some(APP_PROFILE)
        })
        .then_output(|| CreateTagsOutput::builder().build());
    let replace = mock!(aws_sdk_ec2::Client::replace_iam_instance_profile_association)
        .match_requests(|r| {
            r.association_id() == Some("iip-assoc-0a1")
                && r.iam_instance_profile().and_then(|p| p.arn()) == Some(QUARANTINE)
        })
        .then_error(|| {
            ReplaceIamInstanceProfileAssociationError::generic(error("UnauthorizedOperation"))
        });
    let dir = tempfile::tempdir().unwrap();
    let (outcome, journal) = run(
        dir.path(),
        "profile-replace.yaml",
        &[("instance_id", INSTANCE), ("replacement", QUARANTINE)],
        Mode::Live,
        MockAws::new()
            .ec2([describe, associations, tag, replace])
            .build()
            .clients
            .clone(),
    )
    .await;
    assert_eq!(outcome.status, RunStatus::Failed);
    let failed = journal.iter().find(|r| r["type"] == "step_failed").unwrap();
    assert_eq!(failed["code"], "UnauthorizedOperation", "{failed}");
    let out = &failed["outputs"];
    assert_eq!(out["tagged"], true, "{out}");
    assert_eq!(out["done"], "nothing");
    assert_eq!(out["changed"], true, "the tag was written");
    assert_eq!(out["original"]["arn"], APP_PROFILE);
    assert_eq!(out["original"]["association_id"], "iip-assoc-0a1");
    assert_eq!(
        operations(&journal),
        [
            "DescribeInstances",
            "DescribeIamInstanceProfileAssociations",
            "CreateTags",
            "ReplaceIamInstanceProfileAssociation"
        ]
    );
}

/// H3: an empty replacement ARN (the shipped runbooks' default) disassociates the profile. EC2
/// rejects `ReplaceIamInstanceProfileAssociation` with an empty ARN (moto accepts it and leaves
/// an association without a profile), so the mock answers as EC2 does — and must never be asked.
#[tokio::test]
async fn an_empty_replacement_arn_disassociates_the_profile() {
    use aws_sdk_ec2::operation::disassociate_iam_instance_profile::DisassociateIamInstanceProfileOutput;
    let describe = mock!(aws_sdk_ec2::Client::describe_instances)
        .then_output(|| described(InstanceStateName::Running));
    let associations = app_profile_associated();
    let tag =
        mock!(aws_sdk_ec2::Client::create_tags).then_output(|| CreateTagsOutput::builder().build());
    let replace_with_nothing = mock!(aws_sdk_ec2::Client::replace_iam_instance_profile_association)
        .then_error(|| {
            ReplaceIamInstanceProfileAssociationError::generic(error("InvalidParameterValue"))
        });
    let disassociate = mock!(aws_sdk_ec2::Client::disassociate_iam_instance_profile)
        .match_requests(|r| r.association_id() == Some("iip-assoc-0a1"))
        .then_output(|| DisassociateIamInstanceProfileOutput::builder().build());
    let dir = tempfile::tempdir().unwrap();
    let (outcome, journal) = run(
        dir.path(),
        "profile-default.yaml",
        &[("instance_id", INSTANCE)],
        Mode::Live,
        MockAws::new()
            .ec2([
                describe,
                associations,
                tag,
                replace_with_nothing.clone(),
                disassociate.clone(),
            ])
            .build()
            .clients
            .clone(),
    )
    .await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{journal:#?}");
    assert_eq!(replace_with_nothing.num_calls(), 0);
    assert_eq!(disassociate.num_calls(), 1);
    assert!(operations(&journal).contains(&"DisassociateIamInstanceProfile".to_owned()));
}
