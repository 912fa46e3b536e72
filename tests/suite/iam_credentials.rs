//! The IAM credential actions and runbooks against moto, through the built binary.
//!
//! moto knows AWS managed policies (the quarantine policy) only with
//! `MOTO_IAM_LOAD_MANAGED_POLICIES=true`, which `scripts/moto.sh` and the harness's own moto set.

use std::path::{Path, PathBuf};

use crate::support::json::step;
use crate::support::{crash, firebreak, moto, sandbox};
use serde_json::Value;
use sha2::{Digest, Sha256};

const QUARANTINE_ARN: &str = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3";
const KEY_RUNBOOK: &str = "runbooks/iam-access-key-compromise.yaml";
const ROLE_RUNBOOK: &str = "runbooks/iam-role-credential-exfiltration.yaml";
const ROLE_FIXTURE: &str = "tests/fixtures/iam/role-revoke.yaml";

struct Ran {
    code: Option<i32>,
    outcome: Value,
    stderr: String,
    stdout: String,
}

fn run_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let out = firebreak()
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", dir)
        .envs(env.iter().copied())
        .args(args)
        .args(["--output", "json"])
        .output()
        .unwrap();
    Ran {
        code: out.status.code(),
        outcome: serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

fn run(dir: &Path, args: &[&str]) -> Ran {
    run_with(dir, args, &[])
}

fn records(journal: &Path) -> Vec<Value> {
    crate::support::journal::values(journal)
}

fn is_read(operation: &str) -> bool {
    ["Describe", "Get", "List", "Lookup"]
        .iter()
        .any(|p| operation.starts_with(p))
}

/// Every API call that is not a read, sent or (in a drill) not sent.
fn mutating_calls(journal: &Path) -> Vec<String> {
    records(journal)
        .iter()
        .filter(|r| r["type"] == "api_call")
        .filter_map(|r| r["operation"].as_str().map(str::to_owned))
        .filter(|op| !is_read(op))
        .collect()
}

fn journal_of(outcome: &Value) -> PathBuf {
    PathBuf::from(outcome["journal"].as_str().expect("a journal path"))
}

fn verify(journal: &Path) {
    let out = firebreak()
        .args(["journal", "verify"])
        .arg(journal)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "journal verify: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn jsonl_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect()
}

async fn iam() -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&moto::direct_config().await)
}

/// A user with two access keys and a console password; returns (key ids, secret of the first).
async fn seed_user(iam: &aws_sdk_iam::Client, user: &str) -> (Vec<String>, String) {
    iam.create_user().user_name(user).send().await.unwrap();
    let mut ids = Vec::new();
    let mut secret = String::new();
    for _ in 0..2 {
        let key = iam
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .unwrap();
        let key = key.access_key().unwrap();
        if secret.is_empty() {
            secret = key.secret_access_key().to_owned();
        }
        ids.push(key.access_key_id().to_owned());
    }
    iam.create_login_profile()
        .user_name(user)
        .password("Correct-Horse-9!")
        .send()
        .await
        .unwrap();
    (ids, secret)
}

/// The cutoff in a principal's `AWSRevokeOlderSessions` policy document (URL-encoded, as IAM
/// returns it).
fn cutoff_in(document: &str) -> String {
    let document: Value = serde_json::from_str(&sandbox::percent_decode(document)).unwrap();
    let statement = &document["Statement"][0];
    assert_eq!(statement["Effect"], "Deny", "{document}");
    assert_eq!(statement["Action"], serde_json::json!(["*"]), "{document}");
    statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
        .as_str()
        .unwrap_or_else(|| panic!("no cutoff in {document}"))
        .to_owned()
}

async fn user_cutoff(iam: &aws_sdk_iam::Client, user: &str) -> String {
    let policy = iam
        .get_user_policy()
        .user_name(user)
        .policy_name("AWSRevokeOlderSessions")
        .send()
        .await
        .unwrap();
    cutoff_in(policy.policy_document())
}

