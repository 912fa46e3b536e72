//! The fault battery: containment completes exactly once under throttling and transient
//! errors injected at the wire by the counting proxy, and never claims what it did not do.

use serde_json::json;

use crate::fleet::{assert_one_pair_per_vpc_and_all_isolated, assert_one_snapshot_per_volume, ids};
use crate::support::journal::{self, Journal};
use crate::support::{cli_on_moto, crash, moto, proxy, sandbox};

/// The storm Cloud Custodian 0.9.53 gives up in (12 of 100 isolated, none snapshotted, all
/// tagged contained): the fleet runbook on 100 instances in 2 VPCs with half of every EC2 call
/// throttled and one in twenty answered 500. It completes, exit 0: every interface isolated in
/// its VPC's one isolation group, one snapshot of every volume, the journal verifies — and the
/// faults really were injected.
#[tokio::test]
async fn the_fleet_runbook_outlasts_half_throttling_and_five_percent_500s() {
    let _moto = moto::exclusive().await;
    let fleet = sandbox::seed_fleet(100, 2);
    let instances = ids(&fleet);
    proxy::faults(
        2026,
        json!([
            {"service": "ec2", "fault": "throttle", "rate": 0.5},
            {"service": "ec2", "fault": "error500", "rate": 0.05},
        ]),
    );
    let dir = tempfile::tempdir().unwrap();
    let (code, outcome, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            "runbooks/ec2-fleet-containment.yaml",
            "-p",
            &format!("instance_ids={}", instances.join(",")),
            "-p",
            "case_id=storm-100",
            "--max-targets",
            "100",
            "--yes",
        ],
    );
    let calls = proxy::calls();
    proxy::faults(0, json!([]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(outcome["status"], "succeeded");
    let throttled = calls
        .iter()
        .filter(|c| c.fault.as_deref() == Some("throttle"))
        .count();
    let failed = calls
        .iter()
        .filter(|c| c.fault.as_deref() == Some("error500"))
        .count();
    assert!(
        throttled * 3 > calls.len() && failed > 0,
        "faults injected: {throttled} throttled and {failed} 500s of {} calls",
        calls.len()
    );
    assert_one_pair_per_vpc_and_all_isolated(&fleet).await;
    assert_eq!(
        assert_one_snapshot_per_volume(&fleet, Some("storm-100")).await,
        200
    );
    let path = journal::only_journal(dir.path());
    assert_eq!(crash::verify(&path).code, Some(0));
    // Every throttled call was sent again where it failed, and journaled each time.
    let resent = Journal::read(&path)
        .api_calls()
        .iter()
        .filter(|c| c.resend.is_some())
        .count();
    assert!(resent > 0, "no call was sent again");
    eprintln!(
        "storm: {} calls at the wire, {throttled} throttled, {failed} answered 500, {resent} re-sends journaled",
        calls.len()
    );
}
