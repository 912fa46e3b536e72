//! The crash matrix over every shipped runbook: each runs once uncrashed on a seeded moto, then,
//! on moto reseeded the same way, aborts at a journal boundary (like a power cut), is resumed,
//! and must leave the same AWS state (`support::state::fingerprint`), a journal in which every
//! unit finished exactly once as in the uncrashed run, one `run_resumed`, and a chain that
//! verifies. `crash_matrix.rs` does this for every boundary of a fixture; this does it for what
//! operators actually run.
//!
//! Which boundaries: by default (CI) a stratified subset — `after-run-started`, and each of the
//! three step boundaries once, at units a sixth, half and five sixths of the way through the
//! runbook (a fanned-out unit at its item #0): every boundary kind of every runbook. With
//! `FIREBREAK_CRASH_MATRIX=full`, all three boundaries of every unit, items #0 and #1. Each
//! test prints how many points ran and how long it took (for the README).
//!
//! Needs the `fault-injection` feature (scripts/test enables it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use firebreak::journal::{Event, Record, RunStatus};

use crate::support::journal::{Journal, only_journal};
use crate::support::run::{Run, id};
use crate::support::{crash, moto, output, sandbox, state};

/// The three boundaries the engine fires around each unit (src/engine/unit.rs).
const KINDS: [&str; 3] = [
    "after-step-started",
    "before-step-finished",
    "after-step-finished",
];

/// A shipped runbook and how `declared_calls.rs` sets it up on moto.
#[derive(Clone, Copy, Debug)]
enum Shipped {
    InstanceCompromise,
    FleetContainment,
    Release,
    CleanRoom,
    AccessKey,
    RoleExfiltration,
    Kickoff,
    BucketExposure,
    BucketRelease,
    FunctionCompromise,
    FunctionRelease,
    IdentityCenterUser,
    IdentityCenterRelease,
    IamRelease,
}

