//! Lost answers: the proxy forwards the first request of one operation to moto (the change
//! happens) and answers the client HTTP 500. Every run must end as if the answer had come:
//! succeeded, in the intended state, and the change made once — its own work found again by
//! tag, token, name or the state read back, never made a second time. One test per operation,
//! each on the fixture and setup of that operation's own tests.

use std::path::Path;

use aws_sdk_ec2::types::Filter;
use serde_json::{Value, json};

use crate::support::json::{str_of, strings};
use crate::support::proxy::{self, WireCall};
use crate::support::run::{Ran, ec2_fixture, id};
use crate::support::{cli_on_moto, moto, sandbox};

const ISOLATE: &str = "tests/fixtures/ec2/isolate.yaml";
const KEY_RUNBOOK: &str = "runbooks/iam-access-key-compromise.yaml";
const ROLE_FIXTURE: &str = "tests/fixtures/iam/role-revoke.yaml";
const QUARANTINE_ARN: &str = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3";

/// The proxy loses the answer to the first real (not DryRun) `service:operation` request.
fn lose_first(service: &str, operation: &str) {
    proxy::faults(
        7,
        json!([{"service": service, "operation": operation, "fault": "lost",
            "rate": 1.0, "max": 1, "dry_run": false}]),
    );
}

/// Clears the fault rule and checks that it fired: the first `operation` request's answer, and
/// only that one, was lost.
fn assert_lost_once(operation: &str) {
    let calls: Vec<WireCall> = proxy::calls()
        .into_iter()
        .filter(|c| c.operation == operation && !c.dry_run)
        .collect();
    proxy::faults(0, json!([]));
    let lost = calls
        .iter()
        .filter(|c| c.fault.as_deref() == Some("lost"))
        .count();
    assert!(
        lost == 1 && calls[0].fault.as_deref() == Some("lost"),
        "the first answer to {operation} was lost, and only it: {calls:#?}"
    );
}

/// `firebreak ARGS --output json` on moto with the first answer to `operation` lost: the
/// outcome, which must say succeeded (exit 0).
fn cli_losing(dir: &Path, service: &str, operation: &str, args: &[&str]) -> Value {
    lose_first(service, operation);
    let (code, outcome, stderr) = cli_on_moto(dir, args);
    assert_lost_once(operation);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(outcome["status"], "succeeded", "{outcome:#}");
    outcome
}

/// `tests/fixtures/ec2/<fixture>` run in-process on moto with the first answer to `operation`
/// lost; it must succeed.
async fn fixture_losing(
    dir: &Path,
    service: &str,
    operation: &str,
    fixture: &str,
    params: &[(&str, &str)],
) -> Ran {
    lose_first(service, operation);
    let ran = ec2_fixture(dir, fixture, params, false).await;
    assert_lost_once(operation);
    ran.assert_succeeded();
    ran
}

/// The outputs of `step` in a `--output json` outcome.
fn outputs<'a>(outcome: &'a Value, step: &str) -> &'a Value {
    &crate::support::json::step(outcome, step)["outputs"]
}

fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

/// Snapshots in moto carrying `key=value` (never an unfiltered list: moto ships ~1,300).
async fn snapshots_tagged(key: &str, value: &str) -> Vec<aws_sdk_ec2::types::Snapshot> {
    sandbox::ec2()
        .await
        .describe_snapshots()
        .filters(tag_filter(key, value))
        .send()
        .await
        .unwrap()
        .snapshots()
        .to_vec()
}

async fn volumes_tagged(key: &str, value: &str) -> Vec<aws_sdk_ec2::types::Volume> {
    sandbox::ec2()
        .await
        .describe_volumes()
        .filters(tag_filter(key, value))
        .send()
        .await
        .unwrap()
        .volumes()
        .to_vec()
}

fn sorted(mut values: Vec<String>) -> Vec<String> {
    values.sort();
    values
}

// --- EC2: snapshots, isolation, tags ---------------------------------------------------------

