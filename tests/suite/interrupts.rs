//! Hangs and Ctrl-C at the wire: a call that is never answered times out and is sent again,
//! nothing waits forever; a second Ctrl-C stops at once while only reads are in flight, and
//! never leaves an interface between its two isolation moves. The journal resumes after both.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::fleet::{assert_one_pair_per_vpc_and_all_isolated, ids};
use crate::support::journal::{self, Journal};
use crate::support::{Output, crash, moto, proxy, sandbox};

/// `firebreak run tests/fixtures/ec2/isolate-fleet.yaml` on `instances`, started in the
/// background with its journal in `dir`.
fn start_isolating(dir: &Path, instances: &[String]) -> Child {
    crash::command(dir)
        .args(["run", "tests/fixtures/ec2/isolate-fleet.yaml", "--yes"])
        .args(["-p", &format!("instance_ids={}", instances.join(","))])
        .args(["--max-targets", &instances.len().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("firebreak starts")
}

/// Waits until a call of `operation` has reached the proxy and is not answered yet.
fn wait_in_flight(operation: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !proxy::calls()
        .iter()
        .any(|c| c.operation == operation && c.status.is_none())
    {
        assert!(
            Instant::now() < deadline,
            "no {operation} in flight within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn interrupt(child: &Child) {
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
}

fn finish(child: Child) -> Output {
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A DescribeInstances the proxy never answers: the SDK's 30 s attempt timeout fires, the read
/// is sent again (by the SDK, inside the one journaled call, which took the timeout's length)
/// and the run completes.
#[tokio::test]
async fn a_call_never_answered_times_out_and_is_sent_again() {
    let _moto = moto::exclusive().await;
    let fleet = sandbox::seed_fleet(3, 1);
    proxy::faults(
        1,
        json!([{"service": "ec2", "operation": "DescribeInstances", "fault": "hang", "hang_s": 120, "max": 1}]),
    );
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = finish(start_isolating(dir.path(), &ids(&fleet)));
    let wire = proxy::calls();
    let hung = wire
        .iter()
        .filter(|c| c.fault.as_deref() == Some("hang"))
        .count();
    let sent = wire
        .iter()
        .filter(|c| c.operation == "DescribeInstances")
        .count();
    proxy::faults(0, json!([]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(hung, 1, "the hang was injected");
    assert!(
        started.elapsed() < Duration::from_secs(110),
        "the run waited for the hang to end instead of timing out"
    );
    let path = journal::only_journal(dir.path());
    let journal = Journal::read(&path);
    let calls = journal.api_calls();
    let describes: Vec<_> = calls
        .iter()
        .filter(|c| c.operation == "DescribeInstances")
        .collect();
    assert!(
        describes
            .iter()
            .any(|c| c.outcome == "ok" && c.duration_ms >= 30_000),
        "one journaled call outlasted the attempt timeout and then succeeded: {describes:?}"
    );
    assert!(
        sent > describes.len(),
        "sent again at the wire: {sent} sends for {} calls",
        describes.len()
    );
    assert_one_pair_per_vpc_and_all_isolated(&fleet).await;
}

/// Ctrl-C twice while a read hangs: firebreak stops at once (not after the 30 s attempt
/// timeout), exit 130, and a resume completes the run.
#[tokio::test]
async fn a_second_ctrl_c_abandons_a_hung_read_at_once() {
    let _moto = moto::exclusive().await;
    let fleet = sandbox::seed_fleet(3, 1);
    proxy::faults(
        1,
        json!([{"service": "ec2", "operation": "DescribeInstances", "fault": "hang", "hang_s": 120}]),
    );
    let dir = tempfile::tempdir().unwrap();
    let child = start_isolating(dir.path(), &ids(&fleet));
    wait_in_flight("DescribeInstances");
    interrupt(&child);
    std::thread::sleep(Duration::from_millis(300));
    let second = Instant::now();
    interrupt(&child);
    let out = finish(child);
    let waited = second.elapsed();
    proxy::faults(0, json!([]));
    assert_eq!(out.code, Some(130), "{}", out.stderr);
    assert!(
        waited < Duration::from_secs(20),
        "stopped {waited:?} after the second Ctrl-C: it waited for the hung read"
    );
    assert!(out.stderr.contains("stopping now"), "{}", out.stderr);
    let path = journal::only_journal(dir.path());
    let resumed = crash::resume(dir.path(), &path, &[]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    assert_eq!(crash::verify(&path).code, Some(0));
    assert_one_pair_per_vpc_and_all_isolated(&fleet).await;
}

/// Ctrl-C twice while interfaces are between their two isolation moves (each move held 2 s at
/// the wire): firebreak finishes those moves, then exits 130 — no interface is left in the
/// all-traffic group — and a resume isolates the rest.
#[tokio::test]
async fn a_second_ctrl_c_never_stops_between_the_two_isolation_moves() {
    let _moto = moto::exclusive().await;
    let fleet = sandbox::seed_fleet(12, 1);
    proxy::faults(
        1,
        json!([{"service": "ec2", "operation": "ModifyNetworkInterfaceAttribute", "fault": "delay", "delay_ms": 2000}]),
    );
    let dir = tempfile::tempdir().unwrap();
    let child = start_isolating(dir.path(), &ids(&fleet));
    wait_in_flight("ModifyNetworkInterfaceAttribute");
    interrupt(&child);
    std::thread::sleep(Duration::from_millis(200));
    interrupt(&child);
    let out = finish(child);
    proxy::faults(0, json!([]));
    assert_eq!(out.code, Some(130), "{}", out.stderr);
    assert!(
        out.stderr.contains("isolation move(s) in flight"),
        "{}",
        out.stderr
    );
    // Nothing left untracked: each interface is where it was or isolated.
    let ec2 = sandbox::ec2().await;
    let untrack = sandbox::firebreak_groups(&ec2, "untrack").await;
    for group in &untrack {
        let left = ec2
            .describe_network_interfaces()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-id")
                    .values(group)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert!(
            left.network_interfaces().is_empty(),
            "left between the two moves: {:?}",
            left.network_interfaces()
                .iter()
                .map(|e| e.network_interface_id())
                .collect::<Vec<_>>()
        );
    }
    let path = journal::only_journal(dir.path());
    let resumed = crash::resume(dir.path(), &path, &[]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    assert_eq!(crash::verify(&path).code, Some(0));
    assert_one_pair_per_vpc_and_all_isolated(&fleet).await;
}

/// Ctrl-C once while every `DescribeSecurityGroups` is throttled (the engine would send it again
/// until the step's 10-minute deadline): firebreak stops at the call in flight — no re-send
/// after the interrupt — journals the interruption without a step outcome, exits 130, and the
/// resume completes the run.
#[tokio::test]
async fn a_first_ctrl_c_stops_re_sending_a_throttled_call() {
    let _moto = moto::exclusive().await;
    let fleet = sandbox::seed_fleet(3, 1);
    proxy::faults(
        1,
        json!([{"service": "ec2", "operation": "DescribeSecurityGroups", "fault": "throttle"}]),
    );
    let dir = tempfile::tempdir().unwrap();
    let child = start_isolating(dir.path(), &ids(&fleet));
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy::calls()
        .iter()
        .filter(|c| c.operation == "DescribeSecurityGroups" && c.fault.is_some())
        .count()
        < 4
    {
        assert!(Instant::now() < deadline, "the storm never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    interrupt(&child);
    let interrupted = Instant::now();
    let out = finish(child);
    let waited = interrupted.elapsed();
    proxy::faults(0, json!([]));
    assert_eq!(out.code, Some(130), "{}", out.stderr);
    assert!(
        waited < Duration::from_secs(30),
        "went on re-sending for {waited:?} after Ctrl-C"
    );
    let path = journal::only_journal(dir.path());
    let records = Journal::read(&path).values();
    assert_eq!(
        records.last().unwrap()["type"],
        "run_interrupted",
        "{:?}",
        records.last()
    );
    assert!(
        !records
            .iter()
            .any(|r| r["type"] == "step_failed" || r["type"] == "item_failed"),
        "an interrupted step has no outcome"
    );
    let resumed = crash::resume(dir.path(), &path, &[]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    assert_eq!(crash::verify(&path).code, Some(0));
    assert_one_pair_per_vpc_and_all_isolated(&fleet).await;
}
