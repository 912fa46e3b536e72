//! The engine with mocked AWS answers: step-level retries of throttling (and none for access
//! denied), and fail-closed partial isolation.

use std::path::Path;

use aws_sdk_ec2::operation::describe_instances::{DescribeInstancesError, DescribeInstancesOutput};
use aws_sdk_ec2::types::{
    GroupIdentifier, Instance, InstanceNetworkInterface, InstanceNetworkInterfaceAttachment,
    IpPermission, IpRange, NetworkInterface, NetworkInterfaceAttachment, Reservation,
    SecurityGroup,
};
use aws_smithy_mocks::Rule;
use aws_smithy_mocks::mock;
use aws_smithy_types::error::ErrorMetadata;
use firebreak::engine::{RunOutcome, RunStatus};

use crate::support::aws::MockAws;
use crate::support::run::Run;
use serde_json::{Value, json};

const INSTANCE: &str = "i-0123456789abcdef0";

/// Runs `runbook` (text) on EC2 mocked by `rules`.
async fn run_on(dir: &Path, runbook: &str, rules: &[&Rule]) -> RunOutcome {
    let aws = MockAws::new()
        .ec2(rules.iter().map(|r| (*r).clone()))
        .build();
    Run::yaml(dir, runbook)
        .clients(aws.clients.clone())
        .start(dir)
        .await
        .run
}

fn records(path: &Path) -> Vec<Value> {
    crate::support::journal::values(path)
}

fn instance_output() -> DescribeInstancesOutput {
    let eni = |id: &str, index: i32, group: &str| {
        InstanceNetworkInterface::builder()
            .network_interface_id(id)
            .attachment(
                InstanceNetworkInterfaceAttachment::builder()
                    .device_index(index)
                    .build(),
            )
            .groups(GroupIdentifier::builder().group_id(group).build())
            .build()
    };
    DescribeInstancesOutput::builder()
        .reservations(
            Reservation::builder()
                .instances(
                    Instance::builder()
                        .instance_id(INSTANCE)
                        .vpc_id("vpc-0aaa")
                        .network_interfaces(eni("eni-0first", 0, "sg-0web"))
                        .network_interfaces(eni("eni-0second", 1, "sg-0admin"))
                        .build(),
                )
                .build(),
        )
        .build()
}

const DESCRIBE_WITH_RETRY: &str = r#"
version: 1
name: describe-retry
steps:
  - id: describe
    action: ec2.describe_instance
    retry: { attempts: 3 }
    with: { instance_id: "i-0123456789abcdef0" }
"#;

#[tokio::test]
async fn a_throttled_call_is_sent_again_where_it_failed_every_send_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let describe = mock!(aws_sdk_ec2::Client::describe_instances)
        .sequence()
        .error(|| {
            DescribeInstancesError::generic(
                ErrorMetadata::builder()
                    .code("RequestLimitExceeded")
                    .message("slow down")
                    .build(),
            )
        })
        .times(2)
        .output(instance_output)
        .build();
    let associations = mock!(aws_sdk_ec2::Client::describe_iam_instance_profile_associations)
        .then_output(|| aws_sdk_ec2::operation::describe_iam_instance_profile_associations::DescribeIamInstanceProfileAssociationsOutput::builder().build());
    let outcome = run_on(dir.path(), DESCRIBE_WITH_RETRY, &[&describe, &associations]).await;
    assert_eq!(outcome.status, RunStatus::Succeeded);
    assert_eq!(outcome.steps[0].outputs["vpc_id"], "vpc-0aaa");
    let records = records(&outcome.journal);
    // Not the whole step again (its other calls would be throttled too): the call itself.
    assert!(!records.iter().any(|r| r["type"] == "step_retry"));
    let calls: Vec<(&Value, &Value, &Value)> = records
        .iter()
        .filter(|r| r["type"] == "api_call" && r["operation"] == "DescribeInstances")
        .map(|r| (&r["resend"], &r["class"], &r["outcome"]))
        .collect();
    assert_eq!(
        calls,
        [
            (&Value::Null, &json!("throttling"), &json!("error")),
            (&json!(1), &json!("throttling"), &json!("error")),
            (&json!(2), &Value::Null, &json!("ok")),
        ],
        "every send is journaled"
    );
}

