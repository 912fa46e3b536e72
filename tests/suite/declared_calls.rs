//! Declared calls are true, both ways. Every shipped runbook (and the fixtures that reach the
//! actions no shipped runbook uses) runs against moto through the counting proxy, and with the
//! mock harness where moto cannot go (an SSM-managed instance, an assumed-role caller's drill):
//!
//! - every call a step journals is in its action's declared `CALLS`; every call the engine
//!   journals for itself (`interlocks`, `notify`) is among its declared calls for that runbook;
//! - every call at the wire (the proxy's record, the mocks' record) is declared by the runbook's
//!   actions or the engine — so no call escapes the journal or the policy;
//! - together, the runs exercise every call every action and the engine declare.

use std::collections::{BTreeMap, BTreeSet};

use aws_smithy_mocks::mock;
use firebreak::actions::{self, RunUses};
use firebreak::engine::Approvals;
use firebreak::runbook::Runbook;
use serde_json::{Value, json};

use crate::support::aws::MockAws;
use crate::support::journal::ENGINE_STEPS;
use crate::support::run::{Ran, Run, id};
use crate::support::state::{plant_groups, seed_principals};
use crate::support::{moto, proxy, sandbox};

/// Calls an instance makes with URLs an action presigned: not journaled by firebreak (it does
/// not make them), seen at the wire.
const SENT_BY_INSTANCES: &[&str] = &["s3:UploadPart"];

/// Which declared calls the runs exercised: action (or `engine`) → calls.
#[derive(Default)]
struct Coverage {
    seen: BTreeMap<String, BTreeSet<String>>,
}

impl Coverage {
    /// Checks one run: journaled calls against their declarations, wire calls against the union
    /// of the runbook's declarations.
    fn check(&mut self, what: &str, runbook: &Runbook, uses: RunUses, ran: &Ran, wire: &[String]) {
        let engine: BTreeSet<&str> = actions::engine_calls(runbook, uses)
            .iter()
            .map(|c| c.call)
            .collect();
        // Journaled under their qualified id: a group's inner step as `<group>.<inner>`.
        let qualified = runbook.qualified_action_steps();
        let step_action: BTreeMap<&str, &str> = qualified
            .iter()
            .map(|(id, s)| (id.as_str(), s.action.as_str()))
            .collect();
        for call in ran.journal.api_calls() {
            let name = call.name();
            if ENGINE_STEPS.contains(&call.step.as_str()) {
                assert!(
                    engine.contains(name.as_str()),
                    "{what}: the engine called {name} under `{}`, not among its declared calls {engine:?}",
                    call.step
                );
                self.seen.entry("engine".into()).or_default().insert(name);
                continue;
            }
            let action = step_action
                .get(call.step.as_str())
                .unwrap_or_else(|| panic!("{what}: a call of unknown step `{}`", call.step));
            let info = actions::find(action).unwrap();
            assert!(
                info.calls.contains(&name.as_str()),
                "{what}: step `{}` ({action}) called {name}, which {action} does not declare in CALLS {:?}",
                call.step,
                info.calls
            );
            self.seen
                .entry(action.to_string())
                .or_default()
                .insert(name);
        }
        let declared: BTreeSet<&str> = runbook
            .action_steps()
            .flat_map(|s| actions::find(&s.action).unwrap().calls.iter().copied())
            .chain(engine.iter().copied())
            .collect();
        for name in wire {
            assert!(
                declared.contains(name.as_str()),
                "{what}: {name} was sent but nothing the runbook uses declares it"
            );
            // Calls not journaled as `api_call` are seen at the wire: the engine's (the caller
            // identity in the first record, the preflight, the assumed role), and those an
            // instance sends with URLs an action presigned (`ssm.run_command`'s UploadPart).
            for step in runbook.action_steps() {
                let info = actions::find(&step.action).unwrap();
                if SENT_BY_INSTANCES.contains(&name.as_str()) && info.calls.contains(&name.as_str())
                {
                    self.seen
                        .entry(info.name.to_string())
                        .or_default()
                        .insert(name.clone());
                }
            }
            if engine.contains(name.as_str()) {
                self.seen
                    .entry("engine".into())
                    .or_default()
                    .insert(name.clone());
            }
        }
    }

    /// Every declared call of every action and of the engine was exercised.
    fn assert_complete(&self) {
        let mut missing = Vec::new();
        for info in actions::ACTIONS {
            for call in info.calls {
                if !self.seen.get(info.name).is_some_and(|s| s.contains(*call)) {
                    missing.push(format!("{}: {call}", info.name));
                }
            }
        }
        for call in actions::ENGINE_CALLS {
            if !self
                .seen
                .get("engine")
                .is_some_and(|s| s.contains(call.call))
            {
                missing.push(format!("engine: {}", call.call));
            }
        }
        assert!(
            missing.is_empty(),
            "declared calls no run exercised:\n{}",
            missing.join("\n")
        );
    }
}

