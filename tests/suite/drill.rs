//! Drills change nothing: a dry run of every shipped runbook against a moto sandbox leaves
//! moto's state as it was (everything described before and after), and its journal shows no
//! mutating call except EC2 calls sent with DryRun=true.

use std::path::Path;

use crate::support::{firebreak, moto, sandbox};
use aws_sdk_ec2::types::InstanceAttributeName;
use serde_json::{Value, json};

/// Everything a drill could touch, described.
async fn state(instance: &str) -> (Value, Value) {
    let config = moto::direct_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let ssm = aws_sdk_ssm::Client::new(&config);
    let cloudformation = aws_sdk_cloudformation::Client::new(&config);

    let described = ec2.describe_instances().send().await.unwrap();
    let mut instances = Vec::new();
    let mut metadata = serde_json::Map::new();
    for i in described.reservations().iter().flat_map(|r| r.instances()) {
        let id = i.instance_id().unwrap_or_default();
        metadata.insert(id.into(), json!(format!("{:?}", i.metadata_options())));
        instances.push(json!({
            "id": id,
            "state": format!("{:?}", i.state().and_then(|s| s.name())),
            "delete_on_termination": i.block_device_mappings().iter().map(|m| m.ebs().and_then(|e| e.delete_on_termination())).collect::<Vec<_>>(),
            "tags": i.tags().iter().map(|t| format!("{:?}={:?}", t.key(), t.value())).collect::<Vec<_>>(),
        }));
    }
    let protection = ec2
        .describe_instance_attribute()
        .instance_id(instance)
        .attribute(InstanceAttributeName::DisableApiTermination)
        .send()
        .await
        .unwrap();
    let mut interfaces = Vec::new();
    for eni in ec2
        .describe_network_interfaces()
        .send()
        .await
        .unwrap()
        .network_interfaces()
    {
        interfaces.push(json!({
            "id": eni.network_interface_id(),
            "groups": eni.groups().iter().map(|g| g.group_id()).collect::<Vec<_>>(),
            "tags": eni.tag_set().iter().map(|t| format!("{:?}={:?}", t.key(), t.value())).collect::<Vec<_>>(),
        }));
    }
    let groups: Vec<Value> = ec2
        .describe_security_groups()
        .send()
        .await
        .unwrap()
        .security_groups()
        .iter()
        .map(|g| json!({"id": g.group_id(), "in": g.ip_permissions().len(), "out": g.ip_permissions_egress().len()}))
        .collect();
    let volumes: Vec<Value> = ec2
        .describe_volumes()
        .send()
        .await
        .unwrap()
        .volumes()
        .iter()
        .map(|v| json!({"id": v.volume_id(), "attached": v.attachments().iter().map(|a| a.instance_id()).collect::<Vec<_>>()}))
        .collect();
    let snapshots = ec2
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .unwrap()
        .snapshots()
        .iter()
        .map(|s| json!({"id": s.snapshot_id(), "tags": s.tags().len()}))
        .collect::<Vec<_>>();
    let addresses: Vec<Value> = ec2
        .describe_addresses()
        .send()
        .await
        .unwrap()
        .addresses()
        .iter()
        .map(|a| json!({"ip": a.public_ip(), "association": a.association_id()}))
        .collect();
    let profiles: Vec<Value> = ec2
        .describe_iam_instance_profile_associations()
        .send()
        .await
        .unwrap()
        .iam_instance_profile_associations()
        .iter()
        .map(|a| json!({"instance": a.instance_id(), "profile": a.iam_instance_profile().and_then(|p| p.arn()), "state": format!("{:?}", a.state())}))
        .collect();
    let autoscaling_members: Vec<Value> = autoscaling
        .describe_auto_scaling_instances()
        .send()
        .await
        .unwrap()
        .auto_scaling_instances()
        .iter()
        .map(|i| json!({"id": i.instance_id(), "state": i.lifecycle_state(), "protected": i.protected_from_scale_in()}))
        .collect();
    let mut users = Vec::new();
    for user in iam.list_users().send().await.unwrap().users() {
        let name = user.user_name();
        let keys: Vec<Value> = iam
            .list_access_keys()
            .user_name(name)
            .send()
            .await
            .unwrap()
            .access_key_metadata()
            .iter()
            .map(|k| json!({"id": k.access_key_id(), "status": format!("{:?}", k.status())}))
            .collect();
        let inline = iam
            .list_user_policies()
            .user_name(name)
            .send()
            .await
            .unwrap()
            .policy_names()
            .to_vec();
        let attached = iam
            .list_attached_user_policies()
            .user_name(name)
            .send()
            .await
            .unwrap()
            .attached_policies()
            .len();
        let login = iam.get_login_profile().user_name(name).send().await.is_ok();
        let tags = iam
            .list_user_tags()
            .user_name(name)
            .send()
            .await
            .unwrap()
            .tags()
            .len();
        users.push(json!({"name": name, "keys": keys, "inline": inline, "attached": attached, "login": login, "tags": tags}));
    }
    let mut roles = Vec::new();
    for role in iam.list_roles().send().await.unwrap().roles() {
        let name = role.role_name();
        let inline = iam
            .list_role_policies()
            .role_name(name)
            .send()
            .await
            .unwrap()
            .policy_names()
            .to_vec();
        let tags = iam
            .list_role_tags()
            .role_name(name)
            .send()
            .await
            .unwrap()
            .tags()
            .len();
        roles.push(json!({"name": name, "inline": inline, "tags": tags}));
    }
    let commands = ssm.list_commands().send().await.unwrap().commands().len();
    let stacks = cloudformation
        .describe_stacks()
        .send()
        .await
        .unwrap()
        .stacks()
        .len();
    (
        json!({
            "instances": instances, "termination_protection": protection.disable_api_termination().and_then(|v| v.value()),
            "interfaces": interfaces, "groups": groups, "volumes": volumes, "snapshots": snapshots,
            "addresses": addresses, "profiles": profiles, "autoscaling": autoscaling_members,
            "users": users, "roles": roles, "commands": commands, "stacks": stacks,
        }),
        Value::Object(metadata),
    )
}