/// CreateSnapshots takes no client token. Its answer lost, the step must find the set EC2 made
/// by its idempotency tag before sending again: one snapshot per volume for the case, and those
/// are the ones the outputs name.
#[tokio::test]
async fn a_lost_create_snapshots_leaves_one_snapshot_per_volume() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let dir = tempfile::tempdir().unwrap();
    let param = format!("instance_id={}", str_of(&ids["instance_id"]));
    let outcome = cli_losing(
        dir.path(),
        "ec2",
        "CreateSnapshots",
        &[
            "run",
            "tests/fixtures/ec2/snapshot.yaml",
            "--yes",
            "-p",
            &param,
            "-p",
            "case_id=lost-1",
        ],
    );
    let made = snapshots_tagged("firebreak:case", "lost-1").await;
    let volumes: Vec<String> = made
        .iter()
        .map(|s| s.volume_id().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        sorted(volumes),
        sorted(strings(&ids["volume_ids"])),
        "one snapshot per volume: {made:#?}"
    );
    let in_moto: Vec<String> = made
        .iter()
        .map(|s| s.snapshot_id().unwrap_or_default().to_owned())
        .collect();
    let reported = strings(&outputs(&outcome, "snapshot")["snapshot_ids"]);
    assert_eq!(sorted(reported), sorted(in_moto));
}

/// `tests/fixtures/ec2/isolate.yaml` on the sandbox — strategy untrack-then-isolate, its
/// default — with the first answer to `operation` lost: the seeded ids and the step's outputs.
fn isolate_losing(dir: &Path, operation: &str) -> (Value, Value) {
    let ids = sandbox::seed("web-1");
    let param = format!("instance_id={}", str_of(&ids["instance_id"]));
    let outcome = cli_losing(dir, "ec2", operation, &["run", ISOLATE, "-p", &param]);
    let out = outputs(&outcome, "isolate").clone();
    assert_eq!(out["strategy"], "untrack-then-isolate", "{out:#}");
    (ids, out)
}

/// Every interface of the instance in the isolation group and in no other, none open.
async fn assert_isolated(ids: &Value, out: &Value) {
    let ec2 = sandbox::ec2().await;
    let instance = str_of(&ids["instance_id"]);
    let isolation = str_of(&out["isolation_group"]);
    assert_eq!(
        sandbox::interfaces_in(&ec2, instance, isolation).await,
        sorted(strings(&ids["network_interface_ids"]))
    );
    for group in [
        &out["untrack_group"],
        &ids["security_groups"]["web"],
        &ids["security_groups"]["admin"],
    ] {
        assert_eq!(
            sandbox::interfaces_in(&ec2, instance, str_of(group)).await,
            Vec::<String>::new(),
            "an interface is still in {group}: {out:#}"
        );
    }
    assert_eq!(out["open"], json!([]), "{out:#}");
}

/// CreateSecurityGroup takes no client token. The isolation group's answer lost, the run must
/// adopt the group EC2 made — by its firebreak tags, its rules finished — instead of making a
/// second (under either of its names): one isolation group, `firebreak-isolation`, with no
/// rules, and every interface in it.
#[tokio::test]
async fn a_lost_create_security_group_adopts_the_group_it_made() {
    let _moto = moto::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let (ids, out) = isolate_losing(dir.path(), "CreateSecurityGroup");
    let ec2 = sandbox::ec2().await;
    let isolation = str_of(&out["isolation_group"]);
    assert_eq!(
        sandbox::firebreak_groups(&ec2, "isolation").await,
        [isolation]
    );
    assert_eq!(sandbox::firebreak_groups(&ec2, "untrack").await.len(), 1);
    let described = ec2
        .describe_security_groups()
        .group_ids(isolation)
        .send()
        .await
        .unwrap();
    let group = &described.security_groups()[0];
    assert_eq!(group.group_name(), Some("firebreak-isolation"));
    assert!(
        group.ip_permissions().is_empty() && group.ip_permissions_egress().is_empty(),
        "the adopted group was finished: {group:?}"
    );
    assert_isolated(&ids, &out).await;
}