#[tokio::test]
async fn access_denied_is_never_retried() {
    let dir = tempfile::tempdir().unwrap();
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_error(|| {
        DescribeInstancesError::generic(
            ErrorMetadata::builder()
                .code("UnauthorizedOperation")
                .message("no")
                .build(),
        )
    });
    let outcome = run_on(dir.path(), DESCRIBE_WITH_RETRY, &[&describe]).await;
    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(describe.num_calls(), 1);
    let records = records(&outcome.journal);
    assert!(!records.iter().any(|r| r["type"] == "step_retry"));
    let failed = records.iter().find(|r| r["type"] == "step_failed").unwrap();
    assert_eq!(failed["class"], "access-denied");
    assert_eq!(failed["code"], "UnauthorizedOperation");
}

const ISOLATE: &str = r#"
version: 1
name: isolate-partial
steps:
  - id: isolate
    action: ec2.isolate_instance
    with: { instance_id: "i-0123456789abcdef0" }
"#;

/// Two interfaces (`eni-0first` in `sg-0web`, `eni-0second` in `sg-0admin`) whose own groups
/// the mocks keep as EC2 would: `ModifyNetworkInterfaceAttribute` changes them (unless `fails`
/// says no for that interface and target), `DescribeNetworkInterfaces` reports them and
/// filters by them. Both firebreak groups exist with exactly their rules.
struct Enis {
    groups: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, Vec<String>>>>,
    /// Attach `eni-0third` (in `sg-0web`) at the first move, as an agent or an attacker might.
    attach_late: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

type Fails = fn(&str, &[String]) -> bool;

impl Enis {
    fn new() -> Enis {
        let groups = [
            ("eni-0first".to_owned(), vec!["sg-0web".to_owned()]),
            ("eni-0second".to_owned(), vec!["sg-0admin".to_owned()]),
        ];
        Enis {
            groups: std::sync::Arc::new(std::sync::Mutex::new(groups.into_iter().collect())),
            attach_late: Default::default(),
        }
    }

    fn of(&self, eni: &str) -> Vec<String> {
        self.groups.lock().unwrap()[eni].clone()
    }

    fn rules(&self, fails: Fails) -> Vec<Rule> {
        use aws_sdk_ec2::operation::describe_network_interfaces::DescribeNetworkInterfacesOutput;
        use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
        use aws_sdk_ec2::operation::modify_network_interface_attribute::{
            ModifyNetworkInterfaceAttributeError, ModifyNetworkInterfaceAttributeOutput,
        };
        use aws_sdk_ec2::types::Ipv6Range;
        let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(instance_output);
        let groups =
            mock!(aws_sdk_ec2::Client::describe_security_groups).then_compute_output(|input| {
                let role = input
                    .filters()
                    .iter()
                    .find(|f| f.name() == Some("tag:firebreak:role"))
                    .and_then(|f| f.values().first().cloned());
                let isolation = SecurityGroup::builder()
                    .group_id("sg-0isolation")
                    .group_name("firebreak-isolation")
                    .build();
                let all = IpPermission::builder()
                    .ip_protocol("-1")
                    .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                    .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
                    .build();
                let untrack = SecurityGroup::builder()
                    .group_id("sg-0untrack")
                    .group_name("firebreak-untrack")
                    .ip_permissions(all.clone())
                    .ip_permissions_egress(all)
                    .build();
                // By id: in `GroupIds` or, as batched reads ask, a `group-id` filter.
                let ids: Vec<String> = input
                    .group_ids()
                    .iter()
                    .chain(
                        input
                            .filters()
                            .iter()
                            .filter(|f| f.name() == Some("group-id"))
                            .flat_map(|f| f.values()),
                    )
                    .cloned()
                    .collect();
                let group = match (role.as_deref(), ids) {
                    (Some("isolation"), _) => isolation,
                    (Some(_), _) => untrack,
                    (None, ids) if ids.contains(&"sg-0isolation".to_owned()) => isolation,
                    (None, _) => untrack,
                };
                DescribeSecurityGroupsOutput::builder()
                    .security_groups(group)
                    .build()
            });
        let state = self.groups.clone();
        let interfaces = mock!(aws_sdk_ec2::Client::describe_network_interfaces)
            .then_compute_output(move |input| {
                let wanted: Option<Vec<String>> = input
                    .filters()
                    .iter()
                    .find(|f| f.name() == Some("group-id"))
                    .map(|f| f.values().to_vec());
                let mut output = DescribeNetworkInterfacesOutput::builder();
                for (index, (id, groups)) in state.lock().unwrap().iter().enumerate() {
                    if wanted
                        .as_ref()
                        .is_some_and(|w| !groups.iter().any(|g| w.contains(g)))
                    {
                        continue;
                    }
                    let mut eni = NetworkInterface::builder()
                        .network_interface_id(id)
                        .attachment(
                            NetworkInterfaceAttachment::builder()
                                .instance_id(INSTANCE)
                                .device_index(index as i32)
                                .build(),
                        );
                    for group in groups {
                        eni = eni.groups(GroupIdentifier::builder().group_id(group).build());
                    }
                    output = output.network_interfaces(eni.build());
                }
                output.build()
            });
        let tags = mock!(aws_sdk_ec2::Client::create_tags).then_output(|| {
            aws_sdk_ec2::operation::create_tags::CreateTagsOutput::builder().build()
        });
        let state = self.groups.clone();
        let attach_late = self.attach_late.clone();
        let modify = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute)
            .then_compute_response(move |input| {
                if attach_late.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    state
                        .lock()
                        .unwrap()
                        .insert("eni-0third".into(), vec!["sg-0web".into()]);
                }
                let eni = input.network_interface_id().unwrap_or_default().to_owned();
                let target = input.groups().to_vec();
                if fails(&eni, &target) {
                    return aws_smithy_mocks::MockResponse::Error(
                        ModifyNetworkInterfaceAttributeError::generic(
                            ErrorMetadata::builder()
                                .code("RequestLimitExceeded")
                                .message("injected")
                                .build(),
                        ),
                    );
                }
                state.lock().unwrap().insert(eni, target);
                aws_smithy_mocks::MockResponse::Output(
                    ModifyNetworkInterfaceAttributeOutput::builder().build(),
                )
            });
        vec![describe, groups, interfaces, tags, modify]
    }
}

