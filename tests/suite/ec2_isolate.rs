//! `ec2.isolate_instance` and `ec2.release_isolation` against moto.
//!
//! moto reports an attached interface's groups as the union of its own and the instance's
//! (MOTO-NOTES), so isolation is checked the way moto gets right: the `group-id` filter of
//! DescribeNetworkInterfaces.

use std::path::Path;

use crate::support::{firebreak, moto, sandbox};
use serde_json::Value;

use crate::support::cli_on_moto as run;

/// `run tests/fixtures/ec2/isolate.yaml -p instance_id=…`, which must succeed: its outcome.
fn isolate(dir: &Path, param: &str) -> Value {
    let (code, outcome, stderr) = run(
        dir,
        &["run", "tests/fixtures/ec2/isolate.yaml", "-p", param],
    );
    assert_eq!(code, 0, "{stderr}");
    outcome
}

fn mutating_calls(journal: &Path) -> Vec<String> {
    crate::support::journal::values(journal)
        .iter()
        .filter(|r| r["type"] == "api_call")
        .filter_map(|r| r["operation"].as_str().map(str::to_owned))
        .filter(|op| {
            !(op.starts_with("Describe") || op.starts_with("Get") || op.starts_with("List"))
        })
        .collect()
}

#[tokio::test]
async fn every_interface_ends_in_the_no_rule_group_and_release_restores_them() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = ids["instance_id"].as_str().unwrap();
    let web = ids["security_groups"]["web"].as_str().unwrap();
    let admin = ids["security_groups"]["admin"].as_str().unwrap();
    let mut enis: Vec<String> =
        serde_json::from_value(ids["network_interface_ids"].clone()).unwrap();
    enis.sort();
    let ec2 = sandbox::ec2().await;
    let dir = tempfile::tempdir().unwrap();
    let param = format!("instance_id={instance}");

    let outcome = isolate(dir.path(), &param);
    let outputs = &outcome["steps"][0]["outputs"];
    let isolation = outputs["isolation_group"].as_str().unwrap();
    let untrack = outputs["untrack_group"].as_str().unwrap();
    assert_eq!(
        sandbox::interfaces_in(&ec2, instance, isolation).await,
        enis
    );
    assert!(sandbox::interfaces_in(&ec2, instance, web).await.is_empty());
    assert!(
        sandbox::interfaces_in(&ec2, instance, admin)
            .await
            .is_empty()
    );
    assert!(
        sandbox::interfaces_in(&ec2, instance, untrack)
            .await
            .is_empty()
    );
    // The originals are in the outputs, per interface.
    let originals: Vec<(String, Vec<String>)> = outputs["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["network_interface_id"].as_str().unwrap().to_owned(),
                serde_json::from_value(i["original_groups"].clone()).unwrap(),
            )
        })
        .collect();
    assert_eq!(originals.len(), 2);
    assert!(originals[0].1.contains(&web.to_owned()), "{originals:?}");
    assert!(originals[1].1.contains(&admin.to_owned()), "{originals:?}");
    // The no-rule group has no rules; the untrack group allows everything.
    let groups = ec2
        .describe_security_groups()
        .group_ids(isolation)
        .group_ids(untrack)
        .send()
        .await
        .unwrap();
    for group in groups.security_groups() {
        if group.group_id() == Some(isolation) {
            assert!(group.ip_permissions().is_empty() && group.ip_permissions_egress().is_empty());
        } else {
            assert!(
                group
                    .ip_permissions()
                    .iter()
                    .any(|p| p.ip_protocol() == Some("-1"))
            );
        }
    }

    // Running it again changes nothing.
    let (code, again, stderr) = run(
        dir.path(),
        &["run", "tests/fixtures/ec2/isolate.yaml", "-p", &param],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(again["steps"][0]["outputs"]["changed"], false);
    let strip = |v: &Value| -> Vec<(Value, Value)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["network_interface_id"].clone(),
                    i["original_groups"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        strip(&again["steps"][0]["outputs"]["interfaces"]),
        strip(&outputs["interfaces"])
    );
    let second_journal = Path::new(again["journal"].as_str().unwrap());
    assert_eq!(mutating_calls(second_journal), Vec::<String>::new());

    // ec2-release restores the originals from the first run's journal.
    let journal = outcome["journal"].as_str().unwrap();
    let (code, released, stderr) = run(
        dir.path(),
        &[
            "run",
            "runbooks/ec2-release.yaml",
            "-p",
            &format!("journal={journal}"),
            "-p",
            &param.replacen("instance_id=", "instance_ids=", 1),
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let release = crate::support::json::step(&released, "release");
    assert_eq!(release["outputs"]["source"], "journal");
    assert!(
        sandbox::interfaces_in(&ec2, instance, isolation)
            .await
            .is_empty()
    );
    for (eni, groups) in &originals {
        for group in groups {
            assert!(
                sandbox::interfaces_in(&ec2, instance, group)
                    .await
                    .contains(eni),
                "{eni} is not back in {group}"
            );
        }
    }
}

#[tokio::test]
async fn release_refuses_a_tampered_journal() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = ids["instance_id"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let param = format!("instance_id={instance}");
    let outcome = isolate(dir.path(), &param);
    let journal = outcome["journal"].as_str().unwrap();
    let text = std::fs::read_to_string(journal).unwrap();
    let forged = dir.path().join("forged.jsonl");
    std::fs::write(&forged, text.replacen("sg-", "sg-f", 1)).unwrap();
    let (code, released, stderr) = run(
        dir.path(),
        &[
            "run",
            "runbooks/ec2-release.yaml",
            "-p",
            &format!("journal={}", forged.display()),
            "-p",
            &param.replacen("instance_id=", "instance_ids=", 1),
            "--yes",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(released["status"], "failed");
    assert!(stderr.contains("fails verification"), "{stderr}");
}

/// H2 against moto through the fault proxy: eight instances in eight VPCs (sixteen
/// interfaces), isolated at once while 80 % of `ModifyNetworkInterfaceAttribute` calls are
/// throttled. Read back afterwards, no interface is in the all-traffic untrack group: each is in
/// the isolation group alone, or (if its move kept failing) back in its original groups and
/// reported so.
#[tokio::test]
async fn heavy_throttling_of_interface_moves_never_leaves_an_interface_open() {
    use crate::support::proxy;
    let _moto = moto::exclusive().await;
    let seeded: Vec<Value> = (0..8).map(|i| sandbox::seed(&format!("web-{i}"))).collect();
    let ec2 = sandbox::ec2().await;
    let dir = tempfile::tempdir().unwrap();
    proxy::faults(
        80,
        serde_json::json!([{"service": "ec2", "operation": "ModifyNetworkInterfaceAttribute",
            "fault": "throttle", "rate": 0.8}]),
    );
    let children: Vec<_> = seeded
        .iter()
        .map(|ids| {
            firebreak()
                .envs(moto::env())
                .env("FIREBREAK_JOURNAL_DIR", dir.path())
                .args([
                    "run",
                    "tests/fixtures/ec2/isolate.yaml",
                    "--output",
                    "json",
                    "-p",
                ])
                .arg(format!(
                    "instance_id={}",
                    ids["instance_id"].as_str().unwrap()
                ))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outcomes: Vec<(i32, Value, String)> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            (
                out.status.code().unwrap_or(-1),
                serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .collect();
    proxy::faults(80, serde_json::json!([]));
    let throttled = proxy::calls()
        .iter()
        .filter(|c| c.operation == "ModifyNetworkInterfaceAttribute" && c.fault.is_some())
        .count();
    assert!(
        throttled > 10,
        "the storm happened: {throttled} throttled moves"
    );
    let mut isolated = 0;
    for ((code, outcome, stderr), ids) in outcomes.iter().zip(&seeded) {
        let instance = ids["instance_id"].as_str().unwrap();
        assert!(
            *code == 0 || *code == 1,
            "{instance}: exit {code}: {stderr}"
        );
        for untrack in sandbox::firebreak_groups(&ec2, "untrack").await {
            assert_eq!(
                sandbox::interfaces_in(&ec2, instance, &untrack).await,
                Vec::<String>::new(),
                "{instance}: an interface left in the all-traffic group: {outcome:#}"
            );
        }
        let outputs = &outcome["steps"][0]["outputs"];
        let Some(isolation) = outputs["isolation_group"].as_str() else {
            // Failed before any move (a read timed out under the load): nothing moved.
            assert_eq!(*code, 1, "{instance}: no outputs: {outcome:#} {stderr}");
            continue;
        };
        assert_eq!(outputs["open"], serde_json::json!([]), "{instance}");
        let enis: Vec<String> =
            serde_json::from_value(ids["network_interface_ids"].clone()).unwrap();
        let in_isolation = sandbox::interfaces_in(&ec2, instance, isolation).await;
        for eni in &enis {
            let reported = outputs["interfaces"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["network_interface_id"] == eni.as_str())
                .unwrap_or_else(|| panic!("{eni} reported: {outcome:#}"));
            if in_isolation.contains(eni) {
                isolated += 1;
                assert_eq!(reported["state"], "isolated", "{reported}");
            } else {
                assert_eq!(reported["state"], "restored", "{reported}");
            }
        }
    }
    assert!(
        isolated >= 12,
        "most interfaces isolated despite the storm: {isolated} of 16"
    );
}

/// M1: a group someone planted with firebreak's name and every firebreak tag, but an inbound
/// rule of their own, is never adopted: the interfaces go to a group firebreak made, which has
/// no rules; and a stale `firebreak:original-groups` tag on an interface that is not in
/// firebreak's groups is not trusted (the groups it has now are recorded instead).
#[tokio::test]
async fn a_planted_group_and_a_forged_original_groups_tag_are_not_trusted() {
    use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, Tag, TagSpecification};
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = ids["instance_id"].as_str().unwrap();
    let vpc = ids["vpc_id"].as_str().unwrap();
    let web = ids["security_groups"]["web"].as_str().unwrap();
    let ec2 = sandbox::ec2().await;
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    let planted = ec2
        .create_security_group()
        .group_name("firebreak-isolation")
        .description("planted")
        .vpc_id(vpc)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::SecurityGroup)
                .tags(tag("firebreak:role", "isolation"))
                .tags(tag("firebreak:managed", "true"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let planted = planted.group_id().unwrap().to_owned();
    ec2.authorize_security_group_ingress()
        .group_id(&planted)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut enis: Vec<String> =
        serde_json::from_value(ids["network_interface_ids"].clone()).unwrap();
    enis.sort();
    // The attacker's version of "what to restore on release".
    ec2.create_tags()
        .resources(&enis[0])
        .tags(tag("firebreak:original-groups", "sg-0wideopen"))
        .send()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let param = format!("instance_id={instance}");
    let outcome = isolate(dir.path(), &param);
    let outputs = &outcome["steps"][0]["outputs"];
    let isolation = outputs["isolation_group"].as_str().unwrap();
    assert_ne!(isolation, planted, "the planted group was adopted");
    assert_eq!(
        sandbox::interfaces_in(&ec2, instance, isolation).await,
        enis
    );
    let group = ec2
        .describe_security_groups()
        .group_ids(isolation)
        .send()
        .await
        .unwrap();
    let group = &group.security_groups()[0];
    assert!(group.ip_permissions().is_empty() && group.ip_permissions_egress().is_empty());
    let first = outputs["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["network_interface_id"] == enis[0].as_str())
        .unwrap();
    let recorded: Vec<String> = serde_json::from_value(first["original_groups"].clone()).unwrap();
    assert!(
        !recorded.contains(&"sg-0wideopen".to_owned()),
        "{recorded:?}"
    );
    let admin = ids["security_groups"]["admin"].as_str().unwrap();
    assert!(
        !recorded.is_empty() && recorded.iter().all(|g| g == web || g == admin),
        "the groups it had are recorded: {recorded:?}"
    );
}

/// H2: an interface a crashed run left in the all-traffic untrack group (its original groups in
/// the tag that run wrote) is taken straight on into isolation by the next attempt — no second
/// untrack move — and its originals come from the tag, not from the untrack group it is in.
#[tokio::test]
async fn an_interface_left_in_the_untrack_group_goes_straight_on_into_isolation() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = ids["instance_id"].as_str().unwrap();
    let web = ids["security_groups"]["web"].as_str().unwrap();
    let ec2 = sandbox::ec2().await;
    let dir = tempfile::tempdir().unwrap();
    let param = format!("instance_id={instance}");
    // A first isolation makes the groups; a release puts everything back.
    let outcome = isolate(dir.path(), &param);
    let outputs = &outcome["steps"][0]["outputs"];
    let untrack = outputs["untrack_group"].as_str().unwrap().to_owned();
    let isolation = outputs["isolation_group"].as_str().unwrap().to_owned();
    let (code, _, stderr) = run(
        dir.path(),
        &["run", "tests/fixtures/ec2/release.yaml", "-p", &param],
    );
    assert_eq!(code, 0, "{stderr}");
    // M1: the release spent the original-groups tags.
    let tagged = ec2
        .describe_network_interfaces()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag-key")
                .values("firebreak:original-groups")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        tagged.network_interfaces().is_empty(),
        "release removes the tags it restored"
    );
    // The crash: the web interface moved into the untrack group, its originals tagged.
    let mut enis: Vec<String> =
        serde_json::from_value(ids["network_interface_ids"].clone()).unwrap();
    enis.sort();
    let web_eni = {
        let mut found = None;
        for eni in &enis {
            if sandbox::interfaces_in(&ec2, instance, web)
                .await
                .contains(eni)
            {
                found = Some(eni.clone());
            }
        }
        found.expect("an interface in the web group")
    };
    ec2.create_tags()
        .resources(&web_eni)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("firebreak:original-groups")
                .value(web)
                .build(),
        )
        .send()
        .await
        .unwrap();
    ec2.modify_network_interface_attribute()
        .network_interface_id(&web_eni)
        .groups(&untrack)
        .send()
        .await
        .unwrap();

    let outcome = isolate(dir.path(), &param);
    assert_eq!(
        sandbox::interfaces_in(&ec2, instance, &isolation).await,
        enis
    );
    assert!(
        sandbox::interfaces_in(&ec2, instance, &untrack)
            .await
            .is_empty()
    );
    let journal = std::path::PathBuf::from(outcome["journal"].as_str().unwrap());
    let moves: Vec<Value> = crate::support::journal::values(&journal)
        .into_iter()
        .filter(|r| {
            r["operation"] == "ModifyNetworkInterfaceAttribute"
                && r["targets"][0] == web_eni.as_str()
        })
        .collect();
    assert_eq!(moves.len(), 1, "straight on into isolation: {moves:#?}");
    assert_eq!(moves[0]["targets"][1], isolation.as_str());
    let reported = outcome["steps"][0]["outputs"]["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["network_interface_id"] == web_eni.as_str())
        .unwrap()
        .clone();
    assert_eq!(reported["original_groups"], serde_json::json!([web]));
}