async fn role_cutoff(iam: &aws_sdk_iam::Client, role: &str) -> String {
    let policy = iam
        .get_role_policy()
        .role_name(role)
        .policy_name("AWSRevokeOlderSessions")
        .send()
        .await
        .unwrap();
    cutoff_in(policy.policy_document())
}

async fn create_role(iam: &aws_sdk_iam::Client, name: &str, path: &str) {
    iam.create_role()
        .role_name(name)
        .path(path)
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_leaked_key_is_disabled_alone_and_its_user_contained_and_a_second_run_changes_nothing() {
    let _moto = moto::exclusive().await;
    let iam = iam().await;
    let (keys, secret) = seed_user(&iam, "alice").await;
    let (bystander_keys, _) = seed_user(&iam, "bob").await;
    let leaked = keys[0].as_str();
    let dir = tempfile::tempdir().unwrap();
    let param = format!("access_key_id={leaked}");
    let args = [
        "run",
        KEY_RUNBOOK,
        "-p",
        &param,
        "-p",
        "case_id=CASE-7",
        "--yes",
    ];

    let first = run(dir.path(), &args);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let outcome = &first.outcome;

    // Only the named key is Inactive; nothing is deleted; the other user is untouched.
    let mut expected = vec![
        (keys[0].clone(), "Inactive".to_owned()),
        (keys[1].clone(), "Active".to_owned()),
    ];
    expected.sort();
    assert_eq!(sandbox::key_statuses(&iam, "alice").await, expected);
    assert!(
        sandbox::key_statuses(&iam, "bob")
            .await
            .iter()
            .all(|(id, status)| bystander_keys.contains(id) && status == "Active")
    );
    let disabled = &step(outcome, "disable_key")["outputs"];
    assert_eq!(disabled["user_name"], "alice");
    assert_eq!(disabled["previous_status"], "Active");
    assert_eq!(disabled["status"], "Inactive");
    assert_eq!(disabled["changed"], true);
    assert_eq!(
        disabled["other_keys_untouched"][0]["access_key_id"],
        keys[1]
    );
    let journal = journal_of(outcome);
    let changes = mutating_calls(&journal);
    assert!(
        changes.iter().all(|op| op != "DeleteAccessKey"),
        "{changes:?}"
    );
    assert_eq!(
        changes,
        [
            "UpdateAccessKey",
            "PutUserPolicy",
            "AttachUserPolicy",
            "TagUser",
            "DeleteLoginProfile"
        ]
    );

    // The revoke policy carries the journaled cutoff.
    let revoked = &step(outcome, "revoke_sessions")["outputs"];
    let cutoff = user_cutoff(&iam, "alice").await;
    assert_eq!(revoked["cutoff"], cutoff.as_str());
    let journaled = records(&journal)
        .into_iter()
        .find(|r| r["type"] == "step_succeeded" && r["step"] == "revoke_sessions")
        .unwrap();
    assert_eq!(journaled["outputs"]["cutoff"], cutoff.as_str());

    // Quarantined, tagged, console password gone.
    let attached = iam
        .list_attached_user_policies()
        .user_name("alice")
        .send()
        .await
        .unwrap();
    assert!(
        attached
            .attached_policies()
            .iter()
            .any(|p| p.policy_arn() == Some(QUARANTINE_ARN)),
        "{attached:?}"
    );
    let tags = iam
        .list_user_tags()
        .user_name("alice")
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == "firebreak:case" && t.value() == "CASE-7")
    );
    let profile = iam.get_login_profile().user_name("alice").send().await;
    assert!(profile.is_err(), "the login profile is still there");
    let deleted = &step(outcome, "delete_console_password")["outputs"];
    assert_eq!(deleted["existed"], true);
    assert!(deleted["created"].is_string(), "{deleted}");

    // The inventory is evidence of the state before any change, and its hash matches the file.
    let inventory = &step(outcome, "inventory")["outputs"];
    assert_eq!(inventory["user_name"], "alice");
    assert_eq!(inventory["has_login_profile"], true);
    let artifact = &inventory["artifact"];
    let bytes = std::fs::read(artifact["path"].as_str().unwrap()).unwrap();
    assert_eq!(
        artifact["sha256"].as_str().unwrap(),
        hex::encode(Sha256::digest(&bytes))
    );
    assert_eq!(artifact["size"], bytes.len());
    let evidence: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(evidence["access_keys"].as_array().unwrap().len(), 2);
    assert!(
        evidence["access_keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["status"] == "Active"),
        "{evidence:#}"
    );
    let journaled_artifact = records(&journal)
        .into_iter()
        .find(|r| r["type"] == "evidence")
        .unwrap();
    assert_eq!(journaled_artifact["artifact"], *artifact);
    verify(&journal);

    // The secret key firebreak never asked for appears nowhere.
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(!text.contains(&secret) && !first.stdout.contains(&secret));

    // Again on the handled user: nothing changes, the cutoff stays (a second later, a new one
    // would differ), nobody is asked.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = run(dir.path(), &args);
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    let again = journal_of(&second.outcome);
    assert_eq!(mutating_calls(&again), Vec::<String>::new());
    assert_eq!(user_cutoff(&iam, "alice").await, cutoff);
    assert_eq!(
        step(&second.outcome, "revoke_sessions")["outputs"]["cutoff"],
        cutoff.as_str()
    );
    assert_eq!(
        step(&second.outcome, "disable_key")["outputs"]["previous_status"],
        "Inactive"
    );
    for id in ["approve_console", "delete_console_password"] {
        assert_eq!(step(&second.outcome, id)["status"], "skipped");
    }
    assert!(
        records(&again).iter().all(|r| r["type"] != "approval"),
        "asked for an approval with nothing to delete"
    );
    verify(&again);
}

