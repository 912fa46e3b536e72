//! `ec2.snapshot_volumes`: against moto through the real SDK (tags, idempotency across a crash,
//! drills, volume selection), and with mocked EC2 for what moto cannot do (snapshots that take
//! time, snapshots that fail).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{crash, firebreak, moto, sandbox};
use aws_sdk_ec2::types::{Filter, Snapshot};
use serde_json::Value;

use crate::support::json::{str_of, strings};

const FIXTURE: &str = "tests/fixtures/ec2/snapshot.yaml";

fn run(dir: &Path, fixture: &str, params: &[String], extra: &[&str]) -> Output {
    let mut command = firebreak();
    command
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", dir)
        .args(["run", fixture, "--yes", "--output", "json"])
        .args(extra);
    for param in params {
        command.args(["-p", param]);
    }
    command.output().expect("firebreak runs")
}

fn outcome(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not the outcome JSON ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Snapshots in moto carrying `key=value` (never an unfiltered list: moto ships ~1,300).
async fn snapshots_tagged(key: &str, value: &str) -> Vec<Snapshot> {
    sandbox::ec2()
        .await
        .describe_snapshots()
        .filters(
            Filter::builder()
                .name(format!("tag:{key}"))
                .values(value)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .snapshots()
        .to_vec()
}

fn tag_of<'a>(snapshot: &'a Snapshot, key: &str) -> Option<&'a str> {
    snapshot
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn api_calls<'a>(records: &'a [Value], operation: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["type"] == "api_call" && r["operation"] == operation)
        .collect()
}

