//! `runbooks/iam-release.yaml` after `runbooks/iam-access-key-compromise.yaml`, from the
//! command line: the quarantine, the session revocation and the tags go; the key comes back only
//! when asked; the deleted console password is not re-created (and the release says so).

use serde_json::{Value, json};

use crate::support::{cli_on_moto, journal, moto, sandbox, state};

/// What the key containment touches on user `leaky`.
async fn describe() -> Value {
    let iam = aws_sdk_iam::Client::new(&moto::direct_config().await);
    let attached: Vec<String> = iam
        .list_attached_user_policies()
        .user_name("leaky")
        .send()
        .await
        .unwrap()
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_owned))
        .collect();
    let mut inline: Vec<String> = iam
        .list_user_policies()
        .user_name("leaky")
        .send()
        .await
        .unwrap()
        .policy_names()
        .to_vec();
    inline.sort();
    let mut tags: Vec<(String, String)> = iam
        .list_user_tags()
        .user_name("leaky")
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    tags.sort();
    let keys = sandbox::key_statuses(&iam, "leaky").await;
    json!({ "attached": attached, "inline": inline, "tags": tags, "keys": keys })
}

#[tokio::test]
async fn an_iam_release_undoes_what_the_key_runbook_added_and_the_key_only_when_asked() {
    let _moto = moto::exclusive().await;
    sandbox::seed("web-1");
    let key = state::seed_principals().await;
    let before = describe().await;
    let dir = tempfile::tempdir().unwrap();
    let (code, contained, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            "runbooks/iam-access-key-compromise.yaml",
            "-p",
            &format!("access_key_id={key}"),
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{contained:#}");
    let now = describe().await;
    assert_ne!(now, before);
    let journal_param = format!("journal={}", contained["journal"].as_str().unwrap());

    // Without reactivate_key the key stays inactive; everything else goes back.
    let (code, released, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            "runbooks/iam-release.yaml",
            "-p",
            &journal_param,
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{released:#}");
    let after = describe().await;
    assert_eq!(after["attached"], before["attached"]);
    assert_eq!(after["inline"], before["inline"]);
    assert_eq!(after["tags"], before["tags"]);
    assert!(after["keys"].to_string().contains("Inactive"), "{after}");
    let restored = released["steps"][1]["outputs"]["restored"].to_string();
    assert!(
        restored.contains("console password") && restored.contains("not re-created"),
        "{restored}"
    );

    // With it, the key is back too: the user is as before, but for its console password.
    let (code, again, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            "runbooks/iam-release.yaml",
            "-p",
            &journal_param,
            "-p",
            "reactivate_key=true",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{again:#}");
    assert_eq!(describe().await, before);
    let sent: Vec<String> =
        journal::values(std::path::Path::new(again["journal"].as_str().unwrap()))
            .iter()
            .filter(|r| r["type"] == "api_call")
            .filter_map(|r| r["operation"].as_str().map(str::to_owned))
            .filter(|op| journal::is_mutating(op))
            .collect();
    assert_eq!(sent, ["UpdateAccessKey"], "only the key was left to do");
}
