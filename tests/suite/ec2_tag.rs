//! `ec2.tag_resources`: tags landing on an instance, its volumes and interfaces in moto through
//! the real SDK; batching of more than 1000 ids and the no-id case with a mocked EC2.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use crate::support::{firebreak, moto, sandbox};
use aws_sdk_ec2::operation::create_tags::CreateTagsOutput;
use aws_smithy_mocks::mock;
use firebreak::engine::{Mode, RunStatus};
use serde_json::Value;

use crate::support::json::{str_of, strings};

const FIXTURE: &str = "tests/fixtures/ec2/tag.yaml";
const MANY: &str = "tests/fixtures/ec2/tag-many.yaml";

fn run(dir: &std::path::Path, instance: &str, extra: &[&str]) -> Value {
    let out = firebreak()
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", dir)
        .args(["run", FIXTURE, "--yes", "--output", "json"])
        .args([
            "-p",
            &format!("instance_id={instance}"),
            "-p",
            "case_id=case-7",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn tags_land_on_the_instance_its_volumes_and_interfaces() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = str_of(&ids["instance_id"]);
    let volumes = strings(&ids["volume_ids"]);
    let interfaces = strings(&ids["network_interface_ids"]);
    assert_eq!((volumes.len(), interfaces.len()), (2, 2), "{ids}");
    let dir = tempfile::tempdir().unwrap();

    let outcome = run(dir.path(), instance, &[]);
    let outputs = &outcome["steps"][1]["outputs"];
    // The instance once (it is given twice), then the volumes and interfaces, in order.
    let mut expected = vec![instance.to_owned()];
    expected.extend(volumes.iter().cloned());
    expected.extend(interfaces.iter().cloned());
    let mut listed = strings(&outputs["resource_ids"]);
    assert_eq!(listed.len(), 5, "{outputs}");
    assert_eq!(listed[0], instance);
    assert_eq!(outputs["tagged"], 5, "{outputs}");
    assert_eq!(outputs["batches"], 1, "{outputs}");
    assert_eq!(outputs["tags"]["firebreak:case"], "case-7");
    assert_eq!(outputs["tags"]["firebreak:status"], "contained");
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);

    let want: BTreeSet<String> = expected.into_iter().collect();
    let case = sandbox::tagged_with("firebreak:case").await;
    assert_eq!(case.keys().cloned().collect::<BTreeSet<_>>(), want);
    assert!(case.values().all(|v| v == "case-7"), "{case:?}");
    let status = sandbox::tagged_with("firebreak:status").await;
    assert_eq!(status.keys().cloned().collect::<BTreeSet<_>>(), want);
    assert!(status.values().all(|v| v == "contained"), "{status:?}");

    // One CreateTags call, journaled with every target.
    let records =
        crate::support::journal::values(std::path::Path::new(str_of(&outcome["journal"])));
    let calls: Vec<&Value> = records
        .iter()
        .filter(|r| r["operation"] == "CreateTags")
        .collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["targets"], outputs["resource_ids"]);
}

#[tokio::test]
async fn a_drill_tags_nothing() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = str_of(&ids["instance_id"]);
    let dir = tempfile::tempdir().unwrap();

    let outcome = run(dir.path(), instance, &["--dry-run"]);
    let outputs = &outcome["steps"][1]["outputs"];
    assert_eq!(outputs["dry_run"], true, "{outputs}");
    assert_eq!(outputs["tagged"], 0, "{outputs}");
    assert_eq!(outputs["would_tag"], 5, "{outputs}");
    assert!(sandbox::tagged_with("firebreak:case").await.is_empty());
    let records =
        crate::support::journal::values(std::path::Path::new(str_of(&outcome["journal"])));
    let call = records
        .iter()
        .find(|r| r["operation"] == "CreateTags")
        .expect("a CreateTags api_call");
    assert_eq!(call["outcome"], "would-succeed", "{call}");
}

#[tokio::test]
async fn more_than_a_thousand_ids_go_in_batches_of_at_most_a_thousand() {
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let seen = sizes.clone();
    let create = mock!(aws_sdk_ec2::Client::create_tags).then_compute_output(move |r| {
        let resources = r.resources();
        assert!(
            r.tags().iter().any(|t| t.key() == Some("firebreak:case")),
            "{r:?}"
        );
        seen.lock().unwrap().push((
            resources.len(),
            resources.first().cloned(),
            resources.last().cloned(),
        ));
        CreateTagsOutput::builder().build()
    });
    // Ids that do not look like AWS resources, so the run takes no 2,500 locks.
    let ids: Vec<String> = (0..2500).map(|i| format!("res-{i:05}")).collect();
    // Duplicates are dropped before batching.
    let given = format!("{},{},{}", ids.join(","), ids[0], ids[1]);
    let dir = tempfile::tempdir().unwrap();
    let outcome = crate::support::run::mocked(
        MANY,
        &[("resource_ids", &given), ("case_id", "case-8")],
        Mode::Live,
        dir.path(),
        &[&create],
    )
    .await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    let outputs = &outcome.steps[0].outputs;
    assert_eq!(outputs["tagged"], 2500);
    assert_eq!(outputs["batches"], 3);
    assert_eq!(strings(&outputs["resource_ids"]), ids);
    let sizes = sizes.lock().unwrap().clone();
    let first_last = |a: usize, b: usize| (Some(ids[a].clone()), Some(ids[b].clone()));
    assert_eq!(
        sizes,
        [
            (1000, first_last(0, 999).0, first_last(0, 999).1),
            (1000, first_last(1000, 1999).0, first_last(1000, 1999).1),
            (500, first_last(2000, 2499).0, first_last(2000, 2499).1),
        ]
    );
}

#[tokio::test]
async fn no_ids_no_call() {
    let create =
        mock!(aws_sdk_ec2::Client::create_tags).then_output(|| CreateTagsOutput::builder().build());
    let dir = tempfile::tempdir().unwrap();
    let outcome = crate::support::run::mocked(
        MANY,
        &[("resource_ids", ""), ("case_id", "case-8")],
        Mode::Live,
        dir.path(),
        &[&create],
    )
    .await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    assert_eq!(create.num_calls(), 0);
    let outputs = &outcome.steps[0].outputs;
    assert_eq!(outputs["tagged"], 0);
    assert_eq!(outputs["batches"], 0);
    assert_eq!(outputs["resource_ids"], serde_json::json!([]));
}
