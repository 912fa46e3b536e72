//! `runbooks/ec2-instance-compromise.yaml` then `runbooks/ec2-release.yaml`, from the command
//! line as a responder runs them: the seeded instance (Auto Scaling member, two interfaces,
//! an Elastic IP, an instance profile, a load balancer registration made by hand) is contained —
//! the person declines the stop — and released; a full describe after the release equals the
//! one before the containment, volatile fields aside (tests/support/instance_state.py lists
//! them).

use serde_json::Value;

use crate::support::run::id;
use crate::support::{cli_on_moto, journal, moto, sandbox};

const CONTAIN: &str = "runbooks/ec2-instance-compromise.yaml";
const RELEASE: &str = "runbooks/ec2-release.yaml";

pub(crate) fn state(args: &[&str]) -> Value {
    let out = std::process::Command::new(moto::python())
        .arg(crate::support::repo("tests/support/instance_state.py"))
        .args(args)
        .arg(moto::upstream())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "instance_state.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A containment parked at its stop approval (exit 4), and the person declining the stop:
/// the instances stay running, contained. Returns the containing run's journal.
pub(crate) fn decline_the_stop(
    dir: &std::path::Path,
    parked: (i32, Value, String),
    reason: &str,
) -> String {
    let (code, parked, stderr) = parked;
    assert_eq!(code, 4, "{stderr}\n{parked:#}");
    let run_id = parked["run_id"].as_str().unwrap();
    let (code, decided, stderr) = cli_on_moto(
        dir,
        &["deny", run_id, "--step", "approve_stop", "--reason", reason],
    );
    assert_eq!(code, 0, "{stderr}\n{decided:#}");
    parked["journal"].as_str().unwrap().to_owned()
}

fn mutating(journal: &str) -> Vec<String> {
    journal::values(std::path::Path::new(journal))
        .iter()
        .filter(|r| r["type"] == "api_call" && r["step"] != "interlocks")
        .filter_map(|r| r["operation"].as_str().map(str::to_owned))
        .filter(|op| {
            !["Get", "List", "Describe"]
                .iter()
                .any(|p| op.starts_with(p))
        })
        .collect()
}

/// The describe after a release equals the one before the containment. The interfaces'
/// groups come back as the isolation recorded them: moto reports an attached interface's groups
/// as its own plus the instance's (MOTO-NOTES), so on moto a secondary interface's recorded
/// originals include the primary's groups (on AWS they are exact). The groups are checked
/// against the record; everything else against the describe before.
fn assert_released(mut after: Value, before: &Value, contained_journal: &str) {
    let recorded = isolated_interfaces(contained_journal);
    for (eni, groups) in after["interface_groups"].as_object().unwrap() {
        assert_eq!(groups, &recorded[eni.as_str()], "{eni}");
    }
    after["interface_groups"] = before["interface_groups"].clone();
    assert_eq!(&after, before, "the release left the instance different");
}

/// Each isolated interface's original groups (sorted), as the isolation step recorded them.
fn isolated_interfaces(journal: &str) -> serde_json::Map<String, Value> {
    let mut found = serde_json::Map::new();
    for record in journal::values(std::path::Path::new(journal)) {
        if record["type"] == "step_succeeded" && record["step"] == "isolate" {
            for eni in record["outputs"]["interfaces"].as_array().unwrap() {
                let mut groups: Vec<Value> = eni["original_groups"].as_array().unwrap().clone();
                groups.sort_by_key(|g| g.to_string());
                found.insert(
                    eni["network_interface_id"].as_str().unwrap().to_owned(),
                    Value::Array(groups),
                );
            }
        }
    }
    found
}

#[tokio::test]
async fn a_contained_instance_is_released_to_exactly_what_it_was() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let registered = state(&["register", &instance]);
    let before = state(&["describe", &instance]);
    let dir = tempfile::tempdir().unwrap();

    // Contained with nobody at the terminal: it parks at the stop, which a person declines.
    let parked = cli_on_moto(
        dir.path(),
        &[
            "run",
            CONTAIN,
            "-p",
            &format!("instance_id={instance}"),
            "-p",
            "case_id=case-rel",
            "-p",
            &format!(
                "quarantine_profile_arn={}",
                id(&ids, "quarantine_profile_arn")
            ),
        ],
    );
    let contained_journal = decline_the_stop(dir.path(), parked, "keep it running");
    let contained = state(&["describe", &instance]);
    assert_ne!(contained, before);
    assert!(
        contained["target_groups"].as_array().unwrap().is_empty(),
        "still registered: {contained:#}"
    );
    assert_eq!(contained["autoscaling"], serde_json::json!([]));
    assert!(contained["addresses"].as_array().unwrap().is_empty());

    // Someone changed nothing since: the release restores every piece, network last.
    let (code, released, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            RELEASE,
            "-p",
            &format!("journal={contained_journal}"),
            "-p",
            &format!("instance_ids={instance}"),
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{released:#}");
    let after = state(&["describe", &instance]);
    assert_released(after.clone(), &before, &contained_journal);
    assert_eq!(
        after["target_groups"][0][0], registered["target_group_arn"],
        "registered where it was"
    );
    let sent = mutating(released["journal"].as_str().unwrap());
    let last = sent.last().map(String::as_str);
    assert_eq!(
        last,
        Some("DeleteTags"),
        "the interfaces' groups come back last: {sent:?}"
    );
    assert!(
        sent.contains(&"ModifyNetworkInterfaceAttribute".to_owned()),
        "{sent:?}"
    );

    // Released again: nothing left to do.
    let (code, again, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            RELEASE,
            "-p",
            &format!("journal={contained_journal}"),
            "-p",
            &format!("instance_ids={instance}"),
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{again:#}");
    assert!(
        mutating(again["journal"].as_str().unwrap()).is_empty(),
        "{:?}",
        mutating(again["journal"].as_str().unwrap())
    );
    assert_released(state(&["describe", &instance]), &before, &contained_journal);
}

#[tokio::test]
async fn an_instance_release_refuses_a_piece_changed_since_unless_forced() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let dir = tempfile::tempdir().unwrap();
    let (code, contained, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            CONTAIN,
            "-p",
            &format!("instance_id={instance}"),
            "-p",
            "case_id=case-drift",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{contained:#}");
    // Someone turns the metadata service back on by hand.
    let ec2 = sandbox::ec2().await;
    ec2.modify_instance_metadata_options()
        .instance_id(&instance)
        .http_endpoint(aws_sdk_ec2::types::InstanceMetadataEndpointState::Enabled)
        .send()
        .await
        .unwrap();
    let journal = contained["journal"].as_str().unwrap().to_owned();
    let args = |force: bool| {
        let mut args = vec![
            "run".to_owned(),
            RELEASE.into(),
            "-p".into(),
            format!("journal={journal}"),
            "-p".into(),
            format!("instance_ids={instance}"),
            "--yes".into(),
        ];
        if force {
            args.extend(["-p".into(), "force=true".into()]);
        }
        args
    };
    let refused_args = args(false);
    let refused_args: Vec<&str> = refused_args.iter().map(String::as_str).collect();
    let (code, refused, stderr) = cli_on_moto(dir.path(), &refused_args);
    assert_ne!(code, 0, "{refused:#}");
    assert!(
        format!("{stderr}{refused}").contains("metadata_options changed since the containment"),
        "{stderr}\n{refused:#}"
    );
    assert!(
        mutating(refused["journal"].as_str().unwrap()).is_empty(),
        "nothing restored: {:?}",
        mutating(refused["journal"].as_str().unwrap())
    );
    let forced_args = args(true);
    let forced_args: Vec<&str> = forced_args.iter().map(String::as_str).collect();
    let (code, forced, stderr) = cli_on_moto(dir.path(), &forced_args);
    assert_eq!(code, 0, "{stderr}\n{forced:#}");
    // What was overwritten is said as every release says it.
    let restore = crate::support::json::step(&forced, "restore");
    let drifted = &restore["outputs"][0]["outputs"]["drifted"][0];
    assert_eq!(drifted["setting"], "metadata_options", "{forced:#}");
    for key in ["left", "now", "recorded_before"] {
        assert!(drifted[key].is_object(), "{key}: {drifted:#}");
    }
    assert_ne!(drifted["now"], drifted["left"], "{drifted:#}");
}