/// AuthorizeSecurityGroupIngress on the untrack group (untrack-then-isolate): its answer lost,
/// the rule already there is the run's own, not a failure. One untrack group, allowing all
/// traffic in exactly once (0.0.0.0/0 and ::/0), and every interface moved through it into
/// isolation.
#[tokio::test]
async fn a_lost_untrack_ingress_rule_is_not_added_twice() {
    let _moto = moto::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let (ids, out) = isolate_losing(dir.path(), "AuthorizeSecurityGroupIngress");
    let ec2 = sandbox::ec2().await;
    let untrack = str_of(&out["untrack_group"]);
    assert_eq!(sandbox::firebreak_groups(&ec2, "untrack").await, [untrack]);
    let described = ec2
        .describe_security_groups()
        .group_ids(untrack)
        .send()
        .await
        .unwrap();
    let rules = described.security_groups()[0].ip_permissions();
    assert!(
        rules.iter().all(|r| r.ip_protocol() == Some("-1")),
        "{rules:?}"
    );
    let v4: Vec<&str> = rules
        .iter()
        .flat_map(|r| r.ip_ranges())
        .filter_map(|r| r.cidr_ip())
        .collect();
    let v6: Vec<&str> = rules
        .iter()
        .flat_map(|r| r.ipv6_ranges())
        .filter_map(|r| r.cidr_ipv6())
        .collect();
    assert_eq!((v4, v6), (vec!["0.0.0.0/0"], vec!["::/0"]), "{rules:?}");
    assert_eq!(out["tracked_flows_may_survive"], json!([]), "{out:#}");
    assert_isolated(&ids, &out).await;
}

/// The first ModifyNetworkInterfaceAttribute (an interface into the untrack group): its answer
/// lost, setting the same groups again changes nothing. Every interface ends in the isolation
/// group alone, by way of the untrack group (none reported with tracked flows surviving), each
/// read back as isolated.
#[tokio::test]
async fn a_lost_interface_move_still_isolates_every_interface_once() {
    let _moto = moto::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let (ids, out) = isolate_losing(dir.path(), "ModifyNetworkInterfaceAttribute");
    assert_eq!(out["tracked_flows_may_survive"], json!([]), "{out:#}");
    let reported = out["interfaces"].as_array().unwrap();
    assert_eq!(reported.len(), 2, "{out:#}");
    assert!(
        reported
            .iter()
            .all(|i| i["state"] == "isolated" && i["verified"] == true),
        "{out:#}"
    );
    assert_isolated(&ids, &out).await;
}

/// CreateTags: its answer lost, tagging again is the same tagging. The instance, its volumes and
/// its interfaces each carry the case tag once, with the case's value.
#[tokio::test]
async fn a_lost_create_tags_tags_each_resource_once() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = str_of(&ids["instance_id"]);
    let dir = tempfile::tempdir().unwrap();
    let param = format!("instance_id={instance}");
    let outcome = cli_losing(
        dir.path(),
        "ec2",
        "CreateTags",
        &[
            "run",
            "tests/fixtures/ec2/tag.yaml",
            "--yes",
            "-p",
            &param,
            "-p",
            "case_id=case-7",
        ],
    );
    assert_eq!(outputs(&outcome, "tag")["tagged"], 5);
    let mut expected = vec![instance.to_owned()];
    expected.extend(strings(&ids["volume_ids"]));
    expected.extend(strings(&ids["network_interface_ids"]));
    let described = sandbox::tagged_with("firebreak:case").await;
    let tagged: Vec<String> = described.keys().cloned().collect();
    assert_eq!(sorted(tagged), sorted(expected));
    assert!(described.values().all(|v| v == "case-7"), "{described:?}");
}

// --- EC2: profile, addresses, Auto Scaling ----------------------------------------------------

