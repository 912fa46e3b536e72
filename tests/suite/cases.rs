//! One case per resource, end to end through `dispatch` against moto: the first GuardDuty
//! finding about an instance opens a case and contains it up to the stop approval; two more
//! within the window join the case (no second containment, one snapshot set, two
//! `finding_joined` records in the case index); after the case finished, a finding rechecks it
//! — the interface an attacker moved back is isolated again and reported as drift, the
//! snapshots are not taken again, and the case's denial of the stop stands.

use std::path::Path;

use serde_json::Value;

use super::dispatch::{Ids, dispatch, event};
use crate::support::{cli_on_moto, moto, proxy, sandbox};

fn finding(ids: &Ids, id: &str) -> String {
    event("guardduty-ec2", ids).replace("16afba5c5c43e07c9e3e5e2e544e95df", id)
}

/// Snapshots firebreak made of `instance` (their description names it).
async fn snapshots_of(ec2: &aws_sdk_ec2::Client, instance: &str) -> usize {
    ec2.describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .unwrap()
        .snapshots()
        .iter()
        .filter(|s| s.description().is_some_and(|d| d.contains(instance)))
        .count()
}

fn cases(dir: &Path) -> Vec<Value> {
    let (code, listed, stderr) = cli_on_moto(dir, &["cases"]);
    assert_eq!(code, 0, "{stderr}");
    listed.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn findings_of_one_instance_join_its_case_and_a_later_one_rechecks_it() {
    let _moto = moto::exclusive().await;
    let seeded = sandbox::seed("web-1");
    let ids = Ids {
        instance: seeded["instance_id"].as_str().unwrap().to_owned(),
        role: "web-1-app".into(),
        key: String::new(),
        user: String::new(),
    };
    let ec2 = sandbox::ec2().await;
    let dir = tempfile::tempdir().unwrap();

    // The first finding opens the case and waits at the stop.
    let (code, reports, stderr) = dispatch(
        dir.path(),
        &finding(&ids, "c0000000000000000000000000000001"),
        &[],
    );
    assert_eq!(code, 4, "{stderr}\n{reports:#}");
    let case_run = reports[0]["matched"][0]["run"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let snapshots = snapshots_of(&ec2, &ids.instance).await;
    assert!(snapshots >= 2, "one snapshot per volume: {snapshots}");

    // Two more findings about the instance join it: nothing is called that changes anything.
    proxy::reset();
    for id in [
        "c0000000000000000000000000000002",
        "c0000000000000000000000000000003",
    ] {
        let (code, reports, stderr) = dispatch(dir.path(), &finding(&ids, id), &[]);
        assert_eq!(code, 0, "{stderr}\n{reports:#}");
        let matched = &reports[0]["matched"][0];
        assert_eq!(matched["outcome"], "joined", "{matched:#}");
        assert_eq!(matched["run_id"], case_run.as_str());
        assert_eq!(matched["status"], "awaiting_approval");
    }
    assert!(proxy::changes().is_empty(), "{:?}", proxy::changes());
    assert_eq!(
        snapshots_of(&ec2, &ids.instance).await,
        snapshots,
        "one snapshot set"
    );
    // A joined finding delivered again is a duplicate of the case's run.
    let (code, reports, _) = dispatch(
        dir.path(),
        &finding(&ids, "c0000000000000000000000000000002"),
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(reports[0]["matched"][0]["outcome"], "duplicate");
    assert_eq!(reports[0]["matched"][0]["run_id"], case_run.as_str());

    let listed = cases(dir.path());
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let case = &listed[0];
    assert_eq!(case["intact"], true);
    assert_eq!(case["runs"][0]["run_id"], case_run.as_str());
    assert_eq!(case["runs"][0]["status"], "awaiting_approval");
    let actions: Vec<&str> = case["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["opened", "joined", "joined"]);
    assert_eq!(case["waiting"][0]["step"], "approve_stop");
    let index = case["index"].as_str().unwrap();
    let joined = crate::support::journal::values(Path::new(index))
        .into_iter()
        .filter(|r| r["type"] == "finding_joined")
        .count();
    assert_eq!(joined, 2, "two finding_joined records in the case index");

    // A person keeps the instance running; the case's run finishes.
    let (code, _, stderr) = cli_on_moto(
        dir.path(),
        &["deny", &case_run, "--reason", "keep it up for the memory"],
    );
    assert_eq!(code, 0, "{stderr}");

    // The attacker's credentials move the web interface back to its old group.
    let web_eni = seeded["network_interface_ids"][0].as_str().unwrap();
    let web_group = seeded["security_groups"]["web"].as_str().unwrap();
    ec2.modify_network_interface_attribute()
        .network_interface_id(web_eni)
        .groups(web_group)
        .send()
        .await
        .unwrap();

    // The next finding rechecks the finished case: the drift is contained again and reported.
    proxy::reset();
    let (code, reports, stderr) = dispatch(
        dir.path(),
        &finding(&ids, "c0000000000000000000000000000004"),
        &[],
    );
    assert_eq!(code, 0, "{stderr}\n{reports:#}");
    let matched = &reports[0]["matched"][0];
    assert_eq!(matched["outcome"], "rechecked", "{matched:#}");
    assert_eq!(matched["case_run"], case_run.as_str());
    assert_eq!(matched["run"]["status"], "succeeded", "{matched:#}");
    let drift: Vec<&str> = matched["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(
        drift
            .iter()
            .any(|d| d.starts_with("ec2:ModifyNetworkInterfaceAttribute") && d.contains(web_eni)),
        "{drift:?}"
    );
    let isolation = sandbox::firebreak_groups(&ec2, "isolation").await;
    assert_eq!(
        sandbox::interfaces_in(&ec2, &ids.instance, &isolation[0])
            .await
            .len(),
        seeded["network_interface_ids"].as_array().unwrap().len(),
        "every interface isolated again"
    );
    assert_eq!(
        snapshots_of(&ec2, &ids.instance).await,
        snapshots,
        "no second snapshot set"
    );
    assert!(
        !proxy::changes()
            .iter()
            .any(|c| c.operation == "StopInstances"),
        "the case's denial stands"
    );
    let recheck_journal = matched["run"]["journal"].as_str().unwrap();
    let records = crate::support::journal::values(Path::new(recheck_journal));
    let approval = records.iter().find(|r| r["type"] == "approval").unwrap();
    assert_eq!(approval["approved"], false);
    assert!(
        approval["by"]
            .as_str()
            .unwrap()
            .contains("as the case decided"),
        "{approval}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "step_skipped" && r["step"] == "snapshot"),
        "evidence steps are skipped in a recheck"
    );

    // Nothing drifted since: the recheck says so.
    let (code, reports, stderr) = dispatch(
        dir.path(),
        &finding(&ids, "c0000000000000000000000000000005"),
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(reports[0]["matched"][0]["outcome"], "rechecked");
    assert_eq!(reports[0]["matched"][0]["drift"], serde_json::json!([]));

    let listed = cases(dir.path());
    let roles: Vec<&str> = listed[0]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["case", "recheck", "recheck"]);
    assert_eq!(listed[0]["intact"], true);
}
