//! `runbooks/s3-bucket-exposure.yaml` and `runbooks/s3-release.yaml` against moto, from the
//! command line as a responder runs them: a bucket made public by its ACL and its policy is
//! contained, then released to exactly the settings it had.
//!
//! moto accepts what S3 refuses here (BucketOwnerEnforced while the ACL grants to others, a
//! public policy while the public access block is on); the order the runbook and the release
//! use is the one S3 requires, which these tests check through the journal's call order.

use std::path::{Path, PathBuf};

use aws_sdk_s3::types::{
    AccessControlPolicy, Grant, Grantee, Owner, Permission, Tag, Tagging, Type,
};
use serde_json::{Value, json};

use crate::support::{cli_on_moto, journal, moto};

const CONTAIN: &str = "runbooks/s3-bucket-exposure.yaml";
const RELEASE: &str = "runbooks/s3-release.yaml";
const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

async fn s3() -> aws_sdk_s3::Client {
    let config = moto::direct_config().await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    )
}

/// A bucket exposed the two usual ways: an ACL granting everyone READ and a policy allowing
/// `s3:GetObject` to `*`; tagged by its team; no public access block, no ownership controls.
pub(crate) async fn seed_public_bucket(s3: &aws_sdk_s3::Client, name: &str, tags: &[(&str, &str)]) {
    s3.create_bucket().bucket(name).send().await.unwrap();
    let owner = s3
        .get_bucket_acl()
        .bucket(name)
        .send()
        .await
        .unwrap()
        .owner()
        .and_then(|o| o.id())
        .unwrap()
        .to_owned();
    let grant = |grantee: Grantee, permission: Permission| {
        Grant::builder()
            .grantee(grantee)
            .permission(permission)
            .build()
    };
    s3.put_bucket_acl()
        .bucket(name)
        .access_control_policy(
            AccessControlPolicy::builder()
                .owner(Owner::builder().id(&owner).build())
                .grants(grant(
                    Grantee::builder()
                        .r#type(Type::CanonicalUser)
                        .id(&owner)
                        .build()
                        .unwrap(),
                    Permission::FullControl,
                ))
                .grants(grant(
                    Grantee::builder()
                        .r#type(Type::Group)
                        .uri(ALL_USERS)
                        .build()
                        .unwrap(),
                    Permission::Read,
                ))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "PublicRead",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{name}/*"),
        }],
    });
    s3.put_bucket_policy()
        .bucket(name)
        .policy(policy.to_string())
        .send()
        .await
        .unwrap();
    if tags.is_empty() {
        return;
    }
    let mut tagging = Tagging::builder();
    for (k, v) in tags {
        tagging = tagging.tag_set(Tag::builder().key(*k).value(*v).build().unwrap());
    }
    s3.put_bucket_tagging()
        .bucket(name)
        .tagging(tagging.build().unwrap())
        .send()
        .await
        .unwrap();
}

/// Everything a containment may change, as S3 reports it (no volatile fields: S3 keeps no
/// revision ids or modification times on these settings).
pub(crate) async fn describe(s3: &aws_sdk_s3::Client, name: &str) -> Value {
    let policy = match s3.get_bucket_policy().bucket(name).send().await {
        Ok(out) => serde_json::from_str(out.policy().unwrap()).unwrap(),
        Err(_) => Value::Null,
    };
    let acl = s3.get_bucket_acl().bucket(name).send().await.unwrap();
    let mut grants: Vec<String> = acl
        .grants()
        .iter()
        .map(|g| {
            let e = g.grantee().unwrap();
            format!(
                "{} {:?} {:?} {:?}",
                e.r#type().as_str(),
                e.id(),
                e.uri(),
                g.permission()
            )
        })
        .collect();
    grants.sort();
    let block = s3
        .get_public_access_block()
        .bucket(name)
        .send()
        .await
        .ok()
        .and_then(|o| o.public_access_block_configuration().cloned())
        .map(|c| {
            json!([
                c.block_public_acls(),
                c.ignore_public_acls(),
                c.block_public_policy(),
                c.restrict_public_buckets()
            ])
        });
    let ownership = s3
        .get_bucket_ownership_controls()
        .bucket(name)
        .send()
        .await
        .ok()
        .and_then(|o| {
            o.ownership_controls()
                .and_then(|c| c.rules().first())
                .map(|r| r.object_ownership().as_str().to_owned())
        });
    let mut tags: Vec<(String, String)> = s3
        .get_bucket_tagging()
        .bucket(name)
        .send()
        .await
        .map(|o| {
            o.tag_set()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    json!({
        "policy": policy,
        "acl": grants,
        "public_access_block": block,
        "ownership": ownership,
        "tags": tags,
    })
}

fn mutating(journal: &Path) -> Vec<String> {
    journal::values(journal)
        .iter()
        .filter(|r| r["type"] == "api_call")
        .filter_map(|r| r["operation"].as_str().map(str::to_owned))
        .filter(|op| {
            !["Get", "List", "Describe"]
                .iter()
                .any(|p| op.starts_with(p))
        })
        .collect()
}

fn journal_of(outcome: &Value) -> PathBuf {
    PathBuf::from(outcome["journal"].as_str().expect("a journal path"))
}

#[tokio::test]
async fn a_public_bucket_is_contained_and_its_release_restores_every_setting() {
    let _moto = moto::exclusive().await;
    let s3 = s3().await;
    seed_public_bucket(&s3, "exposed-data", &[("team", "analytics")]).await;
    let before = describe(&s3, "exposed-data").await;
    let dir = tempfile::tempdir().unwrap();

    // A drill first: every step walked, nothing sent.
    let (code, drill, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            CONTAIN,
            "-p",
            "bucket=exposed-data",
            "-p",
            "restrict_policy=true",
            "--dry-run",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let drilled = journal_of(&drill);
    let would: Vec<String> = journal::values(&drilled)
        .iter()
        .filter(|r| r["type"] == "api_call" && r["would_call"].is_string())
        .map(|r| r["operation"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        would,
        [
            "PutPublicAccessBlock",
            "PutBucketAcl",
            "PutBucketOwnershipControls",
            "PutBucketPolicy",
            "PutBucketTagging"
        ],
        "the drill says what it would send, in order"
    );
    assert_eq!(
        describe(&s3, "exposed-data").await,
        before,
        "a drill changed the bucket"
    );

    let (code, contained, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            CONTAIN,
            "-p",
            "bucket=exposed-data",
            "-p",
            "case_id=case-s3",
            "-p",
            "restrict_policy=true",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let journal = journal_of(&contained);
    // The order S3 requires: the ACL reset before ownership is enforced.
    assert_eq!(
        mutating(&journal),
        [
            "PutPublicAccessBlock",
            "PutBucketAcl",
            "PutBucketOwnershipControls",
            "PutBucketPolicy",
            "PutBucketTagging"
        ]
    );
    let now = describe(&s3, "exposed-data").await;
    assert_eq!(now["public_access_block"], json!([true, true, true, true]));
    assert_eq!(now["ownership"], "BucketOwnerEnforced");
    let acl = now["acl"].as_array().unwrap();
    assert_eq!(acl.len(), 1, "owner-only: {acl:?}");
    assert!(!acl[0].as_str().unwrap().contains("AllUsers"));
    assert_eq!(now["policy"]["Statement"][0]["Effect"], "Deny", "{now}");
    assert_eq!(
        now["policy"]["Statement"][0]["Condition"]["StringNotEqualsIfExists"]["aws:PrincipalAccount"],
        "123456789012"
    );
    assert!(now["tags"].to_string().contains("case-s3"), "{now}");
    assert!(
        now["tags"].to_string().contains("analytics"),
        "the team's tag is kept: {now}"
    );
    // The inventory is evidence: every setting before, hashed.
    let inventory = contained["steps"][0]["outputs"].clone();
    assert_eq!(inventory["settings"]["policy"], before["policy"]);
    assert!(inventory["evidence"]["sha256"].is_string(), "{inventory}");
    assert!(!inventory["public"].as_array().unwrap().is_empty());

    // A rerun changes nothing.
    let (code, rerun, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            CONTAIN,
            "-p",
            "bucket=exposed-data",
            "-p",
            "case_id=case-s3",
            "-p",
            "restrict_policy=true",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let rerun = mutating(&journal_of(&rerun));
    assert!(rerun.is_empty(), "a rerun sent {rerun:?}");

    // The release: the public access block first (S3 refuses a public policy while it is on),
    // ownership before the ACL; the bucket ends exactly as it began.
    let journal_param = format!("journal={}", journal.display());
    let (code, released, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            RELEASE,
            "-p",
            &journal_param,
            "-p",
            "bucket=exposed-data",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{released:#}");
    assert_eq!(
        mutating(&journal_of(&released)),
        [
            "PutBucketTagging",
            "DeletePublicAccessBlock",
            "DeleteBucketOwnershipControls",
            "PutBucketAcl",
            "PutBucketPolicy"
        ]
    );
    assert_eq!(describe(&s3, "exposed-data").await, before);

    // Released twice: nothing left to do.
    let (code, again, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            RELEASE,
            "-p",
            &journal_param,
            "-p",
            "bucket=exposed-data",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(mutating(&journal_of(&again)).is_empty());
}

#[tokio::test]
async fn a_release_refuses_a_setting_changed_since_unless_forced() {
    let _moto = moto::exclusive().await;
    let s3 = s3().await;
    seed_public_bucket(&s3, "drifted-data", &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let (code, contained, stderr) = cli_on_moto(
        dir.path(),
        &["run", CONTAIN, "-p", "bucket=drifted-data", "--yes"],
    );
    assert_eq!(code, 0, "{stderr}");
    // Someone loosens the block by hand afterwards.
    s3.put_public_access_block()
        .bucket("drifted-data")
        .public_access_block_configuration(
            aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(false)
                .restrict_public_buckets(false)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let changed = describe(&s3, "drifted-data").await;
    let journal_param = format!("journal={}", journal_of(&contained).display());
    let (code, refused, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            RELEASE,
            "-p",
            &journal_param,
            "-p",
            "bucket=drifted-data",
            "--yes",
        ],
    );
    assert_ne!(code, 0, "a drifted release must not succeed: {refused:#}");
    assert!(
        stderr.contains("public_access_block changed since the containment")
            || refused
                .to_string()
                .contains("public_access_block changed since the containment"),
        "{stderr}\n{refused:#}"
    );
    assert!(
        mutating(&journal_of(&refused)).is_empty(),
        "nothing restored"
    );
    assert_eq!(describe(&s3, "drifted-data").await, changed);

    let (code, forced, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            RELEASE,
            "-p",
            &journal_param,
            "-p",
            "bucket=drifted-data",
            "-p",
            "force=true",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let restored = &forced["steps"][1]["outputs"]["drifted"];
    assert_eq!(restored[0]["setting"], "public_access_block", "{forced:#}");
    // Said as every release says it.
    for key in ["left", "now", "recorded_before"] {
        assert!(restored[0].get(key).is_some(), "{key}: {forced:#}");
    }
    let after = describe(&s3, "drifted-data").await;
    assert_eq!(after["public_access_block"], Value::Null);
    assert_eq!(after["ownership"], Value::Null);
}

#[tokio::test]
async fn a_protected_bucket_is_not_touched_by_an_unattended_run() {
    let _moto = moto::exclusive().await;
    let s3 = s3().await;
    seed_public_bucket(&s3, "public-site", &[("firebreak:intended-public", "true")]).await;
    let before = describe(&s3, "public-site").await;
    let dir = tempfile::tempdir().unwrap();
    // No --yes, no terminal: the approval is refused, as for an EventBridge-started run.
    let (_, outcome, stderr) =
        cli_on_moto(dir.path(), &["run", CONTAIN, "-p", "bucket=public-site"]);
    let journal = journal_of(&outcome);
    assert!(mutating(&journal).is_empty(), "{stderr}\n{outcome:#}");
    assert_eq!(describe(&s3, "public-site").await, before);
    assert_eq!(outcome["steps"][0]["outputs"]["intentionally_public"], true);
}