/// ReplaceIamInstanceProfileAssociation takes no client token (and AWS retires the old
/// association id once it has worked). Its answer lost, the association read back holding the
/// quarantine profile is the run's own: exactly one association on the instance, with the
/// quarantine profile, and the original recorded on the instance.
#[tokio::test]
async fn a_lost_profile_replacement_leaves_one_association() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let original = id(&ids, "instance_profile_arn");
    let quarantine = id(&ids, "quarantine_profile_arn");
    let dir = tempfile::tempdir().unwrap();
    let ran = fixture_losing(
        dir.path(),
        "ec2",
        "ReplaceIamInstanceProfileAssociation",
        "profile-replace.yaml",
        &[
            ("instance_id", instance.as_str()),
            ("replacement", quarantine.as_str()),
        ],
    )
    .await;
    let out = ran.outputs("profile");
    assert_eq!(out["done"], "replaced", "{out}");
    assert_eq!(out["original"]["arn"], original.as_str());
    assert_eq!(out["current"]["arn"], quarantine.as_str());
    let ec2 = sandbox::ec2().await;
    let described = ec2
        .describe_iam_instance_profile_associations()
        .filters(
            Filter::builder()
                .name("instance-id")
                .values(&instance)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let live: Vec<_> = described
        .iam_instance_profile_associations()
        .iter()
        .filter(|a| {
            a.state()
                .is_some_and(|s| matches!(s.as_str(), "associated" | "associating"))
        })
        .collect();
    assert_eq!(live.len(), 1, "{described:?}");
    assert_eq!(
        sandbox::associated_profile(&ec2, &instance).await,
        Some(quarantine)
    );
    let described = ec2
        .describe_instances()
        .instance_ids(&instance)
        .send()
        .await
        .unwrap();
    let recorded: Vec<&str> = described.reservations()[0].instances()[0]
        .tags()
        .iter()
        .filter(|t| t.key() == Some("firebreak:original-instance-profile"))
        .filter_map(|t| t.value())
        .collect();
    assert_eq!(recorded, [original.as_str()]);
}

/// DisassociateAddress: once it has worked the association id is gone and a second send fails.
/// Its answer lost, the run must read the address back: disassociated, still allocated, and
/// reported as done by this run.
#[tokio::test]
async fn a_lost_disassociate_address_is_found_done() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let allocation = id(&ids, "eip_allocation_id");
    let dir = tempfile::tempdir().unwrap();
    let ran = fixture_losing(
        dir.path(),
        "ec2",
        "DisassociateAddress",
        "addresses.yaml",
        &[("instance_id", instance.as_str())],
    )
    .await;
    let out = ran.outputs("addresses");
    assert_eq!(out["changed"], true, "{out}");
    let reported = out["addresses"].as_array().unwrap();
    assert_eq!(reported.len(), 1, "{out}");
    assert_eq!(reported[0]["allocation_id"], allocation.as_str());
    let described = sandbox::ec2()
        .await
        .describe_addresses()
        .filters(
            Filter::builder()
                .name("allocation-id")
                .values(&allocation)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(described.addresses().len(), 1, "still allocated");
    assert_eq!(
        described.addresses()[0].association_id(),
        None,
        "{described:?}"
    );
}

async fn autoscaling() -> aws_sdk_autoscaling::Client {
    aws_sdk_autoscaling::Client::new(&moto::direct_config().await)
}

/// The instance's (lifecycle state, protected from scale-in), if it is in a group.
async fn membership(
    client: &aws_sdk_autoscaling::Client,
    instance: &str,
) -> Option<(String, bool)> {
    let out = client
        .describe_auto_scaling_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap();
    out.auto_scaling_instances().first().map(|i| {
        (
            i.lifecycle_state().unwrap_or_default().to_owned(),
            i.protected_from_scale_in().unwrap_or_default(),
        )
    })
}

/// The group's desired capacity and its instances.
async fn group_state(client: &aws_sdk_autoscaling::Client, group: &str) -> (i32, Vec<String>) {
    let out = client
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .unwrap();
    let group = &out.auto_scaling_groups()[0];
    let instances = group
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect();
    (group.desired_capacity().unwrap_or_default(), instances)
}

/// DetachInstances: once it has worked a second send fails (the instance is not in the group).
/// Its answer lost, the run must read the membership back: the instance out of the group, the
/// desired capacity unchanged, one replacement launched.
#[tokio::test]
async fn a_lost_detach_instances_is_found_done() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let group = id(&ids, "autoscaling_group");
    let dir = tempfile::tempdir().unwrap();
    let ran = fixture_losing(
        dir.path(),
        "autoscaling",
        "DetachInstances",
        "autoscaling.yaml",
        &[("instance_id", instance.as_str())],
    )
    .await;
    let out = ran.outputs("detach");
    assert_eq!(
        out["done"],
        json!(["set_instance_protection", "detach_instances"]),
        "{out}"
    );
    let client = autoscaling().await;
    assert_eq!(membership(&client, &instance).await, None);
    let (desired, members) = group_state(&client, &group).await;
    assert_eq!(desired, 1, "not decremented");
    assert_eq!(members.len(), 1, "one replacement: {members:?}");
    assert!(!members.contains(&instance), "{members:?}");
}