#[tokio::test]
async fn one_snapshot_per_volume_with_every_tag() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = str_of(&ids["instance_id"]);
    let volumes: BTreeSet<String> = strings(&ids["volume_ids"]).into_iter().collect();
    assert_eq!(volumes.len(), 2, "the sandbox has two volumes: {ids}");
    let dir = tempfile::tempdir().unwrap();

    let out = run(
        dir.path(),
        FIXTURE,
        &[format!("instance_id={instance}"), "case_id=case-1".into()],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outcome = outcome(&out);
    let run_id = str_of(&outcome["run_id"]);
    let outputs = &outcome["steps"][0]["outputs"];
    assert_eq!(outputs["created"], 2, "{outputs}");
    assert_eq!(outputs["reused"], 0, "{outputs}");
    assert!(outputs.get("dry_run").is_none(), "{outputs}");
    let entries = outputs["snapshots"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let snapshot_ids = strings(&outputs["snapshot_ids"]);
    for (entry, id) in entries.iter().zip(&snapshot_ids) {
        assert_eq!(&entry["snapshot_id"], id);
        assert!(id.starts_with("snap-"), "{id}");
        assert_eq!(entry["state"], "completed", "{entry}");
        assert_eq!(entry["reused"], false);
        assert!(entry.get("progress").is_some(), "{entry}");
    }
    let in_outputs: BTreeSet<String> = entries
        .iter()
        .map(|e| str_of(&e["volume_id"]).to_owned())
        .collect();
    assert_eq!(in_outputs, volumes);

    // In moto: exactly one snapshot per volume, each with every provenance tag.
    let key = format!("{run_id}.snapshot");
    let made = snapshots_tagged("firebreak:idempotency-key", &key).await;
    assert_eq!(made.len(), 2, "{made:?}");
    let mut sources = BTreeSet::new();
    for snapshot in &made {
        let volume = snapshot.volume_id().unwrap();
        assert!(
            snapshot_ids
                .iter()
                .any(|id| Some(id.as_str()) == snapshot.snapshot_id())
        );
        assert_eq!(tag_of(snapshot, "firebreak:case"), Some("case-1"));
        assert_eq!(tag_of(snapshot, "firebreak:run"), Some(run_id));
        assert_eq!(tag_of(snapshot, "firebreak:step"), Some("snapshot"));
        assert_eq!(
            tag_of(snapshot, "firebreak:idempotency-key"),
            Some(key.as_str())
        );
        assert_eq!(
            tag_of(snapshot, "firebreak:source-instance"),
            Some(instance)
        );
        assert!(
            snapshot
                .description()
                .unwrap_or_default()
                .contains("case-1"),
            "{snapshot:?}"
        );
        sources.insert(volume.to_owned());
    }
    assert_eq!(sources, volumes);
    assert_eq!(snapshots_tagged("firebreak:case", "case-1").await.len(), 2);

    // The journal: the lookup by tag came first, then one crash-consistent CreateSnapshots for
    // both volumes (the same instant), no CreateSnapshot.
    let journal = PathBuf::from(str_of(&outcome["journal"]));
    let records = crate::support::journal::values(&journal);
    let creates = api_calls(&records, "CreateSnapshots");
    assert_eq!(creates.len(), 1);
    assert!(creates.iter().all(|r| r["outcome"] == "ok"));
    assert!(api_calls(&records, "CreateSnapshot").is_empty());
    let first_lookup = records
        .iter()
        .position(|r| r["operation"] == "DescribeSnapshots")
        .expect("a DescribeSnapshots lookup");
    let first_create = records
        .iter()
        .position(|r| r["operation"] == "CreateSnapshots")
        .unwrap();
    assert!(first_lookup < first_create);
    let verified = firebreak()
        .args(["journal", "verify"])
        .arg(&journal)
        .output()
        .unwrap();
    assert_eq!(verified.status.code(), Some(0));
}

/// The process dies after the snapshots were made but before the step's outcome is journaled;
/// `resume` runs the step again with the same idempotency key and must find them.
#[tokio::test]
async fn a_resumed_step_finds_its_snapshots_instead_of_making_more() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = str_of(&ids["instance_id"]);
    let dir = tempfile::tempdir().unwrap();

    let param = format!("instance_id={instance}");
    let journal = crash::crash_at(
        "before-step-finished:snapshot",
        dir.path(),
        &[
            "run",
            FIXTURE,
            "--yes",
            "-p",
            &param,
            "-p",
            "case_id=case-1",
        ],
    );
    let run_id = journal.file_stem().unwrap().to_str().unwrap().to_owned();
    let key = format!("{run_id}.snapshot");
    let before = snapshots_tagged("firebreak:idempotency-key", &key).await;
    assert_eq!(before.len(), 2, "the crashed attempt made them: {before:?}");
    let mut before_ids: Vec<String> = before
        .iter()
        .map(|s| s.snapshot_id().unwrap().to_owned())
        .collect();
    before_ids.sort();

    let resumed = crash::resume(dir.path(), &journal, &["--output", "json"]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    let outcome: Value = serde_json::from_str(&resumed.stdout).unwrap();
    let outputs = &outcome["steps"][0]["outputs"];
    assert_eq!(outputs["created"], 0, "{outputs}");
    assert_eq!(outputs["reused"], 2, "{outputs}");
    for entry in outputs["snapshots"].as_array().unwrap() {
        assert_eq!(entry["reused"], true, "{entry}");
    }
    let mut resumed_ids = strings(&outputs["snapshot_ids"]);
    resumed_ids.sort();
    assert_eq!(resumed_ids, before_ids);

    // Still exactly one snapshot per volume, and the set was only ever made once.
    let after = snapshots_tagged("firebreak:idempotency-key", &key).await;
    assert_eq!(after.len(), 2, "{after:?}");
    let volumes: BTreeSet<&str> = after.iter().map(|s| s.volume_id().unwrap()).collect();
    assert_eq!(volumes.len(), 2);
    let records = crate::support::journal::values(&journal);
    assert_eq!(api_calls(&records, "CreateSnapshots").len(), 1);
    assert!(api_calls(&records, "CreateSnapshot").is_empty());
    assert_eq!(
        records
            .iter()
            .filter(|r| r["type"] == "step_succeeded")
            .count(),
        1
    );
    let verified = firebreak()
        .args(["journal", "verify"])
        .arg(&journal)
        .output()
        .unwrap();
    assert_eq!(verified.status.code(), Some(0));
}

#[tokio::test]
async fn a_drill_creates_no_snapshot() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = str_of(&ids["instance_id"]);
    let dir = tempfile::tempdir().unwrap();

    let out = run(
        dir.path(),
        FIXTURE,
        &[format!("instance_id={instance}"), "case_id=drill-1".into()],
        &["--dry-run"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outcome = outcome(&out);
    assert_eq!(outcome["mode"], "dry-run");
    let outputs = &outcome["steps"][0]["outputs"];
    assert_eq!(outputs["dry_run"], true, "{outputs}");
    assert_eq!(outputs["created"], 0, "{outputs}");
    assert_eq!(outputs["would_create"], 2, "{outputs}");
    for id in strings(&outputs["snapshot_ids"]) {
        assert_eq!(id, "<would be created by step snapshot>");
    }

    assert!(
        snapshots_tagged("firebreak:case", "drill-1")
            .await
            .is_empty()
    );
    for volume in strings(&ids["volume_ids"]) {
        let of_volume = sandbox::ec2()
            .await
            .describe_snapshots()
            .filters(Filter::builder().name("volume-id").values(&volume).build())
            .send()
            .await
            .unwrap();
        assert!(of_volume.snapshots().is_empty(), "{volume}: {of_volume:?}");
    }

    let records = crate::support::journal::values(Path::new(str_of(&outcome["journal"])));
    let creates = api_calls(&records, "CreateSnapshots");
    assert_eq!(creates.len(), 1);
    for record in creates {
        assert_eq!(record["outcome"], "would-succeed", "{record}");
        assert_eq!(record["dry_run"], true, "{record}");
        assert_eq!(record["code"], "DryRunOperation", "{record}");
    }
}

#[tokio::test]
async fn only_the_listed_volumes_and_never_one_that_is_not_attached() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = str_of(&ids["instance_id"]);
    let volumes = strings(&ids["volume_ids"]);
    let stray = sandbox::ec2()
        .await
        .create_volume()
        .availability_zone(str_of(&ids["availability_zone"]))
        .size(1)
        .send()
        .await
        .unwrap()
        .volume_id()
        .unwrap()
        .to_owned();
    let fixture = "tests/fixtures/ec2/snapshot-volumes.yaml";
    let dir = tempfile::tempdir().unwrap();

    // The second volume only.
    let out = run(
        dir.path(),
        fixture,
        &[
            format!("instance_id={instance}"),
            format!("volume_ids={}", volumes[1]),
            "case_id=case-2".into(),
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outputs = &outcome(&out)["steps"][0]["outputs"];
    assert_eq!(outputs["created"], 1, "{outputs}");
    assert_eq!(outputs["snapshots"][0]["volume_id"], volumes[1].as_str());
    let made = snapshots_tagged("firebreak:case", "case-2").await;
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].volume_id(), Some(volumes[1].as_str()));

    // A volume that is not the instance's: refused before anything is made, and named.
    let out = run(
        dir.path(),
        fixture,
        &[
            format!("instance_id={instance}"),
            format!("volume_ids={},{stray}", volumes[0]),
            "case_id=case-3".into(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let outcome = outcome(&out);
    assert_eq!(outcome["steps"][0]["status"], "failed");
    let records = crate::support::journal::values(Path::new(str_of(&outcome["journal"])));
    let failed = records
        .iter()
        .find(|r| r["type"] == "step_failed")
        .expect("a step_failed record");
    let message = str_of(&failed["message"]);
    assert!(
        message.contains(&stray) && message.contains("not attached"),
        "{message}"
    );
    assert!(api_calls(&records, "CreateSnapshot").is_empty());
    assert!(
        snapshots_tagged("firebreak:case", "case-3")
            .await
            .is_empty()
    );
}

// ---- mocked EC2: snapshots that take time, and one that fails ----

mod slow {
    use super::*;
    use aws_sdk_ec2::operation::create_snapshot::CreateSnapshotOutput;
    use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
    use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput;
    use aws_sdk_ec2::types::{
        EbsInstanceBlockDevice, Instance, InstanceBlockDeviceMapping, Reservation, SnapshotState,
    };
    use aws_smithy_mocks::{Rule, mock};
    use firebreak::engine::{Mode, RunOutcome, RunStatus};

    /// The fixture for the instance and case 9 on EC2 mocked by `rules`.
    async fn snapshot_case_9(
        dir: &std::path::Path,
        rules: &[&aws_smithy_mocks::Rule],
    ) -> RunOutcome {
        crate::support::run::mocked(
            FIXTURE,
            &[("instance_id", INSTANCE), ("case_id", "case-9")],
            Mode::Live,
            dir,
            rules,
        )
        .await
    }

    const INSTANCE: &str = "i-0123456789abcdef0";
    const VOL: &str = "vol-0123456789abcdef1";

    fn instance_with(volumes: &[&'static str]) -> Rule {
        let volumes = volumes.to_vec();
        mock!(aws_sdk_ec2::Client::describe_instances).then_output(move || {
            let mut instance = Instance::builder().instance_id(INSTANCE);
            for (i, volume) in volumes.iter().enumerate() {
                instance = instance.block_device_mappings(
                    InstanceBlockDeviceMapping::builder()
                        .device_name(format!("/dev/xvd{}", (b'a' + i as u8) as char))
                        .ebs(EbsInstanceBlockDevice::builder().volume_id(*volume).build())
                        .build(),
                );
            }
            DescribeInstancesOutput::builder()
                .reservations(Reservation::builder().instances(instance.build()).build())
                .build()
        })
    }

    /// A poll of snapshots by id (the `snapshot-id` filter, batched across items).
    fn is_poll(r: &aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsInput) -> bool {
        r.filters().iter().any(|f| f.name() == Some("snapshot-id"))
    }

    /// A lookup of what a step or case made (by tag).
    fn is_lookup(r: &aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsInput) -> bool {
        r.filters()
            .iter()
            .any(|f| f.name().is_some_and(|n| n.starts_with("tag:")))
    }

    /// The idempotency lookup (by tag): nothing made yet.
    fn none_made_yet() -> Rule {
        mock!(aws_sdk_ec2::Client::describe_snapshots)
            .match_requests(is_lookup)
            .then_output(|| DescribeSnapshotsOutput::builder().build())
    }

    fn created_pending() -> Rule {
        mock!(aws_sdk_ec2::Client::create_snapshot).then_compute_output(|r| {
            let volume = r.volume_id().unwrap();
            CreateSnapshotOutput::builder()
                .snapshot_id(format!("snap-of-{volume}"))
                .volume_id(volume)
                .state(SnapshotState::Pending)
                .progress("0%")
                .build()
        })
    }

    /// CreateSnapshots for an instance with `volumes`: one pending snapshot of each.
    fn created_set_pending(volumes: &[&'static str]) -> Rule {
        let volumes = volumes.to_vec();
        mock!(aws_sdk_ec2::Client::create_snapshots).then_output(move || {
            let mut output =
                aws_sdk_ec2::operation::create_snapshots::CreateSnapshotsOutput::builder();
            for volume in &volumes {
                output = output.snapshots(
                    aws_sdk_ec2::types::SnapshotInfo::builder()
                        .snapshot_id(format!("snap-of-{volume}"))
                        .volume_id(*volume)
                        .state(SnapshotState::Pending)
                        .progress("0%")
                        .build(),
                );
            }
            output.build()
        })
    }

    fn snapshot(id: &str, state: SnapshotState, progress: &str) -> Snapshot {
        Snapshot::builder()
            .snapshot_id(id)
            .state(state)
            .progress(progress)
            .build()
    }

    #[tokio::test]
    async fn waits_until_every_snapshot_is_completed() {
        let describe = instance_with(&["vol-1", "vol-2"]);
        let lookup = none_made_yet();
        let create = created_set_pending(&["vol-1", "vol-2"]);
        // Polled by id: first both pending, then one done, then both.
        let poll = mock!(aws_sdk_ec2::Client::describe_snapshots)
            .match_requests(is_poll)
            .sequence()
            .output(|| {
                DescribeSnapshotsOutput::builder()
                    .snapshots(snapshot("snap-of-vol-1", SnapshotState::Pending, "40%"))
                    .snapshots(snapshot("snap-of-vol-2", SnapshotState::Pending, "10%"))
                    .build()
            })
            .output(|| {
                DescribeSnapshotsOutput::builder()
                    .snapshots(snapshot("snap-of-vol-2", SnapshotState::Pending, "80%"))
                    .snapshots(snapshot("snap-of-vol-1", SnapshotState::Completed, "100%"))
                    .build()
            })
            .output(|| {
                DescribeSnapshotsOutput::builder()
                    .snapshots(snapshot("snap-of-vol-2", SnapshotState::Completed, "100%"))
                    .build()
            })
            .build();
        let dir = tempfile::tempdir().unwrap();
        let outcome = snapshot_case_9(dir.path(), &[&describe, &lookup, &create, &poll]).await;
        assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
        assert_eq!(create.num_calls(), 1, "one crash-consistent set");
        assert_eq!(poll.num_calls(), 3, "polled until both were completed");
        let outputs = &outcome.steps[0].outputs;
        assert_eq!(outputs["created"], 2);
        for entry in outputs["snapshots"].as_array().unwrap() {
            assert_eq!(entry["state"], "completed", "{entry}");
            assert_eq!(entry["progress"], "100%", "{entry}");
        }
        // Polls ask only for what is still pending.
        let records = crate::support::journal::values(&outcome.journal);
        let polls: Vec<Vec<String>> = api_calls(&records, "DescribeSnapshots")
            .into_iter()
            .filter(|r| {
                r["targets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t.as_str().is_some_and(|t| t.starts_with("snap-")))
            })
            .map(|r| strings(&r["targets"]))
            .collect();
        assert_eq!(
            polls,
            [
                vec!["snap-of-vol-1", "snap-of-vol-2"],
                vec!["snap-of-vol-1", "snap-of-vol-2"],
                vec!["snap-of-vol-2"],
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_snapshot_fails_the_step_and_names_it() {
        let describe = instance_with(&["vol-1"]);
        let lookup = none_made_yet();
        let create = created_set_pending(&["vol-1"]);
        let poll = mock!(aws_sdk_ec2::Client::describe_snapshots)
            .match_requests(is_poll)
            .then_output(|| {
                DescribeSnapshotsOutput::builder()
                    .snapshots(snapshot("snap-of-vol-1", SnapshotState::Error, "3%"))
                    .build()
            });
        let dir = tempfile::tempdir().unwrap();
        let outcome = snapshot_case_9(dir.path(), &[&describe, &lookup, &create, &poll]).await;
        assert_eq!(outcome.status, RunStatus::Failed, "{outcome:?}");
        let records = crate::support::journal::values(&outcome.journal);
        let failed = records
            .iter()
            .find(|r| r["type"] == "step_failed")
            .expect("step_failed");
        let message = str_of(&failed["message"]);
        assert!(
            message.contains("snap-of-vol-1") && message.contains("vol-1"),
            "{message}"
        );
        // What was made is journaled with the failure, so nobody has to guess.
        assert_eq!(
            failed["outputs"]["snapshot_ids"][0], "snap-of-vol-1",
            "{failed}"
        );
        assert_eq!(
            failed["outputs"]["snapshots"][0]["state"], "error",
            "{failed}"
        );
    }

    #[tokio::test]
    async fn a_step_that_made_some_snapshots_makes_only_the_missing_ones() {
        let describe = instance_with(&["vol-1", "vol-2"]);
        // An earlier attempt of this step made vol-1's snapshot, then the process died.
        let lookup = mock!(aws_sdk_ec2::Client::describe_snapshots)
            // Found by the case look-up, which finds this step's own snapshots too: every
            // snapshot of the case, each saying by its tags which instance it is of.
            .match_requests(|r| {
                r.filters().iter().any(|f| {
                    f.name() == Some("tag:firebreak:case")
                        && f.values().iter().any(|v| v == "case-9")
                })
            })
            .then_output(|| {
                DescribeSnapshotsOutput::builder()
                    .snapshots(
                        Snapshot::builder()
                            .snapshot_id("snap-earlier")
                            .volume_id("vol-1")
                            .state(SnapshotState::Completed)
                            .progress("100%")
                            .tags(
                                aws_sdk_ec2::types::Tag::builder()
                                    .key("firebreak:source-instance")
                                    .value(INSTANCE)
                                    .build(),
                            )
                            .build(),
                    )
                    // Another instance's snapshot of the same case is not this one's.
                    .snapshots(
                        Snapshot::builder()
                            .snapshot_id("snap-of-another-instance")
                            .volume_id("vol-2")
                            .state(SnapshotState::Completed)
                            .tags(
                                aws_sdk_ec2::types::Tag::builder()
                                    .key("firebreak:source-instance")
                                    .value("i-0fedcba9876543210")
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            });
        let create = created_pending();
        let poll = mock!(aws_sdk_ec2::Client::describe_snapshots)
            .match_requests(is_poll)
            .then_output(|| {
                DescribeSnapshotsOutput::builder()
                    .snapshots(snapshot("snap-of-vol-2", SnapshotState::Completed, "100%"))
                    .build()
            });
        let dir = tempfile::tempdir().unwrap();
        let outcome = snapshot_case_9(dir.path(), &[&describe, &lookup, &create, &poll]).await;
        assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
        assert_eq!(create.num_calls(), 1, "only vol-2 was missing");
        let outputs = &outcome.steps[0].outputs;
        assert_eq!(outputs["created"], 1, "{outputs}");
        assert_eq!(outputs["reused"], 1, "{outputs}");
        assert_eq!(
            outputs["snapshot_ids"],
            serde_json::json!(["snap-earlier", "snap-of-vol-2"])
        );
        assert_eq!(outputs["snapshots"][0]["reused"], true);
        assert_eq!(outputs["snapshots"][1]["reused"], false);
    }

    /// CreateSnapshot takes no client token: after a failed attempt whose answer may have been
    /// lost, the action looks for the snapshot by tag before trying again.
    #[tokio::test]
    async fn a_lost_answer_is_looked_up_before_creating_again() {
        // Only one of the instance's two volumes is asked for: one by one (CreateSnapshot).
        let describe = instance_with(&[VOL, "vol-0123456789abcdef2"]);
        let lookup = mock!(aws_sdk_ec2::Client::describe_snapshots)
            .match_requests(is_lookup)
            .sequence()
            .output(|| DescribeSnapshotsOutput::builder().build())
            .output(|| {
                DescribeSnapshotsOutput::builder()
                    // Another volume's snapshot under the same key is not this one's.
                    .snapshots(
                        Snapshot::builder()
                            .snapshot_id("snap-other")
                            .volume_id("vol-other")
                            .build(),
                    )
                    // This volume's, found by its source-volume tag.
                    .snapshots(
                        Snapshot::builder()
                            .snapshot_id("snap-made")
                            .tags(
                                aws_sdk_ec2::types::Tag::builder()
                                    .key("firebreak:source-volume")
                                    .value(VOL)
                                    .build(),
                            )
                            .state(SnapshotState::Pending)
                            .progress("5%")
                            .build(),
                    )
                    .build()
            })
            .build();
        // The snapshot was made, but the answer was a 500 — which the SDK would retry blindly
        // (every attempt counts as a call here).
        let create = mock!(aws_sdk_ec2::Client::create_snapshot)
            .sequence()
            .http_status(500, None)
            .repeatedly()
            .build();
        let dir = tempfile::tempdir().unwrap();
        let outcome = crate::support::run::mocked(
            "tests/fixtures/ec2/snapshot-volumes.yaml", // wait: false
            &[
                ("instance_id", INSTANCE),
                ("volume_ids", VOL),
                ("case_id", "case-9"),
            ],
            Mode::Live,
            dir.path(),
            &[&describe, &lookup, &create],
        )
        .await;
        assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
        assert_eq!(
            create.num_calls(),
            1,
            "not sent again, by the SDK or the action"
        );
        assert_eq!(lookup.num_calls(), 2);
        let outputs = &outcome.steps[0].outputs;
        assert_eq!(outputs["snapshot_ids"], serde_json::json!(["snap-made"]));
        assert_eq!(outputs["created"], 1, "made by this step: {outputs}");
        assert_eq!(outputs["snapshots"][0]["state"], "pending");
        let records = crate::support::journal::values(&outcome.journal);
        let creates = api_calls(&records, "CreateSnapshot");
        assert_eq!(creates.len(), 1);
        assert_eq!(creates[0]["class"], "transient", "{}", creates[0]);
    }

    /// The same for the crash-consistent set: CreateSnapshots answered 500 after making the
    /// set is not sent again; the set is found by the step's tag and each snapshot by its
    /// volume.
    const VOL1: &str = "vol-0123456789abcdef1";
    const VOL2: &str = "vol-0123456789abcdef2";

    #[tokio::test]
    async fn a_lost_answer_to_a_set_is_looked_up_before_creating_again() {
        let describe = instance_with(&[VOL1, VOL2]);
        let lookup = mock!(aws_sdk_ec2::Client::describe_snapshots)
            .match_requests(is_lookup)
            .sequence()
            // Before: nothing (the case look-up); after the 500: the set, by the step's tag.
            .output(|| DescribeSnapshotsOutput::builder().build())
            .output(|| {
                DescribeSnapshotsOutput::builder()
                    .snapshots(
                        Snapshot::builder()
                            .snapshot_id("snap-set-2")
                            .volume_id(VOL2)
                            .state(SnapshotState::Pending)
                            .progress("1%")
                            .build(),
                    )
                    .snapshots(
                        Snapshot::builder()
                            .snapshot_id("snap-set-1")
                            .volume_id(VOL1)
                            .state(SnapshotState::Pending)
                            .progress("1%")
                            .build(),
                    )
                    .build()
            })
            .build();
        let create = mock!(aws_sdk_ec2::Client::create_snapshots)
            .sequence()
            .http_status(500, None)
            .repeatedly()
            .build();
        let dir = tempfile::tempdir().unwrap();
        let outcome = crate::support::run::mocked(
            "tests/fixtures/ec2/snapshot-volumes.yaml", // wait: false
            &[
                ("instance_id", INSTANCE),
                ("volume_ids", &format!("{VOL1},{VOL2}")),
                ("case_id", "case-9"),
            ],
            Mode::Live,
            dir.path(),
            &[&describe, &lookup, &create],
        )
        .await;
        assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
        let calls: Vec<String> = crate::support::journal::values(&outcome.journal)
            .iter()
            .filter(|r| r["type"] == "api_call")
            .map(|r| format!("{} {}", r["operation"], r["class"]))
            .collect();
        assert_eq!(
            create.num_calls(),
            1,
            "not sent again, by the SDK or the action: {calls:?}"
        );
        let outputs = &outcome.steps[0].outputs;
        assert_eq!(
            outputs["snapshot_ids"],
            serde_json::json!(["snap-set-1", "snap-set-2"]),
            "in the order of the volumes: {outputs}"
        );
        assert_eq!(outputs["created"], 2, "made by this step: {outputs}");
    }

    /// The case is read once per step and run; a step the engine tries again (here: every
    /// CreateSnapshots of the first attempt answered 500, the first one after making the set)
    /// looks for its own snapshots by its tag before making any, and makes none.
    #[tokio::test]
    async fn a_retried_step_finds_the_set_its_first_attempt_made() {
        let describe = instance_with(&[VOL1, VOL2]);
        let case_read = mock!(aws_sdk_ec2::Client::describe_snapshots)
            .match_requests(|r| {
                r.filters()
                    .iter()
                    .any(|f| f.name() == Some("tag:firebreak:case"))
            })
            .then_output(|| DescribeSnapshotsOutput::builder().build());
        let set = || {
            DescribeSnapshotsOutput::builder()
                .snapshots(
                    Snapshot::builder()
                        .snapshot_id("snap-set-1")
                        .volume_id(VOL1)
                        .state(SnapshotState::Pending)
                        .build(),
                )
                .snapshots(
                    Snapshot::builder()
                        .snapshot_id("snap-set-2")
                        .volume_id(VOL2)
                        .state(SnapshotState::Pending)
                        .build(),
                )
                .build()
        };
        // By the step's tag: not visible yet during the first attempt, then there.
        let own = mock!(aws_sdk_ec2::Client::describe_snapshots)
            .match_requests(|r| {
                r.filters()
                    .iter()
                    .any(|f| f.name() == Some("tag:firebreak:idempotency-key"))
            })
            .sequence()
            .output(|| DescribeSnapshotsOutput::builder().build())
            .times(2)
            .output(set)
            .repeatedly()
            .build();
        let create = mock!(aws_sdk_ec2::Client::create_snapshots)
            .sequence()
            .http_status(500, None)
            .repeatedly()
            .build();
        let dir = tempfile::tempdir().unwrap();
        let outcome = crate::support::run::mocked(
            "tests/fixtures/ec2/snapshot-retried.yaml",
            &[("instance_id", INSTANCE), ("case_id", "case-9")],
            Mode::Live,
            dir.path(),
            &[&describe, &case_read, &own, &create],
        )
        .await;
        assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
        let records = crate::support::journal::values(&outcome.journal);
        assert!(
            records.iter().any(|r| r["type"] == "step_retry"),
            "the engine tried the step again"
        );
        assert_eq!(
            create.num_calls(),
            3,
            "three sends in the first attempt, none after"
        );
        assert_eq!(
            case_read.num_calls(),
            1,
            "the case is read once per step and run"
        );
        let outputs = &outcome.steps[0].outputs;
        assert_eq!(
            outputs["snapshot_ids"],
            serde_json::json!(["snap-set-1", "snap-set-2"]),
            "{outputs}"
        );
    }
}
