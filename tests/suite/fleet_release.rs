//! An outbreak's false positives released while the rest stays contained, as a responder does
//! it from the command line: `ec2-fleet-containment` on 36 instances over three VPCs sharing one
//! role, six of them registered in load balancer target groups by hand (the person declines the
//! stop), then `ec2-release` of two of them, a name the journal never contained, and the other
//! 34 in one run through throttling and 500s.

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_ec2::types::Filter;
use serde_json::{Value, json};

use crate::ec2_release::{decline_the_stop, state};
use crate::fleet::ids;
use crate::support::journal::Journal;
use crate::support::{cli_on_moto, moto, proxy, sandbox};

const ROLE: &str = "fleet-release";

/// Each attached interface of `instances`: its instance and its groups (sorted), as EC2 reports
/// them now.
async fn interface_groups(instances: &[String]) -> BTreeMap<String, (String, Vec<String>)> {
    let ec2 = sandbox::ec2().await;
    let mut found = BTreeMap::new();
    for chunk in instances.chunks(100) {
        let out = ec2
            .describe_network_interfaces()
            .filters(
                Filter::builder()
                    .name("attachment.instance-id")
                    .set_values(Some(chunk.to_vec()))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        for eni in out.network_interfaces() {
            let mut groups: Vec<String> = eni
                .groups()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_owned))
                .collect();
            groups.sort();
            let instance = eni
                .attachment()
                .and_then(|a| a.instance_id())
                .unwrap()
                .to_owned();
            found.insert(
                eni.network_interface_id().unwrap().to_owned(),
                (instance, groups),
            );
        }
    }
    found
}

/// The instances among `instances` carrying the `firebreak:case` tag now, sorted.
async fn case_tagged(instances: &[String]) -> Vec<String> {
    sandbox::tagged_with("firebreak:case")
        .await
        .into_keys()
        .filter(|r| instances.contains(r))
        .collect()
}

/// The instances the role's credential deny lists now, sorted.
async fn denied() -> Vec<String> {
    let mut denied = sandbox::denied_instances(ROLE).await;
    denied.sort();
    denied
}

fn arns(instances: &[String]) -> Vec<String> {
    let mut arns: Vec<String> = instances
        .iter()
        .map(|i| format!("arn:aws:ec2:us-east-1:123456789012:instance/{i}"))
        .collect();
    arns.sort();
    arns
}

fn release(dir: &Path, journal: &str, instances: &[String]) -> (i32, Value, String) {
    cli_on_moto(
        dir,
        &[
            "run",
            "runbooks/ec2-release.yaml",
            "-p",
            &format!("journal={journal}"),
            "-p",
            &format!("instance_ids={}", instances.join(",")),
            "--yes",
        ],
    )
}

fn mutating(outcome: &Value) -> Vec<String> {
    Journal::read(Path::new(outcome["journal"].as_str().unwrap()))
        .mutating_calls()
        .iter()
        .map(|c| c.name())
        .collect()
}

/// A refused release changed nothing: no mutating call, every interface's groups and the case
/// tags as `now` and `tagged`, and `registered` (in a target group before the containment)
/// still out of it.
async fn nothing_changed(
    refused: &Value,
    instances: &[String],
    now: &BTreeMap<String, (String, Vec<String>)>,
    tagged: &[String],
    registered: &str,
    beside: &str,
) {
    assert_eq!(mutating(refused), Vec::<String>::new());
    assert_eq!(&interface_groups(instances).await, now);
    assert_eq!(case_tagged(instances).await, tagged);
    assert_eq!(
        state(&["describe", registered])["target_groups"],
        serde_json::json!([]),
        "{registered} was registered again beside {beside}"
    );
}