/// EnterStandby with the desired capacity decremented: a second send would decrement it again
/// (moto) or fail (AWS: the instance is no longer InService). Its answer lost, the run must read
/// the membership back: in standby, protected, and the capacity decremented once.
#[tokio::test]
async fn a_lost_enter_standby_decrements_the_capacity_once() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let group = id(&ids, "autoscaling_group");
    let client = autoscaling().await;
    // moto lets the group go to 0 only if its minimum allows it.
    client
        .update_auto_scaling_group()
        .auto_scaling_group_name(&group)
        .min_size(0)
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ran = fixture_losing(
        dir.path(),
        "autoscaling",
        "EnterStandby",
        "autoscaling.yaml",
        &[
            ("instance_id", instance.as_str()),
            ("mode", "standby"),
            ("decrement", "true"),
        ],
    )
    .await;
    let out = ran.outputs("detach");
    assert_eq!(
        out["done"],
        json!(["set_instance_protection", "enter_standby"]),
        "{out}"
    );
    assert_eq!(
        membership(&client, &instance).await,
        Some(("Standby".into(), true))
    );
    assert_eq!(group_state(&client, &group).await.0, 0, "decremented once");
}

// --- IAM ---------------------------------------------------------------------------------------

async fn iam() -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&moto::direct_config().await)
}

/// `iam-access-key-compromise` on the first of `alice`'s two access keys (she has a console
/// password too, as in iam_credentials.rs), approvals given, with the first answer to
/// `operation` lost: alice's key ids and the outcome, which must say succeeded.
async fn key_runbook_losing(dir: &Path, operation: &str) -> (Vec<String>, Value) {
    let iam = iam().await;
    iam.create_user().user_name("alice").send().await.unwrap();
    let mut keys = Vec::new();
    for _ in 0..2 {
        let made = iam
            .create_access_key()
            .user_name("alice")
            .send()
            .await
            .unwrap();
        keys.push(made.access_key().unwrap().access_key_id().to_owned());
    }
    iam.create_login_profile()
        .user_name("alice")
        .password("Correct-Horse-9!")
        .send()
        .await
        .unwrap();
    let param = format!("access_key_id={}", keys[0]);
    let outcome = cli_losing(
        dir,
        "iam",
        operation,
        &[
            "run",
            KEY_RUNBOOK,
            "-p",
            &param,
            "-p",
            "case_id=CASE-LOST",
            "--yes",
        ],
    );
    (keys, outcome)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], text.get(i + 1..i + 3)) {
            (b'%', Some(hex)) if u8::from_str_radix(hex, 16).is_ok() => {
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// The cutoff in an `AWSRevokeOlderSessions` document (URL-encoded, as IAM returns it).
fn cutoff_in(document: &str) -> String {
    let document: Value = serde_json::from_str(&percent_decode(document)).unwrap();
    document["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
        .as_str()
        .unwrap_or_else(|| panic!("no cutoff in {document}"))
        .to_owned()
}

/// UpdateAccessKey: its answer lost, setting the key Inactive again is the same setting. The
/// leaked key reads Inactive, the other key stays Active, and the step reports the status it
/// read back.
#[tokio::test]
async fn a_lost_update_access_key_disables_the_key() {
    let _moto = moto::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let (keys, outcome) = key_runbook_losing(dir.path(), "UpdateAccessKey").await;
    assert_eq!(outputs(&outcome, "disable_key")["status"], "Inactive");
    let statuses = sandbox::key_statuses(&iam().await, "alice").await;
    let mut expected = vec![
        (keys[0].clone(), "Inactive".to_owned()),
        (keys[1].clone(), "Active".to_owned()),
    ];
    expected.sort();
    assert_eq!(statuses, expected);
}

/// PutUserPolicy (the session revocation): its answer lost, putting the same document again is
/// the same policy. One inline policy, `AWSRevokeOlderSessions`, with the cutoff the step
/// reports.
#[tokio::test]
async fn a_lost_put_user_policy_leaves_one_revocation_with_the_reported_cutoff() {
    let _moto = moto::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, outcome) = key_runbook_losing(dir.path(), "PutUserPolicy").await;
    let iam = iam().await;
    let names = iam
        .list_user_policies()
        .user_name("alice")
        .send()
        .await
        .unwrap();
    assert_eq!(names.policy_names(), ["AWSRevokeOlderSessions"]);
    let policy = iam
        .get_user_policy()
        .user_name("alice")
        .policy_name("AWSRevokeOlderSessions")
        .send()
        .await
        .unwrap();
    assert_eq!(
        outputs(&outcome, "revoke_sessions")["cutoff"],
        cutoff_in(policy.policy_document()).as_str()
    );
}

/// AttachUserPolicy (the quarantine): its answer lost, attaching again is the same attachment.
/// The user holds the quarantine policy, once.
#[tokio::test]
async fn a_lost_attach_user_policy_attaches_the_quarantine_once() {
    let _moto = moto::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, outcome) = key_runbook_losing(dir.path(), "AttachUserPolicy").await;
    assert_eq!(
        outputs(&outcome, "quarantine")["policy_arn"],
        QUARANTINE_ARN
    );
    let attached = iam()
        .await
        .list_attached_user_policies()
        .user_name("alice")
        .send()
        .await
        .unwrap();
    let arns: Vec<&str> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    assert_eq!(arns, [QUARANTINE_ARN]);
}

/// DeleteLoginProfile: once it has worked a second send fails (NoSuchEntity). Its answer lost,
/// the run must read the profile back and count the deletion as its own: the console password
/// gone, reported as deleted by this step — not by "someone else".
#[tokio::test]
async fn a_lost_delete_login_profile_is_found_done() {
    let _moto = moto::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, outcome) = key_runbook_losing(dir.path(), "DeleteLoginProfile").await;
    let out = outputs(&outcome, "delete_console_password");
    assert_eq!(out["existed"], true, "{out}");
    assert_eq!(out["changed"], true, "{out}");
    assert_eq!(out["deleted_by_someone_else"], Value::Null, "{out}");
    let profile = iam()
        .await
        .get_login_profile()
        .user_name("alice")
        .send()
        .await;
    assert!(profile.is_err(), "the login profile is still there");
}

