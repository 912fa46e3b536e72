//! SSM evidence collection: `ssm.run_command` against moto (sent once, even across a crash;
//! the script's hash journaled) and `ssm.check_managed` with aws-smithy-mocks (moto answers
//! DescribeInstanceInformation with HTTP 500).

use std::path::Path;

use aws_sdk_ssm::operation::describe_instance_information::DescribeInstanceInformationOutput;
use aws_sdk_ssm::types::{InstanceInformation, PingStatus, PlatformType};
use aws_smithy_mocks::{Rule, mock};

use crate::support::aws::MockAws;
use crate::support::run::Run;
use crate::support::{crash, moto, sandbox};
use serde_json::Value;

fn sha256_of(path: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[tokio::test]
async fn run_command_sends_once_even_across_a_crash_and_reports_status() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = ids["instance_id"].as_str().unwrap();
    sandbox::bucket("evidence-bucket").await;
    let dir = tempfile::tempdir().unwrap();
    let param = format!("instance_id={instance}");
    let journal = crash::crash_at(
        "before-step-finished:collect",
        dir.path(),
        &["run", "tests/fixtures/ssm/collect.yaml", "-p", &param],
    );
    let resumed = crash::resume(dir.path(), &journal, &["--output", "json"]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    let outcome: Value = serde_json::from_str(&resumed.stdout).unwrap();
    let outputs = &outcome["steps"][0]["outputs"];
    assert_eq!(outputs["status"], "Success");
    assert_eq!(outputs["invocations"][0]["instance_id"], instance);
    assert_eq!(
        outputs["script_sha256"],
        sha256_of("runbooks/scripts/collect-volatile-linux.sh")
    );

    // One command in SSM, one SendCommand in the journal, although the step ran twice.
    let ssm = aws_sdk_ssm::Client::new(&moto::direct_config().await);
    let commands = ssm
        .list_commands()
        .instance_id(instance)
        .send()
        .await
        .unwrap();
    assert_eq!(commands.commands().len(), 1);
    assert_eq!(
        commands.commands()[0].command_id(),
        outputs["command_id"].as_str()
    );
    let records = crate::support::journal::values(Path::new(&journal));
    let sends = records
        .iter()
        .filter(|r| r["type"] == "api_call" && r["operation"] == "SendCommand")
        .count();
    assert_eq!(sends, 1);
    assert_eq!(
        records
            .iter()
            .filter(|r| r["type"] == "step_started")
            .count(),
        2,
        "the step ran again on resume"
    );
}

fn ssm_with(output: DescribeInstanceInformationOutput) -> Rule {
    mock!(aws_sdk_ssm::Client::describe_instance_information).then_output(move || output.clone())
}

async fn check_managed(describe: Rule) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let aws = MockAws::new().ssm([describe]).build();
    let ran = Run::yaml(
        dir.path(),
        "version: 1\nname: check\nsteps:\n  - id: check\n    action: ssm.check_managed\n    with: { instance_id: i-0123456789abcdef0 }\n  - id: collect\n    action: core.log\n    when: \"{{steps.check.outputs.online}}\"\n    with: { message: managed }\n",
    )
    .clients(aws.clients.clone())
    .start(dir.path())
    .await;
    ran.outcome
}

#[tokio::test]
async fn check_managed_reports_online_instances_and_guards_collection() {
    let online = DescribeInstanceInformationOutput::builder()
        .instance_information_list(
            InstanceInformation::builder()
                .instance_id("i-0123456789abcdef0")
                .ping_status(PingStatus::Online)
                .platform_type(PlatformType::Linux)
                .platform_name("Amazon Linux")
                .agent_version("3.3.0")
                .build(),
        )
        .build();
    let outcome = check_managed(ssm_with(online)).await;
    assert_eq!(outcome["steps"][0]["outputs"]["online"], true);
    assert_eq!(outcome["steps"][0]["outputs"]["platform_type"], "Linux");
    assert_eq!(outcome["steps"][1]["status"], "succeeded");

    let unmanaged = DescribeInstanceInformationOutput::builder().build();
    let outcome = check_managed(ssm_with(unmanaged)).await;
    assert_eq!(outcome["steps"][0]["outputs"]["managed"], false);
    assert_eq!(outcome["steps"][1]["status"], "skipped");
}

fn send_command_rule() -> Rule {
    mock!(aws_sdk_ssm::Client::send_command).then_output(|| {
        aws_sdk_ssm::operation::send_command::SendCommandOutput::builder()
            .command(
                aws_sdk_ssm::types::Command::builder()
                    .command_id("c-0123")
                    .build(),
            )
            .build()
    })
}

fn no_commands() -> Rule {
    mock!(aws_sdk_ssm::Client::list_commands).then_output(|| {
        aws_sdk_ssm::operation::list_commands::ListCommandsOutput::builder().build()
    })
}

const TO_BUCKET: &str = "version: 1\nname: collect\nsteps:\n  - id: collect\n    action: ssm.run_command\n    with:\n      instance_ids: [i-0123456789abcdef0]\n      commands: [uptime]\n      wait: false\n      output_s3_bucket: evidence-elsewhere\n";

/// H4: a bucket someone else owns (S3 answers HeadBucket with ExpectedBucketOwner by 403, as
/// AWS does; moto ignores the header) gets no command, and neither does a bucket named without
/// its expected owner.
#[tokio::test]
async fn a_bucket_owned_by_another_account_or_without_an_owner_gets_no_command() {
    use aws_sdk_s3::operation::head_bucket::HeadBucketError;
    use aws_smithy_types::error::ErrorMetadata;
    let dir = tempfile::tempdir().unwrap();
    let forbidden = mock!(aws_sdk_s3::Client::head_bucket)
        .match_requests(|r| r.expected_bucket_owner() == Some("123456789012"))
        .then_error(|| {
            HeadBucketError::generic(ErrorMetadata::builder().code("Forbidden").build())
        });
    let aws = MockAws::new()
        .s3([forbidden])
        .ssm([no_commands(), send_command_rule()])
        .build();
    let owned = format!("{TO_BUCKET}      output_s3_bucket_owner: \"{{{{run.account}}}}\"\n");
    let ran = Run::yaml(dir.path(), &owned)
        .clients(aws.clients.clone())
        .start(dir.path())
        .await;
    assert_eq!(ran.outcome["steps"][0]["status"], "failed");
    assert!(
        ran.failures().contains("not one account 123456789012 owns"),
        "{}",
        ran.failures()
    );
    assert!(
        !ran.calls().iter().any(|c| c.contains("SendCommand")),
        "{:?}",
        ran.calls()
    );

    let aws = MockAws::new()
        .ssm([no_commands(), send_command_rule()])
        .build();
    let ran = Run::yaml(dir.path(), TO_BUCKET)
        .clients(aws.clients.clone())
        .start(dir.path())
        .await;
    assert!(
        ran.failures().contains("needs `output_s3_bucket_owner`"),
        "{}",
        ran.failures()
    );
    assert!(
        !ran.calls().iter().any(|c| c.contains("SendCommand")),
        "{:?}",
        ran.calls()
    );
}