#[tokio::test]
async fn releasing_part_of_a_fleet_leaves_the_rest_contained() {
    let _moto = moto::exclusive().await;
    let fleet = sandbox::seed_fleet_with(36, 3, &["--shared-profile", ROLE]);
    let instances = ids(&fleet);
    // Instances with one interface, for the full describes: moto reports a second interface's
    // groups with the primary's (MOTO-NOTES), so a second interface's recorded originals carry
    // both; those are compared group by group below, as every interface is.
    let single: Vec<String> = fleet["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["network_interface_ids"].as_array().unwrap().len() == 1)
        .map(|i| i["instance_id"].as_str().unwrap().to_owned())
        .collect();
    let double: Vec<&String> = instances.iter().filter(|i| !single.contains(i)).collect();
    assert!(!double.is_empty(), "some have two interfaces");
    let registered: Vec<&String> = single.iter().step_by(5).take(6).collect();
    assert_eq!(registered.len(), 6);
    for instance in &registered {
        state(&["register", instance]);
    }
    let before = interface_groups(&instances).await;
    // Two false positives: one in a target group, one with two interfaces.
    let freed = vec![registered[0].clone(), double[0].clone()];
    let held: Vec<String> = instances
        .iter()
        .filter(|i| !freed.contains(i))
        .cloned()
        .collect();
    let sample_freed = state(&["describe", registered[0]]);
    let sample_held = state(&["describe", registered[5]]);
    let dir = tempfile::tempdir().unwrap();

    // Contained with nobody at the terminal: it parks at the stop, which a person declines.
    let parked = cli_on_moto(
        dir.path(),
        &[
            "run",
            "runbooks/ec2-fleet-containment.yaml",
            "-p",
            &format!("instance_ids={}", instances.join(",")),
            "-p",
            "case_id=outbreak-fp",
        ],
    );
    let journal = decline_the_stop(dir.path(), parked, "two are false positives");
    let contained = interface_groups(&instances).await;
    for (eni, (_, groups)) in &contained {
        assert_ne!(groups, &before[eni].1, "{eni} was not isolated");
    }
    assert_eq!(denied().await, arns(&instances));
    assert_eq!(case_tagged(&instances).await.len(), 36);
    // Every target group's targets read once for the run, then each group holding an
    // instance read again for it: not one read per instance and group (36 × 6).
    let health_reads = Journal::read(Path::new(&journal))
        .step_calls()
        .iter()
        .filter(|c| c.operation == "DescribeTargetHealth")
        .count();
    assert!(
        health_reads <= 2 * registered.len(),
        "{health_reads} DescribeTargetHealth calls for {} groups",
        registered.len()
    );
    for instance in &registered {
        assert_eq!(
            state(&["describe", instance])["target_groups"],
            serde_json::json!([]),
            "{instance} is still registered"
        );
    }

    // The two false positives released: only they come back.
    let (code, released, stderr) = release(dir.path(), &journal, &freed);
    assert_eq!(code, 0, "{stderr}\n{released:#}");
    let now = interface_groups(&instances).await;
    for (eni, (instance, groups)) in &now {
        if freed.contains(instance) {
            assert_eq!(groups, &before[eni].1, "{eni} of {instance} is not back");
        } else {
            assert_eq!(
                groups, &contained[eni].1,
                "{eni} of {instance} was released too"
            );
        }
    }
    assert_eq!(denied().await, arns(&held));
    let mut still_tagged = held.clone();
    still_tagged.sort();
    assert_eq!(case_tagged(&instances).await, still_tagged);
    assert_eq!(state(&["describe", registered[0]]), sample_freed);

    // A name the journal never contained — a mistyped id among real ones — is refused, and
    // nothing changes, of the stranger or of the contained instances named beside it (a
    // registered one: its target group too).
    let stranger = sandbox::seed("stranger");
    let stranger = stranger["instance_id"].as_str().unwrap().to_owned();
    let beside = held.iter().find(|h| *h != registered[5]).unwrap();
    let named = [registered[5].clone(), stranger.clone(), beside.clone()];
    let (code, refused, stderr) = release(dir.path(), &journal, &named);
    assert_ne!(code, 0, "{refused:#}");
    assert!(
        format!("{stderr}{refused}")
            .contains(&format!("records no containment of instance {stranger}")),
        "{stderr}\n{refused:#}"
    );
    nothing_changed(
        &refused,
        &instances,
        &now,
        &still_tagged,
        registered[5],
        "a stranger",
    )
    .await;

    // One of the named turned its metadata service back on by hand since the containment: the
    // whole list is refused before anything changes — not the others restored and left
    // isolated (their network comes back only after every restore) — naming it.
    let drifted = beside.clone();
    let ec2 = sandbox::ec2().await;
    let described = ec2
        .describe_instances()
        .instance_ids(&drifted)
        .send()
        .await
        .unwrap();
    let left = described.reservations()[0].instances()[0]
        .metadata_options()
        .cloned()
        .unwrap();
    ec2.modify_instance_metadata_options()
        .instance_id(&drifted)
        .http_endpoint(aws_sdk_ec2::types::InstanceMetadataEndpointState::Enabled)
        .send()
        .await
        .unwrap();
    let third = held
        .iter()
        .find(|h| *h != registered[5] && **h != drifted)
        .unwrap();
    let named = [registered[5].clone(), drifted.clone(), third.clone()];
    let (code, refused, stderr) = release(dir.path(), &journal, &named);
    assert_ne!(code, 0, "{refused:#}");
    // Each other item names it; its own says what changed (the journal holds every item's).
    let journaled = std::fs::read_to_string(refused["journal"].as_str().unwrap()).unwrap();
    assert!(
        journaled.contains(&format!(
            "instance {drifted} (named in instance_ids) changed since the containment"
        )) && journaled.contains(&format!(
            "instance {drifted}: metadata_options changed since the containment"
        )),
        "{stderr}\n{journaled}"
    );
    nothing_changed(
        &refused,
        &instances,
        &now,
        &still_tagged,
        registered[5],
        "a drifted instance",
    )
    .await;
    // Put back as the containment left it, for the release below.
    ec2.modify_instance_metadata_options()
        .instance_id(&drifted)
        .set_http_endpoint(left.http_endpoint().cloned())
        .set_http_tokens(left.http_tokens().cloned())
        .send()
        .await
        .unwrap();

    // The rest, in one run, through a storm — two in five EC2 and load balancer calls
    // throttled, one EC2 call in twenty answered 500, the first two calls on the role's policy
    // throttled: everything as it was, the role's deny gone.
    proxy::reset();
    proxy::faults(
        19,
        json!([
            {"service": "ec2", "fault": "throttle", "rate": 0.4},
            {"service": "ec2", "fault": "error500", "rate": 0.05},
            {"service": "iam", "operation": "*RolePolic*", "fault": "throttle", "max": 2},
            {"service": "elasticloadbalancing", "fault": "throttle", "rate": 0.4},
        ]),
    );
    let (code, released, stderr) = release(dir.path(), &journal, &held);
    let calls = proxy::calls();
    proxy::faults(0, json!([]));
    let faulted = |service: &str| {
        calls
            .iter()
            .filter(|c| c.service == service && c.fault.is_some())
            .count()
    };
    assert!(
        faulted("ec2") > 20 && faulted("elasticloadbalancing") > 0,
        "faults injected: ec2 {}, iam {}, elbv2 {} of {} calls",
        faulted("ec2"),
        faulted("iam"),
        faulted("elasticloadbalancing"),
        calls.len()
    );
    assert_eq!(code, 0, "{stderr}\n{released:#}");
    assert_eq!(interface_groups(&instances).await, before);
    assert_eq!(denied().await, Vec::<String>::new());
    assert_eq!(case_tagged(&instances).await, Vec::<String>::new());
    assert_eq!(state(&["describe", registered[5]]), sample_held);
    let restore = crate::support::json::step(&released, "restore");
    assert_eq!(restore["outputs"].as_array().unwrap().len(), 34);
}