/// A role `web-app` (trusting EC2), made straight in moto.
async fn create_role(iam: &aws_sdk_iam::Client) {
    iam.create_role()
        .role_name("web-app")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap();
}

/// PutRolePolicy (the session revocation, the first of the role fixture's two inline policies):
/// its answer lost, putting the same document again is the same policy. The role holds each
/// inline policy once, and the revocation has the cutoff the step reports.
#[tokio::test]
async fn a_lost_put_role_policy_leaves_each_inline_policy_once() {
    let _moto = moto::exclusive().await;
    let iam = iam().await;
    create_role(&iam).await;
    let dir = tempfile::tempdir().unwrap();
    let outcome = cli_losing(
        dir.path(),
        "iam",
        "PutRolePolicy",
        &["run", ROLE_FIXTURE, "-p", "role_name=web-app"],
    );
    let names = iam
        .list_role_policies()
        .role_name("web-app")
        .send()
        .await
        .unwrap();
    assert_eq!(
        sorted(names.policy_names().to_vec()),
        ["AWSRevokeOlderSessions", "firebreak-quarantine"]
    );
    let policy = iam
        .get_role_policy()
        .role_name("web-app")
        .policy_name("AWSRevokeOlderSessions")
        .send()
        .await
        .unwrap();
    assert_eq!(
        outputs(&outcome, "revoke_sessions")["cutoff"],
        cutoff_in(policy.policy_document()).as_str()
    );
}

/// AttachRolePolicy (the managed quarantine on a role; `tests/fixtures/lost/role-quarantine.yaml`,
/// since the shipped runbooks quarantine roles inline): its answer lost, attaching again is the
/// same attachment. The role holds the quarantine policy, once.
#[tokio::test]
async fn a_lost_attach_role_policy_attaches_the_quarantine_once() {
    let _moto = moto::exclusive().await;
    let iam = iam().await;
    create_role(&iam).await;
    let dir = tempfile::tempdir().unwrap();
    let outcome = cli_losing(
        dir.path(),
        "iam",
        "AttachRolePolicy",
        &[
            "run",
            "tests/fixtures/lost/role-quarantine.yaml",
            "-p",
            "role_name=web-app",
        ],
    );
    assert_eq!(
        outputs(&outcome, "quarantine")["policy_arn"],
        QUARANTINE_ARN
    );
    let attached = iam
        .list_attached_role_policies()
        .role_name("web-app")
        .send()
        .await
        .unwrap();
    let arns: Vec<&str> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    assert_eq!(arns, [QUARANTINE_ARN]);
}