fn drill(dir: &Path, runbook: &str, params: &[(&str, String)]) -> (i32, Value) {
    let mut command = firebreak();
    command
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", dir)
        .args(["run", runbook, "--dry-run", "--output", "json"]);
    for (k, v) in params {
        command.args(["-p", &format!("{k}={v}")]);
    }
    let out = command.output().unwrap();
    let outcome: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{runbook}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), outcome)
}

#[tokio::test]
async fn a_dry_run_of_every_shipped_runbook_changes_nothing() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = ids["instance_id"].as_str().unwrap().to_owned();
    let config = moto::direct_config().await;
    let iam = aws_sdk_iam::Client::new(&config);
    iam.create_user().user_name("leaky").send().await.unwrap();
    iam.create_login_profile()
        .user_name("leaky")
        .password("Passw0rd!Passw0rd!")
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name("leaky")
        .send()
        .await
        .unwrap();
    let key = key.access_key().unwrap().access_key_id().to_owned();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let volume = ids["volume_ids"][0].as_str().unwrap();
    let snapshot = ec2
        .create_snapshot()
        .volume_id(volume)
        .send()
        .await
        .unwrap()
        .snapshot_id()
        .unwrap()
        .to_owned();
    let prefix_list = sandbox::s3_prefix_list().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    crate::s3_exposure::seed_public_bucket(&s3, "drill-exposed", &[("team", "web")]).await;
    let bucket_before = crate::s3_exposure::describe(&s3, "drill-exposed").await;
    crate::lambda_compromise::seed("drill-fn");
    crate::identity_center::script(&["seed", "drill-user"]);
    let user_before = crate::identity_center::script(&["describe", "drill-user"]);
    let function_before = crate::lambda_compromise::describe("drill-fn");

    let dir = tempfile::tempdir().unwrap();
    let (before, metadata_before) = state(&instance).await;
    let quarantine = ids["quarantine_profile_arn"].as_str().unwrap().to_owned();
    let mut drills: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "runbooks/incident-kickoff.yaml",
            vec![("summary", "drill".into()), ("resources", instance.clone())],
        ),
        (
            "runbooks/ec2-instance-compromise.yaml",
            vec![
                ("instance_id", instance.clone()),
                ("quarantine_profile_arn", quarantine.clone()),
            ],
        ),
        (
            "runbooks/ec2-fleet-containment.yaml",
            vec![("instance_ids", instance.clone())],
        ),
        (
            "runbooks/iam-access-key-compromise.yaml",
            vec![("access_key_id", key.clone())],
        ),
        (
            "runbooks/iam-role-credential-exfiltration.yaml",
            vec![
                ("role_name", "web-1-app".into()),
                ("instance_id", instance.clone()),
            ],
        ),
        (
            "runbooks/s3-bucket-exposure.yaml",
            vec![
                ("bucket", "drill-exposed".into()),
                ("restrict_policy", "true".into()),
            ],
        ),
        (
            "runbooks/lambda-function-compromise.yaml",
            vec![("function_name", "drill-fn".into())],
        ),
        (
            "runbooks/identity-center-user-compromise.yaml",
            vec![("sso_user", "drill-user".into())],
        ),
        (
            "runbooks/forensic-clean-room.yaml",
            vec![
                ("case_id", "drill-1".into()),
                ("snapshot_ids", snapshot.clone()),
                ("availability_zone", "us-east-1a".into()),
                ("s3_prefix_list_id", prefix_list.clone()),
                (
                    "investigator_principal_arn",
                    "arn:aws:iam::123456789012:role/ir".into(),
                ),
            ],
        ),
    ];
    let mut journals = Vec::new();
    for (runbook, params) in drills.drain(..) {
        let (code, outcome) = drill(dir.path(), runbook, &params);
        assert!(
            code == 0 || code == 1,
            "{runbook}: exit {code}: {outcome:#}"
        );
        assert_eq!(outcome["mode"], "dry-run");
        assert!(
            outcome["drill"].is_object(),
            "{runbook}: the summary ends with a drill verdict"
        );
        journals.push((runbook, outcome["journal"].as_str().unwrap().to_owned()));
    }
    // ec2-release drills on the isolation the compromise drill would have made.
    let compromise_journal = journals[1].1.clone();
    let (code, outcome) = drill(
        dir.path(),
        "runbooks/ec2-release.yaml",
        &[
            ("journal", compromise_journal),
            ("instance_ids", instance.clone()),
        ],
    );
    assert!(
        code == 0 || code == 1,
        "ec2-release: exit {code}: {outcome:#}"
    );
    journals.push((
        "runbooks/ec2-release.yaml",
        outcome["journal"].as_str().unwrap().to_owned(),
    ));

    // lambda-release drills on the function containment's drill.
    let function_journal = journals
        .iter()
        .find(|(r, _)| *r == "runbooks/lambda-function-compromise.yaml")
        .unwrap()
        .1
        .clone();
    let (code, outcome) = drill(
        dir.path(),
        "runbooks/lambda-release.yaml",
        &[
            ("journal", function_journal),
            ("function_name", "drill-fn".into()),
        ],
    );
    assert!(
        code == 0 || code == 1,
        "lambda-release: exit {code}: {outcome:#}"
    );
    journals.push((
        "runbooks/lambda-release.yaml",
        outcome["journal"].as_str().unwrap().to_owned(),
    ));
    // identity-center-release drills on the user containment's drill.
    let user_journal = journals
        .iter()
        .find(|(r, _)| *r == "runbooks/identity-center-user-compromise.yaml")
        .unwrap()
        .1
        .clone();
    let (code, outcome) = drill(
        dir.path(),
        "runbooks/identity-center-release.yaml",
        &[("journal", user_journal), ("sso_user", "drill-user".into())],
    );
    assert!(
        code == 0 || code == 1,
        "identity-center-release: exit {code}: {outcome:#}"
    );
    journals.push((
        "runbooks/identity-center-release.yaml",
        outcome["journal"].as_str().unwrap().to_owned(),
    ));
    // iam-release drills on the key containment's drill.
    let key_journal = journals
        .iter()
        .find(|(r, _)| *r == "runbooks/iam-access-key-compromise.yaml")
        .unwrap()
        .1
        .clone();
    let (code, outcome) = drill(
        dir.path(),
        "runbooks/iam-release.yaml",
        &[("journal", key_journal)],
    );
    assert!(
        code == 0 || code == 1,
        "iam-release: exit {code}: {outcome:#}"
    );
    journals.push((
        "runbooks/iam-release.yaml",
        outcome["journal"].as_str().unwrap().to_owned(),
    ));
    // s3-release drills on the bucket containment's drill.
    let bucket_journal = journals
        .iter()
        .find(|(r, _)| *r == "runbooks/s3-bucket-exposure.yaml")
        .unwrap()
        .1
        .clone();
    let (code, outcome) = drill(
        dir.path(),
        "runbooks/s3-release.yaml",
        &[
            ("journal", bucket_journal),
            ("bucket", "drill-exposed".into()),
        ],
    );
    assert!(
        code == 0 || code == 1,
        "s3-release: exit {code}: {outcome:#}"
    );
    journals.push((
        "runbooks/s3-release.yaml",
        outcome["journal"].as_str().unwrap().to_owned(),
    ));
    // Every shipped runbook was drilled.
    for entry in std::fs::read_dir("runbooks").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let shipped = format!("runbooks/{}", path.file_name().unwrap().to_string_lossy());
            assert!(
                journals.iter().any(|(r, _)| *r == shipped),
                "{shipped} has no drill here"
            );
        }
    }

    let (after, metadata_after) = state(&instance).await;
    assert_eq!(before, after, "a drill changed moto's state");
    assert_eq!(
        crate::s3_exposure::describe(&s3, "drill-exposed").await,
        bucket_before,
        "a drill changed the bucket"
    );
    assert_eq!(
        crate::lambda_compromise::describe("drill-fn"),
        function_before,
        "a drill changed the function"
    );
    assert_eq!(
        crate::identity_center::script(&["describe", "drill-user"]),
        user_before,
        "a drill changed the Identity Center user"
    );

    let mut metadata_applied_by_moto = false;
    for (runbook, journal) in &journals {
        for record in crate::support::journal::values(Path::new(journal)) {
            if record["type"] != "api_call" {
                continue;
            }
            let operation = record["operation"].as_str().unwrap_or_default();
            if !crate::support::journal::is_mutating(operation) {
                continue;
            }
            let outcome = record["outcome"].as_str().unwrap_or_default();
            let dry_run_ec2 = record["service"] == "ec2" && record["dry_run"] == true;
            assert!(
                dry_run_ec2 || outcome.starts_with("not-sent"),
                "{runbook}: mutating call {operation} was sent for real: {record}"
            );
            metadata_applied_by_moto |= outcome == "applied-despite-dry-run";
        }
    }
    // moto 5.2.5 applies ModifyInstanceMetadataOptions even with DryRun=true (AWS does not). The
    // engine flags that call as "applied-despite-dry-run" and fails the step; that is the only
    // difference allowed, and only together with that flag.
    if metadata_before != metadata_after {
        assert!(
            metadata_applied_by_moto,
            "metadata options changed without the journal saying so"
        );
    }

    // Every drill walked every step: a step that would fail (moto's flagged metadata call
    // included) is recorded and the drill goes on; nothing is left unvisited.
    for (runbook, journal) in &journals {
        let loaded = firebreak::check::load(Path::new(runbook)).unwrap().runbook;
        let records = crate::support::journal::values(Path::new(journal));
        for step in &loaded.steps {
            let visited = records.iter().any(|r| {
                ["step_started", "step_skipped"].contains(&r["type"].as_str().unwrap_or_default())
                    && r["step"] == step.id.as_str()
            });
            assert!(
                visited,
                "{runbook}: the drill never reached step `{}`",
                step.id
            );
        }
        let finished = records.last().unwrap();
        let failed = records.iter().any(|r| r["type"] == "step_failed");
        assert_eq!(
            finished["status"],
            if failed { "failed" } else { "succeeded" },
            "{runbook}: exit 1 when any step would fail, else 0"
        );
    }
}
