//! Persistence after a key leak: `runbooks/iam-access-key-compromise.yaml` lists what was
//! created since (users, roles, policies, keys, console passwords) and, where CloudTrail's
//! LookupEvents shows it, what the leaked key created — reported, never deleted. moto lacks
//! LookupEvents (it answers 500): on moto the report says CloudTrail was not readable; with a
//! mocked CloudTrail (the rest on moto) the key's own creations are labelled.

use aws_smithy_mocks::mock;
use serde_json::{Value, json};

use crate::support::aws::MockAws;
use crate::support::run::Run;
use crate::support::{cli_on_moto, moto, sandbox, state};

/// What an attacker with the key made: a user with a key, a second key on an existing user, a
/// console password, a role, a policy. Returns the new key on the existing user.
async fn attacker_persists() -> String {
    let iam = aws_sdk_iam::Client::new(&moto::direct_config().await);
    iam.create_user().user_name("ops").send().await.unwrap();
    iam.create_user()
        .user_name("backup-svc")
        .send()
        .await
        .unwrap();
    iam.create_access_key()
        .user_name("backup-svc")
        .send()
        .await
        .unwrap();
    let extra = iam
        .create_access_key()
        .user_name("ops")
        .send()
        .await
        .unwrap();
    iam.create_login_profile()
        .user_name("ops")
        .password("Correct-Horse-10!")
        .send()
        .await
        .unwrap();
    iam.create_role()
        .role_name("support-access")
        .assume_role_policy_document("{}")
        .send()
        .await
        .unwrap();
    iam.create_policy()
        .policy_name("support-admin")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    extra.access_key().unwrap().access_key_id().to_owned()
}

fn names(list: &Value, key: &str) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[key].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_key_runbook_reports_what_was_created_since_and_deletes_nothing() {
    let _moto = moto::exclusive().await;
    sandbox::seed("web-1");
    let key = state::seed_principals().await;
    let extra_key = attacker_persists().await;
    let dir = tempfile::tempdir().unwrap();
    let (code, outcome, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            "runbooks/iam-access-key-compromise.yaml",
            "-p",
            &format!("access_key_id={key}"),
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{outcome:#}");
    let created = &outcome["steps"][0]["outputs"]["created_since"];
    assert!(
        names(&created["users"], "user_name").contains(&"backup-svc".to_owned()),
        "{created:#}"
    );
    assert!(names(&created["roles"], "role_name").contains(&"support-access".to_owned()));
    assert_eq!(
        names(&created["policies"], "policy_name"),
        ["support-admin"]
    );
    assert!(names(&created["access_keys"], "access_key_id").contains(&extra_key));
    assert!(names(&created["login_profiles"], "user_name").contains(&"ops".to_owned()));
    // moto has no LookupEvents: said so, nothing labelled.
    assert_eq!(created["cloudtrail"]["available"], false, "{created:#}");
    assert_eq!(created["users"][0]["created_by_principal"], Value::Null);
    // The report line names the counts; nothing was deleted.
    let report = outcome["steps"][1]["outputs"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        report.contains("policies") && report.contains("Nothing was deleted"),
        "{outcome:#}"
    );
    let iam = aws_sdk_iam::Client::new(&moto::direct_config().await);
    assert!(iam.get_user().user_name("backup-svc").send().await.is_ok());
    assert!(
        iam.get_role()
            .role_name("support-access")
            .send()
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn cloudtrail_labels_what_the_leaked_key_created() {
    let _moto = moto::exclusive().await;
    sandbox::seed("web-1");
    let key = state::seed_principals().await;
    let extra_key = attacker_persists().await;
    let leaked = key.clone();
    // CloudTrail (mocked): the leaked key created backup-svc and the key on ops; the role was
    // made by someone else, so CloudTrail shows no event of the key for it.
    let event = |name: &str, detail: Value| {
        aws_sdk_cloudtrail::types::Event::builder()
            .event_name(name)
            .access_key_id(&key)
            .cloud_trail_event(detail.to_string())
            .build()
    };
    let events = vec![
        event(
            "CreateUser",
            json!({"requestParameters": {"userName": "backup-svc"}}),
        ),
        event(
            "CreateAccessKey",
            json!({"requestParameters": {"userName": "ops"}, "responseElements": {"accessKey": {"accessKeyId": extra_key}}}),
        ),
        event("ListBuckets", json!({})),
    ];
    let trail = MockAws::new()
        .cloudtrail([mock!(aws_sdk_cloudtrail::Client::lookup_events)
            .match_requests(move |r| {
                r.lookup_attributes().first().map(|a| a.attribute_value()) == Some(key.as_str())
            })
            .then_output(move || {
                aws_sdk_cloudtrail::operation::lookup_events::LookupEventsOutput::builder()
                    .set_events(Some(events.clone()))
                    .build()
            })])
        .build();
    let mut clients = moto::clients().await;
    clients.cloudtrail = trail.clients.cloudtrail.clone();
    let dir = tempfile::tempdir().unwrap();
    let ran = Run::yaml(
        dir.path(),
        &format!(
            "version: 1\nname: persistence\nsteps:\n  - id: inventory\n    action: iam.inventory_principal\n    with: {{ access_key_id: {}, created_since: 1d }}\n",
            leaked
        ),
    )
    .clients(clients)
    .start(dir.path())
    .await;
    ran.assert_succeeded();
    let created = &ran.outputs("inventory")["created_since"];
    assert_eq!(created["cloudtrail"]["available"], true, "{created:#}");
    let label = |list: &str, key: &str, name: &str| {
        created[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i[key] == name)
            .unwrap_or_else(|| panic!("{name} not in {list}: {created:#}"))["created_by_principal"]
            .clone()
    };
    assert_eq!(label("users", "user_name", "backup-svc"), true);
    assert_eq!(label("access_keys", "access_key_id", &extra_key), true);
    assert_eq!(label("roles", "role_name", "support-access"), false);
    assert_eq!(created["created_by_principal"], 2);
    assert_eq!(trail.calls(), ["cloudtrail:LookupEvents"]);
}
