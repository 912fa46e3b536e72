//! M13: volatile collection after isolation, through an isolation variant whose only egress is
//! HTTPS to the VPC's SSM endpoints (and S3's, when its endpoint policy is restricted), against
//! moto through the CLI. H4: the evidence bucket's owner is checked before SSM is told to
//! write there.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::json::step;
use crate::support::{moto, sandbox};

const ACCOUNT: &str = "123456789012";

use crate::support::cli_on_moto as run;

/// The collection fixture (isolate, open the path, collect) on `instance` into `bucket`.
fn collect(dir: &Path, instance: &str, bucket: &str) -> (i32, Value, String) {
    run(
        dir,
        &[
            "run",
            "tests/fixtures/ec2/collect-after-isolation.yaml",
            "-p",
            &format!("instance_id={instance}"),
            "-p",
            &format!("evidence_bucket={bucket}"),
        ],
    )
}

fn restricted_policy(bucket: &str) -> String {
    json!({"Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": ["s3:PutObject", "s3:GetObject"],
        "Resource": [format!("arn:aws:s3:::{bucket}/*")],
    }]})
    .to_string()
}

/// The commands moto holds for the instance: (output bucket, count).
async fn commands(instance: &str) -> Vec<Option<String>> {
    let ssm = aws_sdk_ssm::Client::new(&moto::direct_config().await);
    ssm.list_commands()
        .instance_id(instance)
        .send()
        .await
        .unwrap()
        .commands()
        .iter()
        .map(|c| {
            c.output_s3_bucket_name()
                .filter(|b| !b.is_empty())
                .map(str::to_owned)
        })
        .collect()
}

async fn group(id: &str) -> Option<aws_sdk_ec2::types::SecurityGroup> {
    sandbox::ec2()
        .await
        .describe_security_groups()
        .group_ids(id)
        .send()
        .await
        .ok()
        .and_then(|g| g.security_groups().first().cloned())
}

