//! The six containment actions in one runbook against moto, then the same run again: the
//! second run makes no mutating call and still reports the state (the original profile from
//! its tag).

use crate::support::run::{ec2_fixture as run, id};
use crate::support::{moto, sandbox};

#[tokio::test]
async fn contains_then_a_second_run_changes_nothing() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let quarantine = id(&ids, "quarantine_profile_arn");
    let params = [
        ("instance_id", instance.as_str()),
        ("quarantine_profile", quarantine.as_str()),
    ];
    let dir = tempfile::tempdir().unwrap();

    let first = run(dir.path(), "contain.yaml", &params, false).await;
    first.assert_succeeded();
    for step in [
        "protect",
        "detach",
        "addresses",
        "profile",
        "metadata",
        "stop",
    ] {
        assert_eq!(
            first.outputs(step)["changed"],
            true,
            "{step}: {}",
            first.outputs(step)
        );
    }
    let journal = first.outcome["journal"].as_str().unwrap();
    let verified = firebreak::journal::verify(std::path::Path::new(journal), None).unwrap();
    assert!(verified.is_intact(), "journal verify: {verified:?}");

    let second = run(dir.path(), "contain.yaml", &params, false).await;
    second.assert_succeeded().assert_no_mutating_calls();
    for step in [
        "protect",
        "detach",
        "addresses",
        "profile",
        "metadata",
        "stop",
    ] {
        assert_eq!(
            second.outputs(step)["changed"],
            false,
            "{step}: {}",
            second.outputs(step)
        );
    }
    assert_eq!(second.outputs("detach")["in_group"], false);
    assert_eq!(
        second.outputs("profile")["original"]["arn"],
        id(&ids, "instance_profile_arn").as_str()
    );
    assert_eq!(
        second.outputs("metadata")["before"]["http_tokens"],
        "required"
    );
    assert_eq!(second.outputs("stop")["state_before"], "stopped");
}