/// Runs the isolation of the two-interface instance with `fails` deciding which moves fail.
async fn isolate_with(fails: Fails) -> (Enis, RunOutcome, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let enis = Enis::new();
    let rules = enis.rules(fails);
    let outcome = run_on(dir.path(), ISOLATE, &rules.iter().collect::<Vec<_>>()).await;
    let records = records(&outcome.journal);
    std::mem::forget(dir);
    (enis, outcome, records)
}

fn failure_of(records: &[Value]) -> (String, Vec<Value>) {
    let failed = records
        .iter()
        .find(|r| r["type"] == "step_failed")
        .expect("the step failed");
    (
        failed["message"].as_str().unwrap().to_owned(),
        failed["outputs"]["interfaces"].as_array().unwrap().clone(),
    )
}

/// H2: when the second interface's move into isolation keeps failing (every attempt, whatever
/// the error), it goes back to its original groups — never left in the all-traffic group — and
/// the other interface stays isolated. Each interface's intent is journaled before its first
/// move. Time is paused: the backoffs take no wall-clock time.
#[tokio::test(start_paused = true)]
async fn a_failed_isolation_move_restores_the_interface_never_leaving_it_open() {
    let (enis, outcome, records) =
        isolate_with(|eni, target| eni == "eni-0second" && target == ["sg-0isolation".to_owned()])
            .await;
    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(enis.of("eni-0first"), ["sg-0isolation"]);
    assert_eq!(
        enis.of("eni-0second"),
        ["sg-0admin"],
        "restored, not untracked"
    );
    let (message, interfaces) = failure_of(&records);
    assert!(message.contains("NOT isolated: eni-0second"), "{message}");
    assert!(!message.contains("OPEN"), "{message}");
    assert_eq!(interfaces[1]["state"], "restored");
    assert_eq!(interfaces[0]["state"], "isolated");
    assert_eq!(interfaces[0]["verified"], true);
    let intents: Vec<&Value> = records.iter().filter(|r| r["type"] == "intent").collect();
    assert_eq!(intents.len(), 2, "one intent per interface");
    assert_eq!(intents[1]["resource"], "eni-0second");
    assert_eq!(intents[1]["from"], serde_json::json!(["sg-0admin"]));
    assert_eq!(
        intents[1]["to"],
        serde_json::json!(["sg-0untrack", "sg-0isolation"])
    );
    let first_move = records
        .iter()
        .position(|r| {
            r["operation"] == "ModifyNetworkInterfaceAttribute" && r["targets"][0] == "eni-0second"
        })
        .unwrap();
    let intent = records
        .iter()
        .position(|r| r["type"] == "intent" && r["resource"] == "eni-0second")
        .unwrap();
    assert!(
        intent < first_move,
        "the intent comes before the first move"
    );
    let isolation_attempts = records
        .iter()
        .filter(|r| {
            r["operation"] == "ModifyNetworkInterfaceAttribute"
                && r["targets"] == serde_json::json!(["eni-0second", "sg-0isolation"])
        })
        .count();
    assert_eq!(isolation_attempts, 10, "retried whatever the error class");
}