#[tokio::test]
async fn a_drill_of_the_key_runbook_changes_nothing() {
    let _moto = moto::exclusive().await;
    let iam = iam().await;
    let (keys, _) = seed_user(&iam, "carol").await;
    let dir = tempfile::tempdir().unwrap();
    let param = format!("access_key_id={}", keys[1]);
    let drill = run(dir.path(), &["run", KEY_RUNBOOK, "-p", &param, "--dry-run"]);
    assert_eq!(drill.code, Some(0), "{}", drill.stderr);
    assert!(
        sandbox::key_statuses(&iam, "carol")
            .await
            .iter()
            .all(|(_, s)| s == "Active")
    );
    assert!(
        iam.get_login_profile()
            .user_name("carol")
            .send()
            .await
            .is_ok()
    );
    let disabled = &step(&drill.outcome, "disable_key")["outputs"];
    assert_eq!(disabled["dry_run"], true);
    assert_eq!(disabled["changed"], false);
    // Every change is journaled as "would call", none as sent.
    let journal = journal_of(&drill.outcome);
    let changes: Vec<Value> = records(&journal)
        .into_iter()
        .filter(|r| {
            r["type"] == "api_call"
                && r["step"] != "preflight"
                && !is_read(r["operation"].as_str().unwrap())
        })
        .collect();
    assert_eq!(changes.len(), 5, "{changes:#?}");
    assert!(changes.iter().all(|r| r["outcome"] == "not-sent (dry run)"));
}