// --- CloudFormation, SSM, the clean room ------------------------------------------------------

/// CreateStack carries a client token and the step's idempotency tag. Its answer lost, a second
/// send meets the stack already there, which is the step's own: one stack, complete, with the
/// clean room's outputs.
#[tokio::test]
async fn a_lost_create_stack_makes_one_stack() {
    let _moto = moto::exclusive().await;
    let prefix = format!("s3_prefix_list_id={}", sandbox::s3_prefix_list().await);
    let dir = tempfile::tempdir().unwrap();
    let outcome = cli_losing(
        dir.path(),
        "cloudformation",
        "CreateStack",
        &[
            "run",
            "tests/fixtures/clean-room/stack-only.yaml",
            "-p",
            "case_id=lost-7",
            "-p",
            "availability_zone=us-east-1a",
            "-p",
            &prefix,
        ],
    );
    let out = outputs(&outcome, "clean_room");
    assert_eq!(out["status"], "CREATE_COMPLETE", "{out}");
    assert!(
        out["outputs"]["WorkstationInstanceId"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "{out}"
    );
    let stacks = aws_sdk_cloudformation::Client::new(&moto::direct_config().await)
        .describe_stacks()
        .send()
        .await
        .unwrap();
    assert_eq!(stacks.stacks().len(), 1, "one stack, not two");
    assert_eq!(stacks.stacks()[0].stack_id(), out["stack_id"].as_str());
}

/// SendCommand takes no client token. Its answer lost, the step must find the command it sent
/// by its comment (the idempotency key) instead of sending another: one command on the
/// instance, the one the outputs name, and it succeeded.
#[tokio::test]
async fn a_lost_send_command_runs_the_command_once() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = str_of(&ids["instance_id"]);
    sandbox::bucket("evidence-bucket").await;
    let dir = tempfile::tempdir().unwrap();
    let param = format!("instance_id={instance}");
    let outcome = cli_losing(
        dir.path(),
        "ssm",
        "SendCommand",
        &["run", "tests/fixtures/ssm/collect.yaml", "-p", &param],
    );
    let out = outputs(&outcome, "collect");
    assert_eq!(out["status"], "Success", "{out}");
    let commands = aws_sdk_ssm::Client::new(&moto::direct_config().await)
        .list_commands()
        .instance_id(instance)
        .send()
        .await
        .unwrap();
    assert_eq!(commands.commands().len(), 1, "{commands:?}");
    assert_eq!(
        commands.commands()[0].command_id(),
        out["command_id"].as_str()
    );
}

/// `runbooks/forensic-clean-room.yaml` (as clean_room.rs runs it) for `case` on snapshots of
/// the sandbox's two volumes, made straight in moto, with the first answer to `operation` lost:
/// the source snapshots and the outcome, which must say succeeded.
async fn clean_room_losing(dir: &Path, operation: &str, case: &str) -> (Vec<String>, Value) {
    let ids = sandbox::seed("web-1");
    let ec2 = sandbox::ec2().await;
    let mut sources = Vec::new();
    for volume in strings(&ids["volume_ids"]) {
        let made = ec2
            .create_snapshot()
            .volume_id(&volume)
            .description(format!("evidence for {case}"))
            .send()
            .await
            .unwrap();
        sources.push(made.snapshot_id().unwrap().to_owned());
    }
    let prefix = format!("s3_prefix_list_id={}", sandbox::s3_prefix_list().await);
    let outcome = cli_losing(
        dir,
        "ec2",
        operation,
        &[
            "run",
            "runbooks/forensic-clean-room.yaml",
            "-p",
            &format!("case_id={case}"),
            "-p",
            "availability_zone=us-east-1a",
            "-p",
            &format!("snapshot_ids={}", sources.join(",")),
            "-p",
            &prefix,
            "-p",
            "investigator_principal_arn=arn:aws:iam::123456789012:role/ir-team",
        ],
    );
    (sources, outcome)
}