/// H2: when neither the move into isolation nor the way back goes through, the interface is
/// reported OPEN, loudly, in the step's error and outputs.
#[tokio::test(start_paused = true)]
async fn an_interface_stuck_in_the_untrack_group_is_reported_open() {
    let (enis, outcome, records) =
        isolate_with(|eni, target| eni == "eni-0second" && target != ["sg-0untrack".to_owned()])
            .await;
    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(enis.of("eni-0second"), ["sg-0untrack"]);
    let (message, interfaces) = failure_of(&records);
    assert!(message.contains("OPEN"), "{message}");
    assert!(message.contains("eni-0second"), "{message}");
    assert_eq!(interfaces[1]["state"], "OPEN");
    let outputs = &records.iter().find(|r| r["type"] == "step_failed").unwrap()["outputs"];
    assert_eq!(outputs["open"], serde_json::json!(["eni-0second"]));
}

/// H2: a failed untrack move goes straight to isolation (succeeding), and says that tracked
/// connections may survive.
#[tokio::test(start_paused = true)]
async fn a_failed_untrack_move_still_isolates_and_says_tracked_flows_may_survive() {
    let (enis, outcome, records) =
        isolate_with(|_, target| target == ["sg-0untrack".to_owned()]).await;
    assert_eq!(outcome.status, RunStatus::Succeeded);
    assert_eq!(enis.of("eni-0first"), ["sg-0isolation"]);
    assert_eq!(enis.of("eni-0second"), ["sg-0isolation"]);
    let done = records
        .iter()
        .find(|r| r["type"] == "step_succeeded")
        .unwrap();
    assert_eq!(
        done["outputs"]["tracked_flows_may_survive"],
        serde_json::json!(["eni-0first", "eni-0second"])
    );
}

/// The shipped order's head: describe, isolate, then the preservation steps, which continue on
/// failure.
const ISOLATE_THEN_PRESERVE: &str = r#"
version: 1
name: isolate-then-preserve
steps:
  - id: describe
    action: ec2.describe_instance
    with: { instance_id: "i-0123456789abcdef0" }
  - id: isolate
    action: ec2.isolate_instance
    with: { instance_id: "i-0123456789abcdef0" }
  - id: protect
    action: ec2.protect_instance
    on_failure: continue
    with: { instance_id: "i-0123456789abcdef0" }
  - id: detach_asg
    action: ec2.detach_from_autoscaling
    on_failure: continue
    with: { instance_id: "i-0123456789abcdef0", mode: detach }
"#;