impl Shipped {
    fn name(self) -> &'static str {
        match self {
            Shipped::InstanceCompromise => "ec2-instance-compromise",
            Shipped::FleetContainment => "ec2-fleet-containment",
            Shipped::Release => "ec2-release",
            Shipped::CleanRoom => "forensic-clean-room",
            Shipped::AccessKey => "iam-access-key-compromise",
            Shipped::RoleExfiltration => "iam-role-credential-exfiltration",
            Shipped::Kickoff => "incident-kickoff",
            Shipped::BucketExposure => "s3-bucket-exposure",
            Shipped::BucketRelease => "s3-release",
            Shipped::FunctionCompromise => "lambda-function-compromise",
            Shipped::FunctionRelease => "lambda-release",
            Shipped::IdentityCenterUser => "identity-center-user-compromise",
            Shipped::IdentityCenterRelease => "identity-center-release",
            Shipped::IamRelease => "iam-release",
        }
    }

    fn path(self) -> String {
        format!("runbooks/{}.yaml", self.name())
    }

    /// Seeds moto (reset by the caller) for the runbook and returns its parameters. A run the
    /// runbook starts from (the containment a release or a clean room follows) runs first, its
    /// journal in `scratch`.
    async fn setup(self, scratch: &Path) -> Vec<(String, String)> {
        match self {
            Shipped::InstanceCompromise => containment_params(&seeded_with_planted_groups().await),
            Shipped::FleetContainment => {
                let fleet = format!(
                    "{},{}",
                    id(&sandbox::seed("web-1"), "instance_id"),
                    id(&sandbox::seed("web-2"), "instance_id")
                );
                owned(&[("instance_ids", &fleet), ("case_id", "case-2")])
            }
            Shipped::Release => {
                let (ids, journal, _) = contained(scratch).await;
                owned(&[
                    ("journal", &journal.display().to_string()),
                    ("instance_ids", &id(&ids, "instance_id")),
                ])
            }
            Shipped::CleanRoom => {
                let (_, _, snapshots) = contained(scratch).await;
                owned(&[
                    ("case_id", "case-1"),
                    ("snapshot_ids", &snapshots.join(",")),
                    ("availability_zone", "us-east-1a"),
                    ("s3_prefix_list_id", "pl-0123456789abcdef0"),
                    (
                        "investigator_principal_arn",
                        "arn:aws:iam::123456789012:role/ir-team",
                    ),
                ])
            }
            Shipped::AccessKey => {
                sandbox::seed("web-1");
                let key = state::seed_principals().await;
                owned(&[("access_key_id", &key), ("user_name", "leaky")])
            }
            Shipped::RoleExfiltration => {
                let ids = sandbox::seed("web-1");
                state::seed_principals().await;
                owned(&[
                    ("role_name", "web-1-app"),
                    ("instance_id", &id(&ids, "instance_id")),
                ])
            }
            Shipped::Kickoff => {
                // Two resources, so the fan-out has an item #1 to crash at.
                let ids = sandbox::seed("web-1");
                let resources = format!("{},{}", id(&ids, "instance_id"), id(&ids, "vpc_id"));
                owned(&[("summary", "crash matrix"), ("resources", &resources)])
            }
            Shipped::BucketExposure => {
                crate::s3_exposure::seed_public_bucket(
                    &s3().await,
                    "crash-bucket",
                    &[("team", "data")],
                )
                .await;
                owned(&[
                    ("bucket", "crash-bucket"),
                    ("restrict_policy", "true"),
                    ("case_id", "case-s3"),
                ])
            }
            Shipped::BucketRelease => {
                crate::s3_exposure::seed_public_bucket(
                    &s3().await,
                    "crash-bucket",
                    &[("team", "data")],
                )
                .await;
                let journal = ran_before(
                    scratch,
                    "runbooks/s3-bucket-exposure.yaml",
                    &[
                        ("bucket", "crash-bucket"),
                        ("restrict_policy", "true"),
                        ("case_id", "case-s3"),
                    ],
                )
                .await;
                owned(&[("journal", &journal), ("bucket", "crash-bucket")])
            }
            Shipped::FunctionCompromise => {
                crate::lambda_compromise::seed("crash-fn");
                owned(&[("function_name", "crash-fn"), ("case_id", "case-fn")])
            }
            Shipped::FunctionRelease => {
                crate::lambda_compromise::seed("crash-fn");
                let journal = ran_before(
                    scratch,
                    "runbooks/lambda-function-compromise.yaml",
                    &[("function_name", "crash-fn"), ("case_id", "case-fn")],
                )
                .await;
                owned(&[("journal", &journal), ("function_name", "crash-fn")])
            }
            Shipped::IdentityCenterUser => {
                crate::identity_center::script(&["seed", "crash-user"]);
                owned(&[("sso_user", "crash-user")])
            }
            Shipped::IdentityCenterRelease => {
                crate::identity_center::script(&["seed", "crash-user"]);
                let journal = ran_before(
                    scratch,
                    "runbooks/identity-center-user-compromise.yaml",
                    &[("sso_user", "crash-user")],
                )
                .await;
                owned(&[("journal", &journal), ("sso_user", "crash-user")])
            }
            Shipped::IamRelease => {
                sandbox::seed("web-1");
                let key = state::seed_principals().await;
                let journal = ran_before(
                    scratch,
                    "runbooks/iam-access-key-compromise.yaml",
                    &[
                        ("access_key_id", &key),
                        ("user_name", "leaky"),
                        ("case_id", "case-key"),
                    ],
                )
                .await;
                owned(&[("journal", &journal), ("reactivate_key", "true")])
            }
        }
    }

    /// Sensitive parameters: not journaled, so given to `run` and again to `resume`.
    fn secrets(self) -> Vec<String> {
        match self {
            Shipped::Kickoff => vec!["-p".into(), "pager_token=tok-crash-runbooks".into()],
            _ => Vec::new(),
        }
    }

    /// `firebreak run <runbook> --yes -p k=v …`.
    fn run_args(self, params: &[(String, String)]) -> Vec<String> {
        let mut args = vec!["run".to_owned(), self.path(), "--yes".to_owned()];
        for (key, value) in params {
            args.push("-p".into());
            args.push(format!("{key}={value}"));
        }
        args.extend(self.secrets());
        args
    }
}