fn wire() -> Vec<String> {
    proxy::calls().iter().map(|c| c.name()).collect()
}

fn live() -> RunUses {
    RunUses {
        drills: false,
        assume_role: false,
        ..Default::default()
    }
}

/// Runs `run` on moto through the proxy, checks it and adds what it exercised.
async fn on_moto(coverage: &mut Coverage, what: &str, run: Run, uses: RunUses) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    proxy::reset();
    let runbook = firebreak::check::load(run.runbook_path()).unwrap().runbook;
    let ran = run.start(dir.path()).await;
    coverage.check(what, &runbook, uses, &ran, &wire());
    std::mem::forget(dir); // later runs read this one's journal (release, clean room)
    ran
}

#[tokio::test]
async fn every_call_is_declared_and_every_declared_call_is_made() {
    let _moto = moto::exclusive().await;
    let mut coverage = Coverage::default();

    // The single-instance runbook, live, with a planted group whose rule must go.
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    plant_groups(&id(&ids, "vpc_id")).await;
    // Registered by hand in a load balancer's target group: deregistered, then registered back.
    crate::ec2_release::state(&["register", &instance]);
    let contained = on_moto(
        &mut coverage,
        "ec2-instance-compromise",
        Run::repo("runbooks/ec2-instance-compromise.yaml").params(&[
            ("instance_id", &instance),
            ("case_id", "case-1"),
            (
                "quarantine_profile_arn",
                &id(&ids, "quarantine_profile_arn"),
            ),
        ]),
        live(),
    )
    .await;
    contained.assert_succeeded();

    // Its release, from the verified journal.
    let journal = contained.run.journal.display().to_string();
    on_moto(
        &mut coverage,
        "ec2-release",
        Run::repo("runbooks/ec2-release.yaml")
            .params(&[("journal", &journal), ("instance_ids", &instance)]),
        live(),
    )
    .await
    .assert_succeeded();

    // The clean room for the case's snapshots: stack, copies, volumes, the hashing command.
    let snapshots: Vec<String> = contained.outputs("snapshot")["snapshot_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    on_moto(
        &mut coverage,
        "forensic-clean-room",
        Run::repo("runbooks/forensic-clean-room.yaml").params(&[
            ("case_id", "case-1"),
            ("snapshot_ids", &snapshots.join(",")),
            ("availability_zone", "us-east-1a"),
            ("s3_prefix_list_id", "pl-0123456789abcdef0"),
            (
                "investigator_principal_arn",
                "arn:aws:iam::123456789012:role/ir-team",
            ),
        ]),
        live(),
    )
    .await
    .assert_succeeded();

    // Isolated again, then released from the tags isolation leaves on the interfaces; the case's
    // snapshots shared in place with another account.
    on_moto(
        &mut coverage,
        "isolate again",
        Run::fixture("ec2/isolate.yaml").param("instance_id", &instance),
        live(),
    )
    .await
    .assert_succeeded();
    on_moto(
        &mut coverage,
        "release from tags, share in place",
        Run::fixture("ec2/release-and-share.yaml").params(&[
            ("instance_id", &instance),
            ("snapshot_ids", &snapshots.join(",")),
            ("case_id", "case-1"),
        ]),
        live(),
    )
    .await
    .assert_succeeded();

    // Collection after isolation through the VPC's endpoints, into the account's bucket; then
    // the path closed.
    sandbox::bucket("evidence-declared-calls").await;
    sandbox::vpc_endpoints(&ids, Some(Some(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::evidence-declared-calls/*"}]}"#))).await;
    on_moto(
        &mut coverage,
        "collection after isolation",
        Run::fixture("ec2/collect-after-isolation.yaml").params(&[
            ("instance_id", &instance),
            ("evidence_bucket", "evidence-declared-calls"),
        ]),
        live(),
    )
    .await
    .assert_succeeded();
    on_moto(
        &mut coverage,
        "collection closed",
        Run::fixture("ec2/collection-close.yaml").param("instance_id", &instance),
        live(),
    )
    .await
    .assert_succeeded();

    // The credential runbooks, on seeded principals.
    let key = seed_principals().await;
    let key_contained = on_moto(
        &mut coverage,
        "iam-access-key-compromise",
        Run::repo("runbooks/iam-access-key-compromise.yaml")
            .params(&[("access_key_id", &key), ("user_name", "leaky")]),
        live(),
    )
    .await;
    key_contained.assert_succeeded();
    iam_release(&mut coverage, &key_contained, true).await;
    let role_contained = on_moto(
        &mut coverage,
        "iam-role-credential-exfiltration",
        Run::repo("runbooks/iam-role-credential-exfiltration.yaml")
            .params(&[("role_name", "web-1-app"), ("instance_id", &instance)]),
        live(),
    )
    .await;
    role_contained.assert_succeeded();
    iam_release(&mut coverage, &role_contained, false).await;
    on_moto(
        &mut coverage,
        "incident-kickoff",
        Run::repo("runbooks/incident-kickoff.yaml")
            .params(&[("summary", "declared calls"), ("resources", &instance)]),
        live(),
    )
    .await
    .assert_succeeded();

    // The fleet runbook on a fresh pair of instances; a drill of it with the preflight.
    moto::reset();
    let first = sandbox::seed("web-1");
    let second = sandbox::seed("web-2");
    let fleet = format!(
        "{},{}",
        id(&first, "instance_id"),
        id(&second, "instance_id")
    );
    let drills = RunUses {
        drills: true,
        assume_role: false,
        ..Default::default()
    };
    on_moto(
        &mut coverage,
        "ec2-fleet-containment (drill)",
        Run::repo("runbooks/ec2-fleet-containment.yaml")
            .params(&[("instance_ids", &fleet), ("case_id", "case-2")])
            .dry_run()
            .preflight(),
        drills,
    )
    .await;
    on_moto(
        &mut coverage,
        "ec2-fleet-containment",
        Run::repo("runbooks/ec2-fleet-containment.yaml")
            .params(&[("instance_ids", &fleet), ("case_id", "case-2")]),
        live(),
    )
    .await
    .assert_succeeded();

    // What no shipped runbook uses: standby in Auto Scaling, quarantine variants, a stack torn
    // down, a message published, a wait; a finding of another account through an assumed role.
    moto::reset();
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    on_moto(
        &mut coverage,
        "autoscaling standby",
        Run::fixture("ec2/autoscaling.yaml")
            .params(&[("instance_id", &instance), ("mode", "standby")]),
        live(),
    )
    .await
    .assert_succeeded();
    // One volume of two: snapshotted on its own (CreateSnapshot), not as the instance's set.
    let first_volume = ids["volume_ids"][0].as_str().unwrap().to_owned();
    on_moto(
        &mut coverage,
        "one volume of the instance",
        Run::fixture("ec2/snapshot-volumes.yaml").params(&[
            ("instance_id", &instance),
            ("volume_ids", &first_volume),
            ("case_id", "case-3"),
        ]),
        live(),
    )
    .await
    .assert_succeeded();
    let other_key = seed_principals().await;
    on_moto(
        &mut coverage,
        "a key disabled by its id alone",
        Run::fixture("iam/disable-key.yaml").param("access_key_id", &other_key),
        live(),
    )
    .await
    .assert_succeeded();
    let variants = on_moto(
        &mut coverage,
        "iam variants",
        Run::fixture("iam/variants.yaml"),
        live(),
    )
    .await;
    variants.assert_succeeded();
    iam_release(&mut coverage, &variants, false).await;
    // Settings that existed before the run: the release puts them back rather than deleting.
    let iam = aws_sdk_iam::Client::new(&moto::direct_config().await);
    let older = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Older","Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#;
    iam.put_user_policy()
        .user_name("leaky")
        .policy_name("firebreak-quarantine")
        .policy_document(older)
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("web-1-app")
        .policy_name("AWSRevokeOlderSessions")
        .policy_document(older)
        .send()
        .await
        .unwrap();
    let tag = aws_sdk_iam::types::Tag::builder()
        .key("firebreak:case")
        .value("case-older")
        .build()
        .unwrap();
    iam.tag_user()
        .user_name("leaky")
        .tags(tag.clone())
        .send()
        .await
        .unwrap();
    iam.tag_role()
        .role_name("web-1-app")
        .tags(tag)
        .send()
        .await
        .unwrap();
    let over = on_moto(
        &mut coverage,
        "iam over earlier settings",
        Run::fixture("iam/release-puts-back.yaml"),
        live(),
    )
    .await;
    over.assert_succeeded();
    iam_release(&mut coverage, &over, false).await;
    let other = sandbox::seed("web-3");
    on_moto(
        &mut coverage,
        "instance credentials by instance",
        Run::fixture("iam/instance-credentials.yaml").params(&[
            ("instance_id", &id(&other, "instance_id")),
            ("other_instance_id", &instance),
            ("profile_arn", &id(&other, "instance_profile_arn")),
        ]),
        live(),
    )
    .await
    .assert_succeeded();
    // Buckets: one public with a policy and tags (the release puts them back), one bare (the
    // release deletes what the containment added, and puts back a partial public access block
    // and ObjectWriter ownership).
    let config = moto::direct_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    crate::s3_exposure::seed_public_bucket(&s3, "covered-public", &[("team", "web")]).await;
    s3.create_bucket()
        .bucket("covered-bare")
        .send()
        .await
        .unwrap();
    s3.put_public_access_block()
        .bucket("covered-bare")
        .public_access_block_configuration(
            aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_ownership_controls()
        .bucket("covered-bare")
        .ownership_controls(
            aws_sdk_s3::types::OwnershipControls::builder()
                .rules(
                    aws_sdk_s3::types::OwnershipControlsRule::builder()
                        .object_ownership(aws_sdk_s3::types::ObjectOwnership::ObjectWriter)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    // Functions: one with a reserved concurrency and an earlier case's tag (the release puts
    // both back) and a public statement added after the containment (a forced release removes
    // it); one with neither (the release removes the concurrency the containment set).
    for (function, earlier) in [("covered-fn", true), ("covered-fn-bare", false)] {
        crate::lambda_compromise::seed(function);
        if earlier {
            crate::lambda_compromise::script(&["prior-state", function]);
        }
        let contained = on_moto(
            &mut coverage,
            "lambda-function-compromise",
            Run::repo("runbooks/lambda-function-compromise.yaml").param("function_name", function),
            live(),
        )
        .await;
        contained.assert_succeeded();
        if earlier {
            crate::lambda_compromise::script(&["late-public", function]);
        }
        let journal = contained.run.journal.display().to_string();
        on_moto(
            &mut coverage,
            "lambda-release",
            Run::repo("runbooks/lambda-release.yaml").params(&[
                ("journal", &journal),
                ("function_name", function),
                ("force", if earlier { "true" } else { "false" }),
            ]),
            live(),
        )
        .await
        .assert_succeeded();
    }
    // The profile removed (not swapped) and the instance in standby (not detached): restored by
    // associating the profile again and leaving standby.
    let standby = sandbox::seed("web-4");
    let standby_instance = id(&standby, "instance_id");
    crate::ec2_release::state(&["register", &standby_instance]);
    let moved = on_moto(
        &mut coverage,
        "standby and disassociate",
        Run::fixture("ec2/standby-and-disassociate.yaml").param("instance_id", &standby_instance),
        live(),
    )
    .await;
    moved.assert_succeeded();
    let journal = moved.run.journal.display().to_string();
    on_moto(
        &mut coverage,
        "ec2-release of standby",
        Run::repo("runbooks/ec2-release.yaml")
            .params(&[("journal", &journal), ("instance_ids", &standby_instance)]),
        live(),
    )
    .await;
    // An Identity Center user with groups and two permission sets, contained and released.
    crate::identity_center::script(&["seed", "covered-user"]);
    let contained = on_moto(
        &mut coverage,
        "identity-center-user-compromise",
        Run::repo("runbooks/identity-center-user-compromise.yaml")
            .param("sso_user", "covered-user"),
        live(),
    )
    .await;
    contained.assert_succeeded();
    let journal = contained.run.journal.display().to_string();
    on_moto(
        &mut coverage,
        "identity-center-release",
        Run::repo("runbooks/identity-center-release.yaml")
            .params(&[("journal", &journal), ("sso_user", "covered-user")]),
        live(),
    )
    .await
    .assert_succeeded();
    for bucket in ["covered-public", "covered-bare"] {
        let contained = on_moto(
            &mut coverage,
            "s3-bucket-exposure",
            Run::repo("runbooks/s3-bucket-exposure.yaml")
                .params(&[("bucket", bucket), ("restrict_policy", "true")]),
            live(),
        )
        .await;
        contained.assert_succeeded();
        let journal = contained.run.journal.display().to_string();
        on_moto(
            &mut coverage,
            "s3-release",
            Run::repo("runbooks/s3-release.yaml")
                .params(&[("journal", &journal), ("bucket", bucket)]),
            live(),
        )
        .await
        .assert_succeeded();
    }
    on_moto(
        &mut coverage,
        "clean room torn down",
        Run::fixture("clean-room/create-then-delete.yaml").param("case_id", "case-3"),
        live(),
    )
    .await
    .assert_succeeded();
    let sns = aws_sdk_sns::Client::new(&moto::direct_config().await);
    let topic = sns.create_topic().name("ir").send().await.unwrap();
    on_moto(
        &mut coverage,
        "notify",
        Run::fixture("notify/notify.yaml").params(&[
            ("topic_arn", topic.topic_arn().unwrap()),
            ("instance_id", &instance),
            ("api_token", "tok-declared-calls"),
        ]),
        live(),
    )
    .await
    .assert_succeeded();
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::support::repo(
            "tests/fixtures/journals/format-1/runbooks/other-account.json",
        ))
        .unwrap(),
    )
    .unwrap();
    event["detail"]["resource"]["instanceDetails"]["instanceId"] = json!(instance);
    on_moto(
        &mut coverage,
        "assumed role",
        Run::fixture("engine/slow.yaml")
            .params(&[("wait", "10ms")])
            .event(event)
            .settings(|s| firebreak::engine::Settings {
                assume_role: Some("arn:aws:iam::{{event.account}}:role/firebreak-responder".into()),
                ..s
            }),
        RunUses {
            drills: false,
            assume_role: true,
            ..Default::default()
        },
    )
    .await;

    // Where moto cannot go: an instance SSM manages (the collection branch), and a drill by an
    // assumed-role caller (the preflight looks its role up).
    mocked_ssm_branch(&mut coverage).await;
    mocked_assumed_role_drill(&mut coverage).await;

    // A finding read back before the run acts: Security Hub in moto, GuardDuty mocked.
    verified_security_hub_finding(&mut coverage, &instance).await;
    mocked_guardduty_finding(&mut coverage).await;
    // A finding noted in Security Hub as the run starts and ends (moto lacks the call).
    mocked_finding_update(&mut coverage).await;
    mocked_identity_center_waits(&mut coverage).await;
    // A sealed, signed run whose instance uploads evidence straight to the seal.
    sealed_collection(&mut coverage, &instance).await;

    coverage.assert_complete();
}

/// A runbook on GuardDuty findings, directly and through Security Hub, that only notes them.
const ON_FINDINGS: &str = r#"
version: 1
name: finding-note
triggers:
  - name: through-security-hub
    pattern:
      source: ["aws.securityhub"]
      detail-type: ["Security Hub Findings - Imported"]
      detail:
        findings:
          ProductArn: [{ suffix: "::product/aws/guardduty" }]
  - name: guardduty
    pattern:
      source: ["aws.guardduty"]
      detail-type: ["GuardDuty Finding"]
steps:
  - id: note
    action: core.log
    with: { message: "acting on the finding" }
"#;

/// The shipped trigger's finding, imported into moto's Security Hub, read back before the run.
async fn verified_security_hub_finding(coverage: &mut Coverage, instance: &str) {
    let text = std::fs::read_to_string("tests/fixtures/events/securityhub-ec2.json")
        .unwrap()
        .replace("INSTANCE_ID", instance);
    sandbox::import_findings(&text, &[]);
    let event: Value = serde_json::from_str(&text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = Run::yaml(dir.path(), ON_FINDINGS).event(event);
    on_moto(coverage, "verified Security Hub finding", run, live())
        .await
        .assert_succeeded();
}

async fn mocked_guardduty_finding(coverage: &mut Coverage) {
    use aws_sdk_guardduty::operation::get_findings::GetFindingsOutput;
    use aws_sdk_guardduty::operation::list_detectors::ListDetectorsOutput;
    use aws_sdk_guardduty::types::Finding;
    let aws = MockAws::new()
        .guardduty([
            mock!(aws_sdk_guardduty::Client::list_detectors)
                .then_output(|| ListDetectorsOutput::builder().detector_ids("det-1").build()),
            mock!(aws_sdk_guardduty::Client::get_findings).then_output(|| {
                GetFindingsOutput::builder()
                    .findings(Finding::builder().id("gd-1").build())
                    .build()
            }),
        ])
        .build();
    let dir = tempfile::tempdir().unwrap();
    let run = Run::yaml(dir.path(), ON_FINDINGS)
        .event(
            json!({"source": "aws.guardduty", "detail-type": "GuardDuty Finding",
            "region": "us-east-1", "detail": {"id": "gd-1"}}),
        )
        .clients(aws.clients.clone())
        .settings(|s| firebreak::engine::Settings {
            verify_finding: Some(firebreak::engine::VerifyFinding::All),
            ..s
        });
    let runbook = firebreak::check::load(run.runbook_path()).unwrap().runbook;
    let ran = run.start(dir.path()).await;
    ran.assert_succeeded();
    coverage.check(
        "verified GuardDuty finding (mocked)",
        &runbook,
        live(),
        &ran,
        &aws.calls(),
    );
}

/// runbooks/iam-release.yaml on the journal of `contained`.
async fn iam_release(coverage: &mut Coverage, contained: &Ran, reactivate_key: bool) {
    let journal = contained.run.journal.display().to_string();
    on_moto(
        coverage,
        "iam-release",
        Run::repo("runbooks/iam-release.yaml").params(&[
            ("journal", journal.as_str()),
            (
                "reactivate_key",
                if reactivate_key { "true" } else { "false" },
            ),
        ]),
        live(),
    )
    .await
    .assert_succeeded();
}

const SSO_INSTANCE: &str = "arn:aws:sso:::instance/ssoins-0123456789abcdef";
const SSO_SET: &str = "arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-0123456789abcdef";

/// Identity Center's asynchronous calls as AWS answers them (moto finishes them at once, and
/// answers DescribePermissionSetProvisioningStatus with 500): a deletion, a provisioning and,
/// in the release, a creation each first IN_PROGRESS, then SUCCEEDED on the status call.
async fn mocked_identity_center_waits(coverage: &mut Coverage) {
    use aws_sdk_identitystore::operation::get_user_id::GetUserIdOutput;
    use aws_sdk_identitystore::operation::list_group_memberships_for_member::ListGroupMembershipsForMemberOutput;
    use aws_sdk_ssoadmin::operation as op;
    use aws_sdk_ssoadmin::types::{
        AccountAssignmentForPrincipal, AccountAssignmentOperationStatus, InstanceMetadata,
        PermissionSetProvisioningStatus, StatusValues,
    };
    let status = |s: StatusValues| {
        AccountAssignmentOperationStatus::builder()
            .status(s)
            .request_id("req-1")
            .build()
    };
    let provisioning = |s: StatusValues| {
        PermissionSetProvisioningStatus::builder()
            .status(s)
            .request_id("req-2")
            .build()
    };
    // Provisioning a permission set: in progress, then done when asked again.
    let provisioned = || {
        [
            mock!(aws_sdk_ssoadmin::Client::provision_permission_set).then_output(move || {
                op::provision_permission_set::ProvisionPermissionSetOutput::builder()
                    .permission_set_provisioning_status(provisioning(StatusValues::InProgress))
                    .build()
            }),
            mock!(aws_sdk_ssoadmin::Client::describe_permission_set_provisioning_status).then_output(move || {
                op::describe_permission_set_provisioning_status::DescribePermissionSetProvisioningStatusOutput::builder()
                    .permission_set_provisioning_status(provisioning(StatusValues::Succeeded))
                    .build()
            }),
        ]
    };
    let common = |assigned: bool, policy: &'static str| {
        vec![
            mock!(aws_sdk_ssoadmin::Client::list_instances).then_output(|| {
                op::list_instances::ListInstancesOutput::builder()
                    .instances(InstanceMetadata::builder().instance_arn(SSO_INSTANCE).identity_store_id("d-0123456789").build())
                    .build()
            }),
            mock!(aws_sdk_ssoadmin::Client::list_account_assignments_for_principal).then_output(move || {
                let out = op::list_account_assignments_for_principal::ListAccountAssignmentsForPrincipalOutput::builder();
                if assigned {
                    out.account_assignments(
                        AccountAssignmentForPrincipal::builder().account_id("123456789012").permission_set_arn(SSO_SET).build(),
                    )
                    .build()
                } else {
                    out.build()
                }
            }),
            mock!(aws_sdk_ssoadmin::Client::get_inline_policy_for_permission_set).then_output(move || {
                op::get_inline_policy_for_permission_set::GetInlinePolicyForPermissionSetOutput::builder()
                    .inline_policy(policy)
                    .build()
            }),
        ]
    };
    let store = || {
        vec![
            mock!(aws_sdk_identitystore::Client::get_user_id).then_output(|| {
                GetUserIdOutput::builder()
                    .identity_store_id("d-0123456789")
                    .user_id("u-1")
                    .user_arn(
                        "arn:aws:identitystore::123456789012:identitystore/d-0123456789/user/u-1",
                    )
                    .build()
                    .unwrap()
            }),
            mock!(aws_sdk_identitystore::Client::list_group_memberships_for_member).then_output(
                || {
                    ListGroupMembershipsForMemberOutput::builder()
                        .set_group_memberships(Some(vec![]))
                        .build()
                        .unwrap()
                },
            ),
        ]
    };
    let mut sso = common(true, "");
    sso.extend(provisioned());
    sso.extend([
        mock!(aws_sdk_ssoadmin::Client::delete_account_assignment).then_output(move || {
            op::delete_account_assignment::DeleteAccountAssignmentOutput::builder()
                .account_assignment_deletion_status(status(StatusValues::InProgress))
                .build()
        }),
        mock!(aws_sdk_ssoadmin::Client::describe_account_assignment_deletion_status).then_output(move || {
            op::describe_account_assignment_deletion_status::DescribeAccountAssignmentDeletionStatusOutput::builder()
                .account_assignment_deletion_status(status(StatusValues::Succeeded))
                .build()
        }),
        mock!(aws_sdk_ssoadmin::Client::put_inline_policy_to_permission_set)
            .then_output(|| op::put_inline_policy_to_permission_set::PutInlinePolicyToPermissionSetOutput::builder().build()),
    ]);
    let aws = MockAws::new().ssoadmin(sso).identitystore(store()).build();
    let dir = tempfile::tempdir().unwrap();
    let run = Run::repo("runbooks/identity-center-user-compromise.yaml")
        .param("sso_user", "mallory")
        .clients(aws.clients.clone());
    let runbook = firebreak::check::load(run.runbook_path()).unwrap().runbook;
    let ran = run.start(dir.path()).await;
    ran.assert_succeeded();
    let calls = aws.calls();
    for waited in [
        "sso:DescribeAccountAssignmentDeletionStatus",
        "sso:DescribePermissionSetProvisioningStatus",
    ] {
        assert!(
            calls.contains(&waited.to_owned()),
            "{waited} not polled: {calls:?}"
        );
    }
    coverage.check(
        "identity-center-user-compromise (mocked waits)",
        &runbook,
        live(),
        &ran,
        &calls,
    );

    // The release from that journal: the assignment re-created (waited for), the policy back
    // (the set had none: deleted) and provisioned.
    let denied = r#"{"Version":"2012-10-17","Statement":[{"Sid":"FirebreakDenyUsers","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringLike":{"aws:userid":["*:mallory"]}}}]}"#;
    let mut sso = common(false, denied);
    sso.extend(provisioned());
    sso.extend([
        mock!(aws_sdk_ssoadmin::Client::create_account_assignment).then_output(move || {
            op::create_account_assignment::CreateAccountAssignmentOutput::builder()
                .account_assignment_creation_status(status(StatusValues::InProgress))
                .build()
        }),
        mock!(aws_sdk_ssoadmin::Client::describe_account_assignment_creation_status).then_output(move || {
            op::describe_account_assignment_creation_status::DescribeAccountAssignmentCreationStatusOutput::builder()
                .account_assignment_creation_status(status(StatusValues::Succeeded))
                .build()
        }),
        mock!(aws_sdk_ssoadmin::Client::delete_inline_policy_from_permission_set)
            .then_output(|| op::delete_inline_policy_from_permission_set::DeleteInlinePolicyFromPermissionSetOutput::builder().build()),
    ]);
    let aws = MockAws::new().ssoadmin(sso).identitystore(store()).build();
    let journal = ran.run.journal.display().to_string();
    let run = Run::repo("runbooks/identity-center-release.yaml")
        .params(&[("journal", &journal), ("sso_user", "mallory")])
        .clients(aws.clients.clone());
    let runbook = firebreak::check::load(run.runbook_path()).unwrap().runbook;
    let released = run.start(dir.path()).await;
    released.assert_succeeded();
    let calls = aws.calls();
    assert!(
        calls.contains(&"sso:DescribeAccountAssignmentCreationStatus".to_owned()),
        "{calls:?}"
    );
    coverage.check(
        "identity-center-release (mocked waits)",
        &runbook,
        live(),
        &released,
        &calls,
    );
}

/// A runbook whose Security Hub trigger notes the run on the finding.
const ON_UPDATED_FINDINGS: &str = r#"
version: 1
name: finding-noted
triggers:
  - name: through-security-hub
    pattern:
      source: ["aws.securityhub"]
      detail-type: ["Security Hub Findings - Imported"]
      detail:
        findings:
          ProductArn: [{ suffix: "::product/aws/guardduty" }]
          Workflow: { Status: ["NEW"] }
    update_finding: true
steps:
  - id: note
    action: core.log
    with: { message: "acting on the finding" }
"#;

async fn mocked_finding_update(coverage: &mut Coverage) {
    use aws_sdk_securityhub::operation::batch_update_findings::BatchUpdateFindingsOutput;
    let aws = MockAws::new()
        .securityhub([mock!(aws_sdk_securityhub::Client::batch_update_findings)
            .then_output(|| BatchUpdateFindingsOutput::builder().build())])
        .build();
    let dir = tempfile::tempdir().unwrap();
    let run = Run::yaml(dir.path(), ON_UPDATED_FINDINGS)
        .event(
            json!({"source": "aws.securityhub", "detail-type": "Security Hub Findings - Imported",
            "region": "us-east-1", "detail": {"findings": [{"Id": "f-1",
            "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty"}]}}),
        )
        .clients(aws.clients.clone())
        .settings(|s| firebreak::engine::Settings {
            verify_finding: None,
            update_finding: true,
            ..s
        });
    let runbook = firebreak::check::load(run.runbook_path()).unwrap().runbook;
    let ran = run.start(dir.path()).await;
    ran.assert_succeeded();
    coverage.check(
        "a finding noted in Security Hub (mocked)",
        &runbook,
        live(),
        &ran,
        &aws.calls(),
    );
}

async fn mocked_ssm_branch(coverage: &mut Coverage) {
    use aws_sdk_ssm::operation::describe_instance_information::DescribeInstanceInformationOutput;
    use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput;
    use aws_sdk_ssm::operation::list_commands::ListCommandsOutput;
    use aws_sdk_ssm::operation::send_command::SendCommandOutput;
    use aws_sdk_ssm::types::{
        Command, CommandInvocationStatus, InstanceInformation, PingStatus, PlatformType,
    };
    const INSTANCE: &str = "i-0123456789abcdef0";
    let aws = MockAws::new()
        .ssm([
            mock!(aws_sdk_ssm::Client::describe_instance_information).then_output(|| {
                DescribeInstanceInformationOutput::builder()
                    .instance_information_list(
                        InstanceInformation::builder()
                            .instance_id(INSTANCE)
                            .ping_status(PingStatus::Online)
                            .platform_type(PlatformType::Linux)
                            .build(),
                    )
                    .build()
            }),
            mock!(aws_sdk_ssm::Client::list_commands)
                .then_output(|| ListCommandsOutput::builder().build()),
            mock!(aws_sdk_ssm::Client::send_command).then_output(|| {
                SendCommandOutput::builder()
                    .command(Command::builder().command_id("cmd-1").build())
                    .build()
            }),
            mock!(aws_sdk_ssm::Client::get_command_invocation).then_output(|| {
                GetCommandInvocationOutput::builder()
                    .command_id("cmd-1")
                    .instance_id(INSTANCE)
                    .status(CommandInvocationStatus::Success)
                    .build()
            }),
        ])
        .s3([mock!(aws_sdk_s3::Client::head_bucket).then_output(|| {
            aws_sdk_s3::operation::head_bucket::HeadBucketOutput::builder().build()
        })])
        .build();
    let dir = tempfile::tempdir().unwrap();
    let run = Run::fixture("ssm/managed.yaml")
        .param("instance_id", INSTANCE)
        .clients(aws.clients.clone());
    let runbook = firebreak::check::load(run.runbook_path()).unwrap().runbook;
    let ran = run.start(dir.path()).await;
    ran.assert_succeeded();
    coverage.check("ssm managed (mocked)", &runbook, live(), &ran, &aws.calls());
}

async fn mocked_assumed_role_drill(coverage: &mut Coverage) {
    use aws_sdk_iam::operation::get_role::GetRoleOutput;
    use aws_sdk_iam::operation::simulate_principal_policy::SimulatePrincipalPolicyOutput;
    use aws_sdk_iam::types::{EvaluationResult, PolicyEvaluationDecisionType, Role};
    let aws = MockAws::new()
        .sts([
            mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
                aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput::builder()
                    .account("123456789012")
                    .arn("arn:aws:sts::123456789012:assumed-role/firebreak-responder/drill")
                    .user_id("AROATEST:drill")
                    .build()
            }),
        ])
        .iam([
            mock!(aws_sdk_iam::Client::get_role).then_output(|| {
                GetRoleOutput::builder()
                    .role(
                        Role::builder()
                            .role_name("firebreak-responder")
                            .arn("arn:aws:iam::123456789012:role/ops/firebreak-responder")
                            .path("/ops/")
                            .role_id("AROATEST")
                            .create_date(aws_smithy_types::DateTime::from_secs(0))
                            .build()
                            .unwrap(),
                    )
                    .build()
            }),
            mock!(aws_sdk_iam::Client::simulate_principal_policy).then_compute_output(|input| {
                let results = input
                    .action_names()
                    .iter()
                    .map(|action| {
                        EvaluationResult::builder()
                            .eval_action_name(action)
                            .eval_decision(PolicyEvaluationDecisionType::Allowed)
                            .build()
                            .unwrap()
                    })
                    .collect();
                SimulatePrincipalPolicyOutput::builder()
                    .set_evaluation_results(Some(results))
                    .build()
            }),
        ])
        .build();
    let dir = tempfile::tempdir().unwrap();
    let run = Run::repo("runbooks/incident-kickoff.yaml")
        .param("summary", "drill")
        .dry_run()
        .preflight()
        .approvals(Approvals::Yes)
        .clients(aws.clients.clone());
    let runbook = firebreak::check::load(run.runbook_path()).unwrap().runbook;
    let ran = run.start(dir.path()).await;
    ran.assert_succeeded();
    let drills = RunUses {
        drills: true,
        assume_role: false,
        ..Default::default()
    };
    coverage.check(
        "assumed-role drill (mocked)",
        &runbook,
        drills,
        &ran,
        &aws.calls(),
    );
}

/// `--seal` and `--sign-key` on a run whose step has the instance upload to the seal: the
/// engine's seal calls and the step's read-back are declared, and made.
async fn sealed_collection(coverage: &mut Coverage, instance: &str) {
    let evidence = super::custody::seed_evidence(&[]);
    let custody = firebreak::journal::event::Custody {
        seal: evidence.seal.clone(),
        owner: String::new(),
        min_retention_days: 1,
        sign_key: Some(evidence.sign_key.clone()),
    };
    let ran = on_moto(
        coverage,
        "sealed collection",
        Run::fixture("custody/collect.yaml")
            .param("instance_id", instance)
            .settings(move |s| firebreak::engine::Settings {
                custody: Some(custody),
                ..s
            }),
        RunUses {
            seal: true,
            sign: true,
            ..live()
        },
    )
    .await;
    ran.assert_succeeded();
}