/// H8: a Spot instance (termination protection refused) that is an Auto Scaling member still
/// in `Pending` (detach refused) is isolated all the same: isolation comes first, and the
/// preservation steps that cannot be done are recorded and passed over.
#[tokio::test]
async fn a_spot_instance_in_a_pending_auto_scaling_group_is_still_isolated() {
    use aws_sdk_autoscaling::operation::describe_auto_scaling_instances::DescribeAutoScalingInstancesOutput;
    use aws_sdk_autoscaling::operation::set_instance_protection::SetInstanceProtectionError;
    use aws_sdk_autoscaling::types::AutoScalingInstanceDetails;
    use aws_sdk_ec2::operation::describe_iam_instance_profile_associations::DescribeIamInstanceProfileAssociationsOutput;
    use aws_sdk_ec2::operation::describe_instance_attribute::DescribeInstanceAttributeOutput;
    use aws_sdk_ec2::operation::modify_instance_attribute::ModifyInstanceAttributeError;
    let dir = tempfile::tempdir().unwrap();
    let enis = Enis::new();
    let mut ec2 = enis.rules(|_, _| false);
    ec2.push(
        mock!(aws_sdk_ec2::Client::describe_iam_instance_profile_associations)
            .then_output(|| DescribeIamInstanceProfileAssociationsOutput::builder().build()),
    );
    ec2.push(
        mock!(aws_sdk_ec2::Client::describe_instance_attribute)
            .then_output(|| DescribeInstanceAttributeOutput::builder().build()),
    );
    ec2.push(
        mock!(aws_sdk_ec2::Client::modify_instance_attribute).then_error(|| {
            ModifyInstanceAttributeError::generic(
                ErrorMetadata::builder()
                    .code("UnsupportedOperation")
                    .message("Termination protection cannot be enabled for Spot Instances")
                    .build(),
            )
        }),
    );
    let autoscaling = vec![
        mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_instances).then_output(|| {
            DescribeAutoScalingInstancesOutput::builder()
                .auto_scaling_instances(
                    AutoScalingInstanceDetails::builder()
                        .instance_id(INSTANCE)
                        .auto_scaling_group_name("workers")
                        .lifecycle_state("Pending:Wait")
                        .availability_zone("us-east-1a")
                        .health_status("HEALTHY")
                        .protected_from_scale_in(false)
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_autoscaling::Client::set_instance_protection).then_error(|| {
            SetInstanceProtectionError::generic(
                ErrorMetadata::builder()
                    .code("ValidationError")
                    .message("The instance is not in InService or Standby")
                    .build(),
            )
        }),
    ];
    let aws = MockAws::new().ec2(ec2).autoscaling(autoscaling).build();
    let ran = Run::yaml(dir.path(), ISOLATE_THEN_PRESERVE)
        .clients(aws.clients.clone())
        .start(dir.path())
        .await;
    assert_eq!(enis.of("eni-0first"), ["sg-0isolation"]);
    assert_eq!(enis.of("eni-0second"), ["sg-0isolation"]);
    let steps: Vec<(String, String)> = ran.outcome["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("describe".to_owned(), "succeeded".to_owned()),
            ("isolate".to_owned(), "succeeded".to_owned()),
            ("protect".to_owned(), "failed".to_owned()),
            ("detach_asg".to_owned(), "failed".to_owned()),
        ]
    );
    let failures = ran.failures();
    assert!(
        failures.contains("Spot") && failures.contains("InService"),
        "{failures}"
    );
}

/// H8, M13: the shipped EC2 runbooks isolate before anything that could hold isolation up, and
/// their preservation steps continue on failure.
#[test]
fn the_shipped_order_isolates_first() {
    for path in [
        "runbooks/ec2-instance-compromise.yaml",
        "runbooks/ec2-fleet-containment.yaml",
    ] {
        let runbook = firebreak::check::load(Path::new(path)).unwrap().runbook;
        // In running order: a group's inner steps (the fleet's per-instance pipeline) in its
        // place.
        let steps: Vec<_> = runbook.action_steps().collect();
        let position = |id: &str| steps.iter().position(|s| s.id == id).unwrap();
        for later in [
            "protect",
            "detach_asg",
            "console",
            "snapshot",
            "tag",
            "stop",
        ] {
            assert!(
                position("isolate") < position(later),
                "{path}: isolate before {later}"
            );
        }
        for preservation in ["protect", "detach_asg", "console"] {
            let step = steps[position(preservation)];
            assert_eq!(
                step.on_failure,
                firebreak::runbook::model::OnFailure::Continue,
                "{path}: {preservation} continues on failure"
            );
        }
        // Collection before isolation only when asked, and bounded.
        for collect in ["volatile_early", "memory_early"] {
            if let Some(step) = steps.iter().find(|s| s.id == collect) {
                assert!(position(collect) < position("isolate"));
                assert!(
                    step.when
                        .as_deref()
                        .unwrap_or_default()
                        .contains("collect_before_isolation"),
                    "{path}: {collect} is opt-in"
                );
                assert_eq!(
                    step.timeout.as_deref(),
                    Some("2m"),
                    "{path}: {collect} bounded"
                );
            }
        }
        // Otherwise (M13) right after isolation, through the collection path, which is closed
        // before the credentials go (the agent needs them while it runs).
        if runbook.steps.iter().any(|s| s.id == "volatile") {
            let order = [
                "isolate",
                "collection_open",
                "volatile",
                "memory",
                "collection_close",
                "metadata",
                "profile",
            ];
            for pair in order.windows(2) {
                assert!(
                    position(pair[0]) < position(pair[1]),
                    "{path}: {} before {}",
                    pair[0],
                    pair[1]
                );
            }
            assert!(
                position("tag") < position("isolation_check")
                    && position("isolation_check") < position("approve_stop"),
                "{path}: isolation read back again before the decision"
            );
            for collect in ["volatile", "memory", "collection_close"] {
                let when = steps[position(collect)].when.clone().unwrap_or_default();
                assert!(
                    when.contains("steps.collection_open.outputs"),
                    "{path}: {collect} only through the collection path: {when}"
                );
            }
        }
    }
}