#[tokio::test]
async fn collection_after_isolation_reaches_only_the_endpoints_then_closes() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = ids["instance_id"].as_str().unwrap();
    let evidence = "firebreak-evidence-collection-test";
    sandbox::bucket(evidence).await;
    let cidrs = sandbox::vpc_endpoints(&ids, Some(Some(&restricted_policy(evidence)))).await;
    let prefix_list = sandbox::s3_prefix_list().await;
    let dir = tempfile::tempdir().unwrap();
    let (code, outcome, stderr) = collect(dir.path(), instance, evidence);
    assert_eq!(code, 0, "{stderr}");
    let isolation = step(&outcome, "isolate")["outputs"]["isolation_group"]
        .as_str()
        .unwrap()
        .to_owned();
    let opened = &step(&outcome, "collection_open")["outputs"];
    assert_eq!(opened["opened"], true, "{opened}");
    assert_eq!(
        opened["s3"], true,
        "a restricted S3 endpoint is used: {opened}"
    );
    let collection = opened["collection_group"].as_str().unwrap().to_owned();

    // Every interface: the isolation group and the collection group, nothing else.
    let ec2 = sandbox::ec2().await;
    let mut enis: Vec<String> =
        serde_json::from_value(ids["network_interface_ids"].clone()).unwrap();
    enis.sort();
    assert_eq!(
        sandbox::interfaces_in(&ec2, instance, &isolation).await,
        enis
    );
    assert_eq!(
        sandbox::interfaces_in(&ec2, instance, &collection).await,
        enis
    );
    for original in ids["security_groups"].as_object().unwrap().values() {
        let original = original.as_str().unwrap();
        assert!(
            sandbox::interfaces_in(&ec2, instance, original)
                .await
                .is_empty(),
            "no interface back in {original}"
        );
    }
    // The collection group: nothing in; out, HTTPS to the endpoints and S3's prefix list only.
    let made = group(&collection)
        .await
        .expect("the collection group exists");
    assert!(made.ip_permissions().is_empty(), "no inbound rule");
    let mut out_cidrs = Vec::new();
    let mut out_lists = Vec::new();
    for rule in made.ip_permissions_egress() {
        assert_eq!(rule.ip_protocol(), Some("tcp"));
        assert_eq!((rule.from_port(), rule.to_port()), (Some(443), Some(443)));
        assert!(rule.ipv6_ranges().is_empty() && rule.user_id_group_pairs().is_empty());
        out_cidrs.extend(
            rule.ip_ranges()
                .iter()
                .filter_map(|r| r.cidr_ip().map(str::to_owned)),
        );
        out_lists.extend(
            rule.prefix_list_ids()
                .iter()
                .filter_map(|p| p.prefix_list_id().map(str::to_owned)),
        );
    }
    out_cidrs.sort();
    assert_eq!(out_cidrs, cidrs, "exactly the endpoints' addresses");
    assert_eq!(out_lists, [prefix_list]);

    // The command went out with the bucket, checked as the account's own first.
    assert_eq!(step(&outcome, "volatile")["status"], "succeeded");
    assert_eq!(commands(instance).await, [Some(evidence.to_owned())]);
    let journal = outcome["journal"].as_str().unwrap();
    let calls: Vec<String> = crate::support::journal::values(Path::new(journal))
        .iter()
        .filter(|r| r["type"] == "api_call")
        .filter_map(|r| r["operation"].as_str().map(str::to_owned))
        .collect();
    let head = calls
        .iter()
        .position(|c| c == "HeadBucket")
        .expect("HeadBucket");
    let send = calls.iter().position(|c| c == "SendCommand").unwrap();
    assert!(
        head < send,
        "the bucket is checked before the command is sent"
    );

    // Closing: isolation alone again, and the collection group gone.
    let (code, closed, stderr) = run(
        dir.path(),
        &[
            "run",
            "tests/fixtures/ec2/collection-close.yaml",
            "-p",
            &format!("instance_id={instance}"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(step(&closed, "collection_close")["outputs"]["closed"], true);
    assert_eq!(
        sandbox::interfaces_in(&ec2, instance, &isolation).await,
        enis
    );
    assert!(
        sandbox::interfaces_in(&ec2, instance, &collection)
            .await
            .is_empty()
    );
    assert!(
        group(&collection).await.is_none(),
        "the collection group is deleted"
    );
}

#[tokio::test]
async fn an_unrestricted_s3_endpoint_is_left_out_and_a_later_isolation_never_restores_the_path() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = ids["instance_id"].as_str().unwrap();
    let evidence = "firebreak-evidence-unrestricted-test";
    sandbox::bucket(evidence).await;
    // No policy: AWS's default, every bucket.
    sandbox::vpc_endpoints(&ids, Some(None)).await;
    let dir = tempfile::tempdir().unwrap();
    let (code, outcome, stderr) = collect(dir.path(), instance, evidence);
    assert_eq!(code, 0, "{stderr}");
    let opened = &step(&outcome, "collection_open")["outputs"];
    assert_eq!(opened["opened"], true);
    assert_eq!(opened["s3"], false, "{opened}");
    assert!(
        opened["s3_note"]
            .as_str()
            .unwrap()
            .contains("allows every bucket"),
        "{opened}"
    );
    assert_eq!(opened["egress"]["tcp_443_to_prefix_lists"], json!([]));
    // The output stays in SSM: no bucket given to the agent.
    assert_eq!(commands(instance).await, [None]);

    // Isolating again (a re-run, a resume) takes the path away and does not take the
    // collection group for an original group to restore.
    let collection = opened["collection_group"].as_str().unwrap().to_owned();
    let (code, again, stderr) = run(
        dir.path(),
        &[
            "run",
            "tests/fixtures/ec2/isolate.yaml",
            "-p",
            &format!("instance_id={instance}"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let ec2 = sandbox::ec2().await;
    assert!(
        sandbox::interfaces_in(&ec2, instance, &collection)
            .await
            .is_empty()
    );
    for eni in step(&again, "isolate")["outputs"]["interfaces"]
        .as_array()
        .unwrap()
    {
        let original = eni["original_groups"].as_array().unwrap();
        assert!(!original.is_empty(), "{eni}");
        assert!(
            !original.iter().any(|g| g == collection.as_str()),
            "the collection group is not an original group: {eni}"
        );
    }
}

#[tokio::test]
async fn without_endpoints_collection_is_skipped_with_the_reason_and_nothing_opens() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = ids["instance_id"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (code, outcome, stderr) = collect(dir.path(), instance, "firebreak-evidence-nowhere");
    assert_eq!(code, 0, "{stderr}");
    let opened = &step(&outcome, "collection_open")["outputs"];
    assert_eq!(opened["opened"], false);
    let reason = opened["reason"].as_str().unwrap();
    assert!(
        reason.contains("ssm, ssmmessages, ec2messages"),
        "the reason names the missing endpoints: {reason}"
    );
    assert_eq!(step(&outcome, "volatile")["status"], "skipped");
    assert!(commands(instance).await.is_empty());
    let ec2 = sandbox::ec2().await;
    assert!(
        sandbox::firebreak_groups(&ec2, "collection")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_bucket_the_account_does_not_own_gets_no_command() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = ids["instance_id"].as_str().unwrap();
    // Restricted to the bucket, which does not exist in this account (someone else's name).
    let stranger = "firebreak-evidence";
    sandbox::vpc_endpoints(&ids, Some(Some(&restricted_policy(stranger)))).await;
    let dir = tempfile::tempdir().unwrap();
    let (code, outcome, _) = collect(dir.path(), instance, stranger);
    assert_eq!(code, 1);
    assert_eq!(step(&outcome, "volatile")["status"], "failed");
    let records = crate::support::journal::values(Path::new(outcome["journal"].as_str().unwrap()));
    let error = records
        .iter()
        .find(|r| r["type"] == "step_failed" && r["step"] == "volatile")
        .map(|r| r["message"].to_string())
        .unwrap_or_default();
    assert!(
        error.contains(stranger) && error.contains(ACCOUNT) && error.contains("nothing was sent"),
        "{error}"
    );
    assert!(commands(instance).await.is_empty(), "no command was sent");
}