/// `web-1` seeded, with firebreak-named groups planted in its VPC (as `declared_calls.rs`
/// contains it: isolation takes the name-collision path and names its group with its run id).
async fn seeded_with_planted_groups() -> serde_json::Value {
    let ids = sandbox::seed("web-1");
    state::plant_groups(&id(&ids, "vpc_id")).await;
    ids
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// ec2-instance-compromise's parameters for the seeded instance, as `declared_calls.rs` runs it.
fn containment_params(ids: &serde_json::Value) -> Vec<(String, String)> {
    owned(&[
        ("instance_id", &id(ids, "instance_id")),
        ("case_id", "case-1"),
        ("quarantine_profile_arn", &id(ids, "quarantine_profile_arn")),
    ])
}

/// `web-1` contained by ec2-instance-compromise (in-process, uncrashed), its journal in
/// `scratch`: the seed's ids, the journal and the case's snapshots.
async fn contained(scratch: &Path) -> (serde_json::Value, PathBuf, Vec<String>) {
    let ids = seeded_with_planted_groups().await;
    let params = containment_params(&ids);
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let ran = Run::repo("runbooks/ec2-instance-compromise.yaml")
        .params(&params)
        .start(scratch)
        .await;
    ran.assert_succeeded();
    let snapshots = ran.outputs("snapshot")["snapshot_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    (ids, ran.run.journal.clone(), snapshots)
}

/// An S3 client straight to moto.
async fn s3() -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&moto::direct_config().await)
            .force_path_style(true)
            .build(),
    )
}

/// The containment a release follows, run in-process (uncrashed) with its journal in
/// `scratch`; the journal's path.
async fn ran_before(scratch: &Path, runbook: &str, params: &[(&str, &str)]) -> String {
    let ran = Run::repo(runbook).params(params).start(scratch).await;
    ran.assert_succeeded();
    ran.run.journal.display().to_string()
}

/// A step as the engine fires its boundaries: its qualified id, and whether it runs per item
/// (`for_each`, or an inner step of a group) so its points carry `#<index>`.
struct Unit {
    id: String,
    fanned: bool,
}

/// The runbook's units, in order, from the runbook itself.
fn units(runbook: Shipped) -> Vec<Unit> {
    let loaded = firebreak::check::load(&crate::support::repo(&runbook.path()))
        .unwrap_or_else(|e| panic!("{} loads: {e}", runbook.name()));
    let groups: Vec<String> = loaded
        .runbook
        .steps
        .iter()
        .filter(|s| s.is_group())
        .map(|s| format!("{}.", s.id))
        .collect();
    loaded
        .runbook
        .qualified_action_steps()
        .into_iter()
        .map(|(id, step)| Unit {
            fanned: step.for_each.is_some() || groups.iter().any(|g| id.starts_with(g.as_str())),
            id,
        })
        .collect()
}