/// The clean room's workstation, and each evidence volume (one per copy, found by its
/// source-snapshot tag) attached to it alone.
async fn assert_one_volume_per_copy_on_the_workstation(outcome: &Value) {
    let workstation = str_of(&outputs(outcome, "clean_room")["outputs"]["WorkstationInstanceId"]);
    let copies = strings(&outputs(outcome, "copy")["snapshot_ids"]);
    let attached = strings(&outputs(outcome, "attach")["volume_ids"]);
    assert_eq!(attached.len(), copies.len(), "{outcome:#}");
    for (copy, reported) in copies.iter().zip(&attached) {
        let volumes = volumes_tagged("firebreak:source-snapshot", copy).await;
        assert_eq!(volumes.len(), 1, "one volume from {copy}: {volumes:#?}");
        let volume = &volumes[0];
        assert_eq!(volume.volume_id(), Some(reported.as_str()));
        let on: Vec<&str> = volume
            .attachments()
            .iter()
            .filter_map(|a| a.instance_id())
            .collect();
        assert_eq!(on, [workstation], "{volume:?}");
    }
}

/// The idempotency key of the run's step `step` (`<run>.<step>`), which tags what it made.
fn step_key(outcome: &Value, step: &str) -> String {
    format!("{}.{step}", str_of(&outcome["run_id"]))
}

/// CopySnapshot takes no client token. Its answer lost, the step must find the copy EC2 made by
/// its idempotency and source-snapshot tags: one copy of each source, the ones the outputs name,
/// each on the workstation as one volume.
#[tokio::test]
async fn a_lost_copy_snapshot_makes_one_copy_of_each_snapshot() {
    let _moto = moto::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let (sources, outcome) = clean_room_losing(dir.path(), "CopySnapshot", "lost-copy").await;
    let copies = strings(&outputs(&outcome, "copy")["snapshot_ids"]);
    assert_eq!(copies.len(), sources.len(), "{outcome:#}");
    for (source, reported) in sources.iter().zip(&copies) {
        let made = snapshots_tagged("firebreak:source-snapshot", source).await;
        assert_eq!(made.len(), 1, "one copy of {source}: {made:#?}");
        assert_eq!(made[0].snapshot_id(), Some(reported.as_str()));
    }
    let key = step_key(&outcome, "copy");
    assert_eq!(
        snapshots_tagged("firebreak:idempotency-key", &key)
            .await
            .len(),
        sources.len()
    );
    assert_one_volume_per_copy_on_the_workstation(&outcome).await;
}

/// CreateVolume takes no client token. Its answer lost, the step must find the volume EC2 made
/// by its idempotency tag and snapshot before creating another: one evidence volume per copy,
/// attached to the workstation.
#[tokio::test]
async fn a_lost_create_volume_makes_one_volume_per_snapshot() {
    let _moto = moto::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let (sources, outcome) = clean_room_losing(dir.path(), "CreateVolume", "lost-volume").await;
    assert_one_volume_per_copy_on_the_workstation(&outcome).await;
    let made = volumes_tagged("firebreak:idempotency-key", &step_key(&outcome, "attach")).await;
    assert_eq!(made.len(), sources.len(), "{made:#?}");
}

/// AttachVolume: its answer lost, the volume read back attached to the workstation is the run's
/// own (AWS answers a second attachment with VolumeInUse). Each evidence volume attached once,
/// to the workstation, and the hash step ran on them.
#[tokio::test]
async fn a_lost_attach_volume_attaches_each_volume_once() {
    let _moto = moto::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let (sources, outcome) = clean_room_losing(dir.path(), "AttachVolume", "lost-attach").await;
    assert_one_volume_per_copy_on_the_workstation(&outcome).await;
    let made = volumes_tagged("firebreak:idempotency-key", &step_key(&outcome, "attach")).await;
    assert_eq!(made.len(), sources.len(), "{made:#?}");
    assert_eq!(outputs(&outcome, "hash")["status"], "Success");
}
