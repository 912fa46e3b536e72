//! `ec2.disable_metadata` against moto: the endpoint is disabled (or tokens required) only if
//! not already so, the other setting is kept, and a second run changes nothing. (moto ignores
//! DryRun on ModifyInstanceMetadataOptions: the drill is tested with mocks in ec2_mocked.rs.)

use crate::support::run::{ec2_fixture as run, id, live_on};
use crate::support::{moto, sandbox};

/// (HttpEndpoint, HttpTokens) as moto reports them.
async fn options(ec2: &aws_sdk_ec2::Client, instance: &str) -> (Option<String>, Option<String>) {
    let out = ec2
        .describe_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap();
    let options = out.reservations()[0].instances()[0]
        .metadata_options()
        .expect("metadata options")
        .clone();
    (
        options.http_endpoint().map(|e| e.as_str().to_owned()),
        options.http_tokens().map(|t| t.as_str().to_owned()),
    )
}

fn pair(endpoint: &str, tokens: &str) -> (Option<String>, Option<String>) {
    (Some(endpoint.into()), Some(tokens.into()))
}

#[tokio::test]
async fn disables_the_endpoint_and_a_rerun_changes_nothing() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let ec2 = sandbox::ec2().await;
    assert_eq!(options(&ec2, &instance).await, pair("enabled", "optional"));

    let dir = tempfile::tempdir().unwrap();
    let first = live_on(dir.path(), "metadata.yaml", &instance).await;
    first.assert_succeeded();
    let out = first.outputs("metadata");
    assert_eq!(out["changed"], true, "{out}");
    assert_eq!(out["mode"], "disable");
    assert_eq!(out["before"]["http_endpoint"], "enabled");
    assert_eq!(out["before"]["http_tokens"], "optional");
    assert_eq!(out["after"]["http_endpoint"], "disabled");
    assert_eq!(out["after"]["http_tokens"], "optional");
    assert_eq!(first.mutating_calls().len(), 1);
    // moto replaces all options with those sent: HttpTokens survives only because the action
    // sends the current value along.
    assert_eq!(options(&ec2, &instance).await, pair("disabled", "optional"));

    let second = live_on(dir.path(), "metadata.yaml", &instance).await;
    second.assert_succeeded().assert_no_mutating_calls();
    let out = second.outputs("metadata");
    assert_eq!(out["changed"], false, "{out}");
    assert_eq!(out["before"]["http_endpoint"], "disabled");
    assert_eq!(out["before"], out["after"]);
}

#[tokio::test]
async fn requires_tokens_keeping_the_endpoint_and_a_rerun_changes_nothing() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = id(&ids, "instance_id");
    let ec2 = sandbox::ec2().await;

    let dir = tempfile::tempdir().unwrap();
    let params = [
        ("instance_id", instance.as_str()),
        ("mode", "require-tokens"),
    ];
    let first = run(dir.path(), "metadata.yaml", &params, false).await;
    first.assert_succeeded();
    let out = first.outputs("metadata");
    assert_eq!(out["changed"], true, "{out}");
    assert_eq!(out["before"]["http_tokens"], "optional");
    assert_eq!(out["after"]["http_tokens"], "required");
    assert_eq!(out["after"]["http_endpoint"], "enabled");
    assert_eq!(options(&ec2, &instance).await, pair("enabled", "required"));

    let second = run(dir.path(), "metadata.yaml", &params, false).await;
    second.assert_succeeded().assert_no_mutating_calls();
    assert_eq!(second.outputs("metadata")["changed"], false);
}