/// The name each unit's boundaries carry in the uncrashed run: `<id>`, or `<id>#<index>` for
/// each item that started. Empty for a unit that never ran (its `when` was false).
fn started(unit: &Unit, records: &[Record]) -> Vec<String> {
    let mut names: Vec<String> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::StepStarted(e) if !unit.fanned && e.step == unit.id => Some(unit.id.clone()),
            Event::ItemStarted(e) if unit.fanned && e.step == unit.id => {
                e.item_index.map(|i| format!("{}#{i}", unit.id))
            }
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The crash points for `runbook`, given the uncrashed run's records; and the units that never
/// ran there (no boundary of theirs fires).
fn crash_points(runbook: Shipped, records: &[Record], full: bool) -> (Vec<String>, Vec<String>) {
    let mut points = vec!["after-run-started".to_string()];
    let mut never_ran = Vec::new();
    let mut ran: Vec<Vec<String>> = Vec::new();
    for unit in units(runbook) {
        let names = started(&unit, records);
        if names.is_empty() {
            never_ran.push(unit.id);
        } else {
            ran.push(names);
        }
    }
    if full {
        for names in &ran {
            for name in names.iter().take(2) {
                for kind in KINDS {
                    points.push(format!("{kind}:{name}"));
                }
            }
        }
    } else {
        // Each kind once, spread over the runbook (a sixth, half and five sixths of the way
        // through its units): every boundary kind of every runbook, in a CI-sized budget.
        let n = ran.len();
        for (k, kind) in KINDS.iter().enumerate() {
            let at = ((2 * k + 1) * n / 6).min(n - 1);
            points.push(format!("{kind}:{}", ran[at][0]));
        }
    }
    (points, never_ran)
}

fn full() -> bool {
    std::env::var("FIREBREAK_CRASH_MATRIX").is_ok_and(|v| v == "full")
}

/// [`crash::crash_at`] for points that may not be reached: the journal the aborted run left,
/// or `None` when the run ended normally without reaching the point.
fn try_crash_at(point: &str, dir: &Path, args: &[String]) -> Option<PathBuf> {
    let out = output(crash::command(dir).env("FIREBREAK_FAULT", point).args(args));
    match out.code {
        None => Some(only_journal(dir)),
        Some(0) => None,
        Some(code) => panic!("{point}: exit {code} instead of an abort\n{}", out.stderr),
    }
}

/// Each unit's end records, by `<step>` or `<step>#<index>`: their kinds, in order. Equal to
/// the uncrashed run's means every unit ended exactly once, the same way.
fn ends(records: &[Record]) -> BTreeMap<String, Vec<String>> {
    let mut ends: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for record in records {
        let (step, index) = match &record.event {
            Event::StepSucceeded(e) | Event::ItemSucceeded(e) => (&e.step, e.item_index),
            Event::StepFailed(e) | Event::ItemFailed(e) => (&e.step, e.item_index),
            Event::StepSkipped(e) => (&e.step, e.item_index),
            _ => continue,
        };
        let key = match index {
            Some(i) => format!("{step}#{i}"),
            None => step.clone(),
        };
        ends.entry(key)
            .or_default()
            .push(record.event.kind().to_owned());
    }
    ends
}

/// The uncrashed run: its journal's records and the state it left.
struct Reference {
    records: Vec<Record>,
    fingerprint: BTreeMap<String, String>,
}

async fn uncrashed(runbook: Shipped) -> Reference {
    let scratch = tempfile::tempdir().unwrap();
    let params = runbook.setup(scratch.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = output(crash::command(dir.path()).args(runbook.run_args(&params)));
    assert_eq!(
        out.code,
        Some(0),
        "{}: the uncrashed run failed:\n{}",
        runbook.name(),
        out.stderr
    );
    let records = Journal::read(&only_journal(dir.path())).records;
    for (unit, kinds) in ends(&records) {
        assert_eq!(
            kinds.len(),
            1,
            "{}: uncrashed, `{unit}` ended {kinds:?}",
            runbook.name()
        );
    }
    Reference {
        records,
        fingerprint: state::fingerprint().await,
    }
}

/// Crashes `runbook` at each chosen point on freshly seeded moto, resumes it, and compares.
async fn matrix(runbook: Shipped) {
    crash::assert_fault_injection();
    let _moto = moto::exclusive().await;
    let clock = Instant::now();
    let name = runbook.name();
    let reference = uncrashed(runbook).await;
    let expected_ends = ends(&reference.records);
    let (points, never_ran) = crash_points(runbook, &reference.records, full());
    let mut not_reached = Vec::new();
    for point in &points {
        moto::reset();
        let scratch = tempfile::tempdir().unwrap();
        let params = runbook.setup(scratch.path()).await;
        let dir = tempfile::tempdir().unwrap();
        let Some(journal) = try_crash_at(point, dir.path(), &runbook.run_args(&params)) else {
            not_reached.push(point.clone());
            continue;
        };
        let secrets = runbook.secrets();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let resumed = crash::resume(dir.path(), &journal, &secrets);
        assert_eq!(
            resumed.code,
            Some(0),
            "{name} crashed at {point}: resume failed:\n{}",
            resumed.stderr
        );
        let verified = crash::verify(&journal);
        assert_eq!(
            verified.code,
            Some(0),
            "{name} crashed at {point}: the journal does not verify:\n{}{}",
            verified.stdout,
            verified.stderr
        );
        let records = Journal::read(&journal).records;
        assert_eq!(
            ends(&records),
            expected_ends,
            "{name} crashed at {point}: units did not end exactly once as uncrashed"
        );
        let resumes = records
            .iter()
            .filter(|r| matches!(r.event, Event::RunResumed(_)))
            .count();
        assert_eq!(resumes, 1, "{name} crashed at {point}: run_resumed records");
        assert!(
            matches!(&records.last().unwrap().event, Event::RunFinished(f) if f.status == RunStatus::Succeeded),
            "{name} crashed at {point}: the journal does not end with a succeeded run_finished"
        );
        let after = state::fingerprint().await;
        assert_eq!(
            after,
            reference.fingerprint,
            "{name} crashed at {point}: AWS state differs from the uncrashed run's:\n{}",
            state::diff(&reference.fingerprint, &after)
        );
    }
    let reached = points.len() - not_reached.len();
    eprintln!(
        "crash matrix {name} ({}): {} points, {reached} reached, not reached {not_reached:?}; \
         units that never ran uncrashed {never_ran:?}; {:.1}s",
        if full() { "full" } else { "stratified" },
        points.len(),
        clock.elapsed().as_secs_f64()
    );
    assert!(
        reached * 5 >= points.len() * 4,
        "{name}: only {reached} of {} crash points were reached; not reached: {not_reached:?}",
        points.len()
    );
}

#[tokio::test]
async fn ec2_instance_compromise_resumes_to_the_same_state_after_a_crash() {
    matrix(Shipped::InstanceCompromise).await;
}

#[tokio::test]
async fn ec2_fleet_containment_resumes_to_the_same_state_after_a_crash() {
    matrix(Shipped::FleetContainment).await;
}

#[tokio::test]
async fn ec2_release_resumes_to_the_same_state_after_a_crash() {
    matrix(Shipped::Release).await;
}

#[tokio::test]
async fn forensic_clean_room_resumes_to_the_same_state_after_a_crash() {
    matrix(Shipped::CleanRoom).await;
}

#[tokio::test]
async fn iam_access_key_compromise_resumes_to_the_same_state_after_a_crash() {
    matrix(Shipped::AccessKey).await;
}

#[tokio::test]
async fn iam_role_credential_exfiltration_resumes_to_the_same_state_after_a_crash() {
    matrix(Shipped::RoleExfiltration).await;
}

#[tokio::test]
async fn incident_kickoff_resumes_to_the_same_state_after_a_crash() {
    matrix(Shipped::Kickoff).await;
}

#[tokio::test]
async fn s3_bucket_exposure_resumes_to_the_same_state_after_a_crash() {
    matrix(Shipped::BucketExposure).await;
}

#[tokio::test]
async fn s3_release_resumes_to_the_same_state_after_a_crash() {
    matrix(Shipped::BucketRelease).await;
}

#[tokio::test]
async fn lambda_function_compromise_resumes_to_the_same_state_after_a_crash() {
    matrix(Shipped::FunctionCompromise).await;
}

#[tokio::test]
async fn lambda_release_resumes_to_the_same_state_after_a_crash() {
    matrix(Shipped::FunctionRelease).await;
}

#[tokio::test]
async fn identity_center_user_compromise_resumes_to_the_same_state_after_a_crash() {
    matrix(Shipped::IdentityCenterUser).await;
}

#[tokio::test]
async fn iam_release_resumes_to_the_same_state_after_a_crash() {
    matrix(Shipped::IamRelease).await;
}

#[tokio::test]
async fn identity_center_release_resumes_to_the_same_state_after_a_crash() {
    matrix(Shipped::IdentityCenterRelease).await;
}