#[tokio::test]
async fn a_key_id_in_lower_case_or_mistyped_is_refused_before_any_call() {
    let _moto = moto::exclusive().await;
    let iam = iam().await;
    let (keys, _) = seed_user(&iam, "dave").await;
    let dir = tempfile::tempdir().unwrap();
    let good = keys[0].as_str();
    let lower = good.to_lowercase();
    let short = &good[..19];
    let typo = format!("{}!", &good[..19]);
    let spaced = format!(" {good}");
    for bad in [lower.as_str(), short, typo.as_str(), spaced.as_str()] {
        let param = format!("access_key_id={bad}");
        let ran = run(dir.path(), &["run", KEY_RUNBOOK, "-p", &param, "--yes"]);
        assert_eq!(ran.code, Some(2), "{bad}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("access_key_id") && ran.stderr.contains("^(AKIA|ASIA)"),
            "{bad}: {}",
            ran.stderr
        );
        assert!(jsonl_files(dir.path()).is_empty(), "{bad}: a run started");
    }
    assert!(
        sandbox::key_statuses(&iam, "dave")
            .await
            .iter()
            .all(|(_, s)| s == "Active")
    );

    // A well-formed key this account does not have stops at the first read, before any change.
    let param = "access_key_id=AKIAZZZZZZZZZZZZZZZZ";
    let ran = run(dir.path(), &["run", KEY_RUNBOOK, "-p", param, "--yes"]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let inventory = step(&ran.outcome, "inventory");
    assert_eq!(inventory["status"], "failed");
    let journal = journal_of(&ran.outcome);
    let failure = records(&journal)
        .into_iter()
        .find(|r| r["type"] == "step_failed")
        .unwrap();
    assert!(
        failure["message"]
            .as_str()
            .unwrap()
            .contains("access key AKIAZZZZZZZZZZZZZZZZ not found in this account"),
        "{failure}"
    );
    assert_eq!(mutating_calls(&journal), Vec::<String>::new());
}

#[tokio::test]
async fn a_key_given_with_the_wrong_user_stops_before_any_change() {
    let _moto = moto::exclusive().await;
    let iam = iam().await;
    let (keys, _) = seed_user(&iam, "erin").await;
    seed_user(&iam, "frank").await;
    let dir = tempfile::tempdir().unwrap();
    let param = format!("access_key_id={}", keys[0]);
    let ran = run(
        dir.path(),
        &[
            "run",
            KEY_RUNBOOK,
            "-p",
            &param,
            "-p",
            "user_name=frank",
            "--yes",
        ],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert_eq!(
        mutating_calls(&journal_of(&ran.outcome)),
        Vec::<String>::new()
    );
    let message = records(&journal_of(&ran.outcome))
        .into_iter()
        .find(|r| r["type"] == "step_failed")
        .unwrap()["message"]
        .clone();
    assert!(
        message
            .as_str()
            .unwrap()
            .contains("belongs to IAM user erin, not frank"),
        "{message}"
    );
}

#[tokio::test]
async fn service_linked_roles_are_refused_before_any_change() {
    let _moto = moto::exclusive().await;
    let iam = iam().await;
    let role = "AWSServiceRoleForElasticBeanstalk";
    create_role(
        &iam,
        role,
        "/aws-service-role/elasticbeanstalk.amazonaws.com/",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let param = format!("role_name={role}");
    let ran = run(dir.path(), &["run", ROLE_FIXTURE, "-p", &param]);
    assert_eq!(ran.code, Some(3), "{}", ran.stderr);
    assert_eq!(ran.outcome["status"], "refused");
    let journal = journal_of(&ran.outcome);
    assert_eq!(mutating_calls(&journal), Vec::<String>::new());
    let failure = records(&journal)
        .into_iter()
        .find(|r| r["type"] == "step_failed")
        .unwrap();
    assert_eq!(failure["step"], "revoke_sessions");
    assert!(
        failure["message"]
            .as_str()
            .unwrap()
            .contains("is a service-linked role"),
        "{failure}"
    );
    let policies = iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap();
    assert!(policies.policy_names().is_empty());
    verify(&journal);
}

/// A crash after PutRolePolicy and before the step's outcome is journaled: the resumed step
/// finds its own policy (by statement id) and keeps the first cutoff, a second later.
#[tokio::test]
async fn a_resumed_revocation_keeps_its_first_cutoff() {
    let _moto = moto::exclusive().await;
    let iam = iam().await;
    create_role(&iam, "web-app", "/").await;
    iam.create_instance_profile()
        .instance_profile_name("web-app")
        .send()
        .await
        .unwrap();
    iam.add_role_to_instance_profile()
        .instance_profile_name("web-app")
        .role_name("web-app")
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = &crash::crash_at(
        "before-step-finished:revoke_sessions",
        dir.path(),
        &["run", ROLE_FIXTURE, "-p", "role_name=web-app"],
    );
    let cutoff = role_cutoff(&iam, "web-app").await;
    assert!(
        records(journal)
            .iter()
            .all(|r| !(r["type"] == "step_succeeded" && r["step"] == "revoke_sessions")),
        "the crash came after the outcome was journaled"
    );

    // A fresh cutoff would now be a later second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let resumed = crash::resume(dir.path(), journal, &[]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    assert_eq!(role_cutoff(&iam, "web-app").await, cutoff);
    let all = records(journal);
    let finished: Vec<&Value> = all
        .iter()
        .filter(|r| r["type"] == "step_succeeded" && r["step"] == "revoke_sessions")
        .collect();
    assert_eq!(finished.len(), 1);
    let outputs = &finished[0]["outputs"];
    assert_eq!(outputs["cutoff"], cutoff.as_str());
    assert_eq!(outputs["changed"], false);
    assert_eq!(outputs["instance_profiles_sharing_role"], 1);
    assert!(
        outputs["warning"]
            .as_str()
            .unwrap()
            .contains("1 instance profile(s) use role web-app"),
        "{outputs}"
    );
    // The policy was put once, by the attempt that crashed.
    let puts = all
        .iter()
        .filter(|r| r["type"] == "api_call" && r["operation"] == "PutRolePolicy")
        .filter(|r| r["step"] == "revoke_sessions")
        .count();
    assert_eq!(puts, 1);
    // The rest of the run: inline quarantine and the tag.
    let quarantine = iam
        .get_role_policy()
        .role_name("web-app")
        .policy_name("firebreak-quarantine")
        .send()
        .await
        .unwrap();
    let document: Value =
        serde_json::from_str(&sandbox::percent_decode(quarantine.policy_document())).unwrap();
    assert_eq!(document["Statement"][0]["Effect"], "Deny");
    assert_eq!(document["Statement"][0]["Action"], serde_json::json!(["*"]));
    let tags = iam
        .list_role_tags()
        .role_name("web-app")
        .send()
        .await
        .unwrap();
    assert!(tags.tags().iter().any(|t| t.key() == "firebreak:case"));
    verify(journal);

    // A new run of the fixture takes a new cutoff (its revocation has no case id, so it is keyed
    // by the step of each run) and a new case tag; the inline quarantine is already in place.
    let rerun = run(
        dir.path(),
        &[
            "run",
            ROLE_FIXTURE,
            "-p",
            "role_name=web-app",
            "-p",
            "case_id=C1",
        ],
    );
    assert_eq!(rerun.code, Some(0), "{}", rerun.stderr);
    assert_eq!(
        mutating_calls(&journal_of(&rerun.outcome)),
        ["PutRolePolicy", "TagRole"]
    );
    assert_ne!(role_cutoff(&iam, "web-app").await, cutoff);
    assert_eq!(
        step(&rerun.outcome, "quarantine")["outputs"]["already_attached"],
        true
    );
}

#[tokio::test]
async fn the_role_runbook_revokes_takes_the_profile_and_a_second_run_changes_nothing() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = ids["instance_id"].as_str().unwrap();
    let iam = iam().await;
    let role = "web-1-app";
    let dir = tempfile::tempdir().unwrap();
    let role_param = format!("role_name={role}");
    let instance_param = format!("instance_id={instance}");
    let args = [
        "run",
        ROLE_RUNBOOK,
        "-p",
        &role_param,
        "-p",
        &instance_param,
        "-p",
        "case_id=CASE-9",
    ];

    let first = run(dir.path(), &args);
    assert!(matches!(first.code, Some(0 | 1)), "{}", first.stderr);
    let outcome = &first.outcome;
    let revoked = &step(outcome, "revoke_sessions")["outputs"];
    assert_eq!(step(outcome, "revoke_sessions")["status"], "succeeded");
    assert_eq!(revoked["changed"], true);
    assert_eq!(revoked["instance_profiles_sharing_role"], 1);
    assert_eq!(revoked["previous_policy"], Value::Null);
    let cutoff = role_cutoff(&iam, role).await;
    assert_eq!(revoked["cutoff"], cutoff.as_str());
    let inventory = &step(outcome, "inventory")["outputs"];
    assert_eq!(inventory["role_name"], role);
    assert_eq!(inventory["instance_profiles"][0]["name"], role);
    assert_eq!(
        inventory["assume_role_policy"]["Statement"][0]["Action"],
        "sts:AssumeRole"
    );
    let journal = journal_of(outcome);
    assert_eq!(step(outcome, "replace_profile")["status"], "skipped");
    // `ec2.replace_instance_profile` comes with the EC2 issue; until it lands on this branch the
    // run stops at that step (and the tag step does not run). Either way is checked exactly.
    let profile = step(outcome, "disassociate_profile");
    if profile["status"] == "succeeded" {
        assert_eq!(first.code, Some(0), "{}", first.stderr);
        let associations = sandbox::ec2()
            .await
            .describe_iam_instance_profile_associations()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("instance-id")
                    .values(instance)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert!(
            associations
                .iam_instance_profile_associations()
                .iter()
                .all(|a| a.state().map(|s| s.as_str()) != Some("associated")),
            "{associations:?}"
        );
        let tags = iam.list_role_tags().role_name(role).send().await.unwrap();
        assert!(
            tags.tags()
                .iter()
                .any(|t| t.key() == "firebreak:case" && t.value() == "CASE-9")
        );
    } else {
        assert_eq!(first.code, Some(1), "{}", first.stderr);
        let failure = records(&journal)
            .into_iter()
            .find(|r| r["type"] == "step_failed")
            .unwrap();
        assert_eq!(failure["step"], "disassociate_profile");
        assert!(
            failure["message"]
                .as_str()
                .unwrap()
                .contains("not implemented yet"),
            "{failure}"
        );
    }
    verify(&journal);

    // Again for the same case: the role keeps its cutoff and nothing changes.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = run(dir.path(), &args);
    assert_eq!(second.code, first.code, "{}", second.stderr);
    assert_eq!(
        mutating_calls(&journal_of(&second.outcome)),
        Vec::<String>::new()
    );
    assert_eq!(role_cutoff(&iam, role).await, cutoff);
    let again = &step(&second.outcome, "revoke_sessions")["outputs"];
    assert_eq!(again["changed"], false);
    assert_eq!(again["cutoff"], cutoff.as_str());
}

/// A key whose owner is tagged `firebreak:protected` is refused before any change, whether the
/// user is named or only found from the key (the owner is looked up before the interlocks).
#[tokio::test]
async fn a_key_of_a_protected_user_is_refused_before_any_change() {
    let _moto = moto::exclusive().await;
    let iam = iam().await;
    let (keys, _) = seed_user(&iam, "breakglass").await;
    iam.tag_user()
        .user_name("breakglass")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("firebreak:protected")
                .value("true")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let param = format!("access_key_id={}", keys[0]);
    for named in [None, Some("user_name=breakglass")] {
        let mut args = vec!["run", KEY_RUNBOOK, "-p", &param, "--yes"];
        if let Some(user) = named {
            args.extend(["-p", user]);
        }
        let refused = run(dir.path(), &args);
        assert_eq!(refused.code, Some(3), "{named:?}: {}", refused.stderr);
        assert!(
            refused.stderr.contains("iam-user/breakglass") && refused.stderr.contains("protected"),
            "{named:?}: {}",
            refused.stderr
        );
        assert_eq!(
            mutating_calls(&journal_of(&refused.outcome)),
            Vec::<String>::new()
        );
    }
    let statuses = sandbox::key_statuses(&iam, "breakglass").await;
    assert_eq!(statuses.len(), 2);
    assert!(
        statuses.iter().all(|(_, status)| status == "Active"),
        "{statuses:?}"
    );
}