/// M2: an interface attached while the isolation runs (after the first look) is isolated by
/// the read-back's second pass and reported as attached during isolation.
#[tokio::test]
async fn an_interface_attached_during_isolation_is_isolated_too() {
    let dir = tempfile::tempdir().unwrap();
    let enis = Enis::new();
    enis.attach_late
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let rules = enis.rules(|_, _| false);
    let outcome = run_on(dir.path(), ISOLATE, &rules.iter().collect::<Vec<_>>()).await;
    assert_eq!(outcome.status, RunStatus::Succeeded);
    for eni in ["eni-0first", "eni-0second", "eni-0third"] {
        assert_eq!(enis.of(eni), ["sg-0isolation"], "{eni}");
    }
    let records = records(&outcome.journal);
    let done = records
        .iter()
        .find(|r| r["type"] == "step_succeeded")
        .unwrap();
    let third = done["outputs"]["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["network_interface_id"] == "eni-0third")
        .expect("the late interface is reported")
        .clone();
    assert_eq!(third["attached_during_isolation"], true);
    assert_eq!(third["verified"], true);
}

/// M13 wiring: the shipped runbook's collection steps run exactly when they should — a bucket
/// given and the agent online opens the path; volatile and the close follow an opened path;
/// memory also needs S3 in the path, `capture_memory` and the AVML hash; skipped steps' outputs
/// (absent) count as false, not as an error.
#[test]
fn the_shipped_collection_steps_run_exactly_when_the_path_is_open() {
    use firebreak::template::{Templates, truthy};
    let runbook = firebreak::check::load(Path::new("runbooks/ec2-instance-compromise.yaml"))
        .unwrap()
        .runbook;
    let when = |id: &str| {
        runbook
            .steps
            .iter()
            .find(|s| s.id == id)
            .and_then(|s| s.when.clone())
            .unwrap()
    };
    let templates = Templates::new();
    let holds =
        |id: &str, context: &Value| truthy(&templates.render_value(&when(id), context).unwrap());
    let params = serde_json::json!({
        "evidence_bucket": "evidence-123", "collect_before_isolation": false,
        "capture_memory": true, "avml_sha256": "ab".repeat(32),
    });
    // Nothing ran yet but the check: the agent online opens the path.
    let online = serde_json::json!({"params": params, "steps": {
        "ssm_status": {"status": "succeeded", "outputs": {"online": true}},
        "collection_open": {"status": "pending", "outputs": {}}}});
    assert!(holds("ssm_status", &online));
    assert!(holds("collection_open", &online));
    let offline = serde_json::json!({"params": params, "steps": {
        "ssm_status": {"status": "succeeded", "outputs": {"online": false}}}});
    assert!(!holds("collection_open", &offline));
    // Opened with S3: everything; opened without S3: no memory; not opened: nothing.
    let path = |opened: bool, s3: bool| {
        serde_json::json!({"params": params, "steps": {
            "ssm_status": {"status": "succeeded", "outputs": {"online": true}},
            "collection_open": {"status": "succeeded", "outputs": {"opened": opened, "s3": s3}}}})
    };
    for step in ["volatile", "memory", "collection_close"] {
        assert!(holds(step, &path(true, true)), "{step} with the full path");
        assert!(!holds(step, &path(false, false)), "{step} without a path");
    }
    assert!(holds("volatile", &path(true, false)));
    assert!(!holds("memory", &path(true, false)), "no memory without S3");
    assert!(holds("collection_close", &path(true, false)));
    // No bucket: none of it, and the early variant only when asked.
    let mut none = path(true, true);
    none["params"]["evidence_bucket"] = serde_json::json!("");
    for step in [
        "ssm_status",
        "collection_open",
        "volatile",
        "memory",
        "collection_close",
        "volatile_early",
    ] {
        assert!(!holds(step, &none), "{step} without a bucket");
    }
    let mut early = path(false, false);
    early["params"]["collect_before_isolation"] = serde_json::json!(true);
    assert!(holds("volatile_early", &early) && holds("memory_early", &early));
    assert!(
        !holds("ssm_status", &early),
        "collected before, not again after"
    );
}
