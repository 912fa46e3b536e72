//! `runbooks/identity-center-user-compromise.yaml` and `runbooks/identity-center-release.yaml`
//! against moto, from the command line: a user with two permission sets and two groups loses
//! them all (and is denied in the sets), then gets exactly them back.

use serde_json::Value;

use crate::support::{cli_on_moto, journal, moto};

const CONTAIN: &str = "runbooks/identity-center-user-compromise.yaml";
const RELEASE: &str = "runbooks/identity-center-release.yaml";

pub(crate) fn script(args: &[&str]) -> Value {
    let out = std::process::Command::new(moto::python())
        .arg(crate::support::repo("tests/support/identity_center.py"))
        .args(args)
        .arg(moto::upstream())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "identity_center.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn mutating(journal: &str) -> Vec<String> {
    journal::values(std::path::Path::new(journal))
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

#[tokio::test]
async fn a_user_loses_its_access_and_the_release_gives_exactly_it_back() {
    let _moto = moto::exclusive().await;
    let seeded = script(&["seed", "mallory"]);
    let before = script(&["describe", "mallory"]);
    assert_eq!(before["assignments"].as_array().unwrap().len(), 2);
    let dir = tempfile::tempdir().unwrap();

    let (code, drill, stderr) = cli_on_moto(
        dir.path(),
        &["run", CONTAIN, "-p", "sso_user=mallory", "--dry-run"],
    );
    assert_eq!(code, 0, "{stderr}\n{drill:#}");
    assert_eq!(
        script(&["describe", "mallory"]),
        before,
        "a drill changed the user"
    );

    let (code, contained, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            CONTAIN,
            "-p",
            "sso_user=mallory",
            "-p",
            "case_id=case-sso",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{contained:#}");
    let journal = contained["journal"].as_str().unwrap().to_owned();
    let sent = mutating(&journal);
    assert_eq!(
        sent.iter()
            .filter(|o| *o == "DeleteAccountAssignment")
            .count(),
        2,
        "{sent:?}"
    );
    assert_eq!(
        sent.iter()
            .filter(|o| *o == "ProvisionPermissionSet")
            .count(),
        2,
        "every changed set provisioned: {sent:?}"
    );
    let now = script(&["describe", "mallory"]);
    assert_eq!(now["assignments"], serde_json::json!([]));
    assert_eq!(now["groups"], serde_json::json!([]));
    assert_eq!(seeded["permission_set_arns"].as_array().unwrap().len(), 2);
    for set in ["mallory-AdminAccess", "mallory-ReadOnly"] {
        let policy = &now["inline_policies"][set];
        let statements = policy["Statement"].as_array().unwrap();
        let deny = statements
            .iter()
            .find(|s| s["Sid"] == "FirebreakDenyUsers")
            .unwrap_or_else(|| panic!("no deny in {policy}"));
        assert_eq!(
            deny["Condition"]["StringLike"]["aws:userid"],
            serde_json::json!(["*:mallory"])
        );
    }
    // The set's own statement is kept beside the deny.
    assert!(
        now["inline_policies"]["mallory-ReadOnly"]
            .to_string()
            .contains("NoBilling")
    );

    let (code, released, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            RELEASE,
            "-p",
            &format!("journal={journal}"),
            "-p",
            "sso_user=mallory",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{released:#}");
    assert_eq!(script(&["describe", "mallory"]), before);

    let (code, again, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            RELEASE,
            "-p",
            &format!("journal={journal}"),
            "-p",
            "sso_user=mallory",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(mutating(again["journal"].as_str().unwrap()).is_empty());
}
