//! `ec2.disassociate_addresses` against moto: every Elastic IP of the instance, on any of its
//! interfaces, is disassociated with its prior association recorded; a rerun changes nothing.

use crate::support::run::{drill_on, id, live_on};
use crate::support::{moto, sandbox};
use aws_sdk_ec2::types::Filter;
use serde_json::{Value, json};

/// allocation id → (association id, interface, private ip)
async fn associations(
    ec2: &aws_sdk_ec2::Client,
    allocations: &[&str],
) -> Vec<(String, Option<String>, Option<String>, Option<String>)> {
    let out = ec2
        .describe_addresses()
        .filters(
            Filter::builder()
                .name("allocation-id")
                .set_values(Some(allocations.iter().map(|a| a.to_string()).collect()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut rows: Vec<_> = out
        .addresses()
        .iter()
        .map(|a| {
            (
                a.allocation_id().unwrap().to_owned(),
                a.association_id().map(str::to_owned),
                a.network_interface_id().map(str::to_owned),
                a.private_ip_address().map(str::to_owned),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// Adds a second Elastic IP on the instance's secondary interface; returns its allocation id.
async fn second_address(ec2: &aws_sdk_ec2::Client, ids: &Value) -> String {
    let eni = ids["network_interface_ids"][1].as_str().unwrap();
    let allocation = ec2
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .send()
        .await
        .unwrap();
    let allocation_id = allocation.allocation_id().unwrap().to_owned();
    ec2.associate_address()
        .allocation_id(&allocation_id)
        .network_interface_id(eni)
        .send()
        .await
        .unwrap();
    allocation_id
}

#[tokio::test]
async fn disassociates_every_address_and_a_rerun_changes_nothing() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let ec2 = sandbox::ec2().await;
    let primary = id(&ids, "eip_allocation_id");
    let secondary = second_address(&ec2, &ids).await;
    let before = associations(&ec2, &[&primary, &secondary]).await;
    assert!(
        before
            .iter()
            .all(|(_, association, ..)| association.is_some())
    );

    let dir = tempfile::tempdir().unwrap();
    let first = live_on(dir.path(), "addresses.yaml", &instance).await;
    first.assert_succeeded();
    let out = first.outputs("addresses");
    assert_eq!(out["changed"], true, "{out}");
    // Each address with where it was: the prior state a release would put back.
    let mut reported: Vec<_> = out["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["allocation_id"].as_str().unwrap().to_owned(),
                a["association_id"].as_str().map(str::to_owned),
                a["network_interface_id"].as_str().map(str::to_owned),
                a["private_ip"].as_str().map(str::to_owned),
            )
        })
        .collect();
    reported.sort();
    assert_eq!(reported, before);
    let primary_ip = id(&ids, "public_ip");
    assert!(
        out["public_ips"]
            .as_array()
            .unwrap()
            .contains(&json!(primary_ip)),
        "{out}"
    );
    let disassociations: Vec<_> = first
        .mutating_calls()
        .iter()
        .map(|r| r["operation"].clone())
        .collect();
    assert_eq!(
        disassociations,
        [json!("DisassociateAddress"), json!("DisassociateAddress")]
    );

    let after = associations(&ec2, &[&primary, &secondary]).await;
    assert_eq!(after.len(), 2, "the addresses stay allocated");
    assert!(
        after
            .iter()
            .all(|(_, association, ..)| association.is_none()),
        "{after:?}"
    );

    let second = live_on(dir.path(), "addresses.yaml", &instance).await;
    second.assert_succeeded().assert_no_mutating_calls();
    let out = second.outputs("addresses");
    assert_eq!(out["changed"], false, "{out}");
    assert_eq!(out["addresses"], json!([]));
}

#[tokio::test]
async fn a_drill_sends_dry_runs_and_changes_nothing() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let ec2 = sandbox::ec2().await;
    let primary = id(&ids, "eip_allocation_id");
    let before = associations(&ec2, &[&primary]).await;

    let dir = tempfile::tempdir().unwrap();
    let drill = drill_on(dir.path(), "addresses.yaml", &instance).await;
    drill.assert_succeeded();
    let out = drill.outputs("addresses");
    assert_eq!(out["dry_run"], true, "{out}");
    assert_eq!(out["would_change"], true);
    assert_eq!(out["addresses"][0]["allocation_id"], primary.as_str());
    let mutating = drill.mutating_calls();
    assert_eq!(mutating.len(), 1, "{mutating:#?}");
    assert_eq!(mutating[0]["operation"], "DisassociateAddress");
    assert_eq!(mutating[0]["outcome"], "would-succeed");
    assert_eq!(associations(&ec2, &[&primary]).await, before);
}
