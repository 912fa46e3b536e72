//! The finding interlock: before a run acts on a finding, it reads the finding back from the
//! service that reported it (Security Hub `GetFindings`; GuardDuty `ListDetectors` and
//! `GetFindings`) from the home account, in the region the event came from. Anyone the queue
//! admits can write an event; only the service can write a finding. The run goes on only if
//! the finding exists, is still open, and agrees with the event on everything that names what
//! to contain: the finding's identity (id, product, account, generator, types, region) and each
//! resource's type, id, partition, region and access-key principal. Parameters a trigger takes
//! from other fields come from the event as delivered (README: "Verifying findings").
//!
//! A finding that is missing, closed or different refuses for good; a service that cannot be
//! asked (throttled, denied, unreachable) refuses as "unavailable", which a resume checks again.

use std::sync::Arc;

use aws_sdk_securityhub::types::{
    AwsSecurityFinding, AwsSecurityFindingFilters, RecordState, StringFilter,
    StringFilterComparison, WorkflowStatus,
};
use serde_json::{Value, json};

use super::interlocks::retried;
use super::state::RunState;
use crate::actions::{ActionError, RunContext};
use crate::journal::Event;
use crate::journal::event::{Interlock, Refusal, VerifyFinding};

/// The interlock's name in the journal.
const CHECK: &str = "finding";

/// What names the target in a Security Hub finding (JSON pointers into one finding).
const SECURITY_HUB_FIELDS: &[&str] = &[
    "/Id",
    "/ProductArn",
    "/AwsAccountId",
    "/GeneratorId",
    "/Types",
    "/Region",
];
/// ... and in each of its resources.
const SECURITY_HUB_RESOURCE_FIELDS: &[&str] = &[
    "/Type",
    "/Id",
    "/Partition",
    "/Region",
    "/Details/AwsIamAccessKey/PrincipalName",
    "/Details/AwsIamAccessKey/PrincipalId",
    "/Details/AwsIamAccessKey/PrincipalType",
];
/// What names the target in a GuardDuty finding event's `detail`.
const GUARDDUTY_FIELDS: &[&str] = &[
    "/id",
    "/accountId",
    "/region",
    "/type",
    "/resource/resourceType",
    "/resource/instanceDetails/instanceId",
    "/resource/accessKeyDetails/accessKeyId",
    "/resource/accessKeyDetails/principalId",
    "/resource/accessKeyDetails/userName",
    "/resource/accessKeyDetails/userType",
];

/// The service's answer about the event's findings.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Every finding exists, is open and agrees with the event.
    Verified,
    /// The event does not describe an open finding of the service: never acted on.
    Rejected(String),
}

/// Re-reads the event's findings (those `which` covers) and journals the verdict as the
/// `finding` interlock. `Ok(None)`: go on (verified, or nothing to verify).
pub(crate) async fn verify(
    state: &Arc<RunState>,
    event: &Value,
    which: VerifyFinding,
) -> Result<Option<(Refusal, String)>, ActionError> {
    // Findings are read where the event was emitted: for aggregated Security Hub findings the
    // aggregation region of the home (administrator) account, not the resource's region.
    let home = state.home_run(event["region"].as_str());
    let asked = match event["source"].as_str() {
        Some("aws.securityhub") => security_hub(state, &home, event).await,
        Some("aws.guardduty") if which == VerifyFinding::All => {
            guardduty(state, &home, &event["detail"]).await
        }
        _ => return Ok(None),
    };
    let record = |passed: bool, reason: Option<String>| {
        state.write_step(Event::Interlock(Interlock {
            check: CHECK.into(),
            passed,
            reason,
            ..Default::default()
        }))
    };
    match asked {
        Ok(Verdict::Verified) => {
            record(true, None)?;
            Ok(None)
        }
        Ok(Verdict::Rejected(why)) => {
            let reason = format!("the finding does not verify: {why}; nothing was changed");
            record(false, Some(reason.clone()))?;
            Ok(Some((Refusal::Interlock, reason)))
        }
        Err(error) if error.is_journal() => Err(error),
        Err(error) => {
            let reason = format!(
                "the finding could not be read back from its service ({error}); nothing was \
                 changed, and a resume checks again"
            );
            record(false, Some(reason.clone()))?;
            Ok(Some((Refusal::Unavailable, reason)))
        }
    }
}

async fn security_hub(
    state: &Arc<RunState>,
    home: &Arc<RunContext>,
    event: &Value,
) -> Result<Verdict, ActionError> {
    let claimed_findings = match event["detail"]["findings"].as_array() {
        Some(findings) if !findings.is_empty() => findings,
        _ => {
            return Ok(Verdict::Rejected(
                "the Security Hub event carries no findings".into(),
            ));
        }
    };
    for claimed in claimed_findings {
        let (Some(id), Some(product)) = (claimed["Id"].as_str(), claimed["ProductArn"].as_str())
        else {
            return Ok(Verdict::Rejected(
                "a finding in the event has no Id or ProductArn".into(),
            ));
        };
        let answer = retried(state, home, |ctx| async move {
            ctx.call("securityhub", "GetFindings", &[id], || {
                let equals = |value: &str| {
                    StringFilter::builder()
                        .value(value)
                        .comparison(StringFilterComparison::Equals)
                        .build()
                };
                ctx.clients()
                    .securityhub
                    .get_findings()
                    .filters(
                        AwsSecurityFindingFilters::builder()
                            .id(equals(id))
                            .product_arn(equals(product))
                            .build(),
                    )
                    .send()
            })
            .await
        })
        .await?;
        // The filter narrows the answer on AWS; what came back is checked here all the same.
        let actual = answer
            .findings()
            .iter()
            .find(|f| f.id() == Some(id) && f.product_arn() == Some(product));
        let Some(actual) = actual else {
            return Ok(Verdict::Rejected(format!(
                "Security Hub has no finding `{id}` from `{product}`"
            )));
        };
        let verdict = compare_security_hub(claimed, actual);
        if verdict != Verdict::Verified {
            return Ok(verdict);
        }
    }
    Ok(Verdict::Verified)
}

fn compare_security_hub(claimed: &Value, actual: &AwsSecurityFinding) -> Verdict {
    let id = actual.id().unwrap_or_default();
    if actual.record_state() == Some(&RecordState::Archived) {
        return Verdict::Rejected(format!("Security Hub has archived finding `{id}`"));
    }
    if let Some(status @ (WorkflowStatus::Resolved | WorkflowStatus::Suppressed)) =
        actual.workflow().and_then(|w| w.status())
    {
        return Verdict::Rejected(format!(
            "finding `{id}` is {} in Security Hub",
            status.as_str().to_lowercase()
        ));
    }
    let actual = security_hub_view(actual);
    let mut differences = disagreements(claimed, &actual, SECURITY_HUB_FIELDS, "");
    let empty = Vec::new();
    let actual_resources = actual["Resources"].as_array().unwrap_or(&empty);
    for (index, resource) in claimed["Resources"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .enumerate()
    {
        match actual_resources
            .iter()
            .find(|r| r["Id"] == resource["Id"] && r["Type"] == resource["Type"])
        {
            Some(same) => differences.extend(disagreements(
                resource,
                same,
                SECURITY_HUB_RESOURCE_FIELDS,
                &format!("/Resources/{index}"),
            )),
            None => differences.push(format!(
                "/Resources/{index}: {} {} is not a resource of the finding",
                resource["Type"], resource["Id"]
            )),
        }
    }
    describe(differences, "Security Hub")
}

/// The fields of a Security Hub finding this interlock compares, in the event's shape (ASFF).
fn security_hub_view(finding: &AwsSecurityFinding) -> Value {
    let resources: Vec<Value> = finding
        .resources()
        .iter()
        .map(|r| {
            let key = r.details().and_then(|d| d.aws_iam_access_key());
            json!({
                "Type": r.r#type(),
                "Id": r.id(),
                "Partition": r.partition().map(|p| p.as_str()),
                "Region": r.region(),
                "Details": {"AwsIamAccessKey": {
                    "PrincipalName": key.and_then(|k| k.principal_name()),
                    "PrincipalId": key.and_then(|k| k.principal_id()),
                    "PrincipalType": key.and_then(|k| k.principal_type()),
                }},
            })
        })
        .collect();
    json!({
        "Id": finding.id(),
        "ProductArn": finding.product_arn(),
        "AwsAccountId": finding.aws_account_id(),
        "GeneratorId": finding.generator_id(),
        "Types": finding.types(),
        "Region": finding.region(),
        "Resources": resources,
    })
}

async fn guardduty(
    state: &Arc<RunState>,
    home: &Arc<RunContext>,
    claimed: &Value,
) -> Result<Verdict, ActionError> {
    let Some(id) = claimed["id"].as_str() else {
        return Ok(Verdict::Rejected(
            "the GuardDuty event has no finding id (detail.id)".into(),
        ));
    };
    // One detector per account and region; an administrator's sees its members' findings.
    let detectors = retried(state, home, |ctx| async move {
        ctx.call("guardduty", "ListDetectors", &[], || {
            ctx.clients().guardduty.list_detectors().send()
        })
        .await
    })
    .await?;
    let Some(detector) = detectors.detector_ids().first() else {
        return Ok(Verdict::Rejected(
            "GuardDuty has no detector in the home account and the event's region, so it \
             reported no such finding"
                .into(),
        ));
    };
    let answer = retried(state, home, |ctx| async move {
        ctx.call("guardduty", "GetFindings", &[id], || {
            ctx.clients()
                .guardduty
                .get_findings()
                .detector_id(detector)
                .finding_ids(id)
                .send()
        })
        .await
    })
    .await?;
    let Some(actual) = answer.findings().iter().find(|f| f.id() == Some(id)) else {
        return Ok(Verdict::Rejected(format!(
            "GuardDuty has no finding `{id}`"
        )));
    };
    if actual.service().and_then(|s| s.archived()) == Some(true) {
        return Ok(Verdict::Rejected(format!(
            "GuardDuty has archived finding `{id}`"
        )));
    }
    Ok(describe(
        disagreements(claimed, &guardduty_view(actual), GUARDDUTY_FIELDS, ""),
        "GuardDuty",
    ))
}

/// The fields of a GuardDuty finding this interlock compares, in the event's `detail` shape.
fn guardduty_view(finding: &aws_sdk_guardduty::types::Finding) -> Value {
    let resource = finding.resource();
    let instance = resource.and_then(|r| r.instance_details());
    let key = resource.and_then(|r| r.access_key_details());
    json!({
        "id": finding.id(),
        "accountId": finding.account_id(),
        "region": finding.region(),
        "type": finding.r#type(),
        "resource": {
            "resourceType": resource.and_then(|r| r.resource_type()),
            "instanceDetails": {"instanceId": instance.and_then(|i| i.instance_id())},
            "accessKeyDetails": {
                "accessKeyId": key.and_then(|k| k.access_key_id()),
                "principalId": key.and_then(|k| k.principal_id()),
                "userName": key.and_then(|k| k.user_name()),
                "userType": key.and_then(|k| k.user_type()),
            },
        },
    })
}

/// Each field the event states that the service's copy does not state the same way.
fn disagreements(claimed: &Value, actual: &Value, fields: &[&str], prefix: &str) -> Vec<String> {
    fields
        .iter()
        .filter_map(|field| {
            let said = claimed.pointer(field).filter(|v| !v.is_null())?;
            let has = actual.pointer(field).unwrap_or(&Value::Null);
            (said != has)
                .then(|| format!("{prefix}{field}: the event says {said}, the service {has}"))
        })
        .collect()
}

fn describe(differences: Vec<String>, service: &str) -> Verdict {
    if differences.is_empty() {
        Verdict::Verified
    } else {
        Verdict::Rejected(format!(
            "the event disagrees with {service}'s copy of the finding ({})",
            differences.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_securityhub::types::{AwsIamAccessKeyDetails, Resource, ResourceDetails, Workflow};

    use super::*;

    fn finding(instance: &str) -> AwsSecurityFinding {
        AwsSecurityFinding::builder()
            .id("f-1")
            .product_arn("arn:aws:securityhub:us-east-1::product/aws/guardduty")
            .aws_account_id("123456789012")
            .generator_id("gen")
            .types("TTPs/Command and Control")
            .resources(
                Resource::builder()
                    .r#type("AwsEc2Instance")
                    .id(format!(
                        "arn:aws:ec2:us-east-1:123456789012:instance/{instance}"
                    ))
                    .region("us-east-1")
                    .build(),
            )
            .resources(
                Resource::builder()
                    .r#type("AwsIamAccessKey")
                    .id("AKIAEXAMPLEEXAMPLE01")
                    .details(
                        ResourceDetails::builder()
                            .aws_iam_access_key(
                                AwsIamAccessKeyDetails::builder()
                                    .principal_name("alice")
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build()
    }

    fn claimed(instance: &str) -> Value {
        json!({
            "Id": "f-1",
            "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty",
            "AwsAccountId": "123456789012",
            "Types": ["TTPs/Command and Control"],
            "Resources": [{
                "Type": "AwsEc2Instance",
                "Id": format!("arn:aws:ec2:us-east-1:123456789012:instance/{instance}"),
                "Region": "us-east-1",
                "Tags": {"not": "compared"},
            }],
        })
    }

    #[test]
    fn a_finding_that_agrees_verifies_whatever_fields_the_event_leaves_out() {
        assert_eq!(
            compare_security_hub(&claimed("i-0aaa"), &finding("i-0aaa")),
            Verdict::Verified
        );
    }

    #[test]
    fn another_instance_in_the_event_is_rejected_naming_the_field() {
        let Verdict::Rejected(why) = compare_security_hub(&claimed("i-0bbb"), &finding("i-0aaa"))
        else {
            panic!("a different resource verified");
        };
        assert!(why.contains("/Resources/0"), "{why}");
        assert!(why.contains("i-0bbb"), "{why}");
    }

    #[test]
    fn a_changed_principal_or_product_is_rejected() {
        let mut key = json!({
            "Id": "f-1",
            "Resources": [{"Type": "AwsIamAccessKey", "Id": "AKIAEXAMPLEEXAMPLE01",
                "Details": {"AwsIamAccessKey": {"PrincipalName": "bob"}}}],
        });
        let Verdict::Rejected(why) = compare_security_hub(&key, &finding("i-0aaa")) else {
            panic!("another principal verified");
        };
        assert!(why.contains("PrincipalName"), "{why}");
        key["Resources"][0]["Details"]["AwsIamAccessKey"]["PrincipalName"] = json!("alice");
        key["ProductArn"] =
            json!("arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default");
        assert!(matches!(
            compare_security_hub(&key, &finding("i-0aaa")),
            Verdict::Rejected(why) if why.contains("/ProductArn")
        ));
    }

    #[test]
    fn archived_resolved_and_suppressed_findings_are_closed() {
        let archived = AwsSecurityFinding::builder()
            .id("f-1")
            .record_state(RecordState::Archived)
            .build();
        assert!(matches!(
            compare_security_hub(&json!({"Id": "f-1"}), &archived),
            Verdict::Rejected(why) if why.contains("archived")
        ));
        for status in [WorkflowStatus::Resolved, WorkflowStatus::Suppressed] {
            let closed = AwsSecurityFinding::builder()
                .id("f-1")
                .workflow(Workflow::builder().status(status.clone()).build())
                .build();
            assert!(matches!(
                compare_security_hub(&json!({"Id": "f-1"}), &closed),
                Verdict::Rejected(why) if why.contains(&status.as_str().to_lowercase())
            ));
        }
        let notified = AwsSecurityFinding::builder()
            .id("f-1")
            .workflow(Workflow::builder().status(WorkflowStatus::Notified).build())
            .build();
        assert_eq!(
            compare_security_hub(&json!({"Id": "f-1"}), &notified),
            Verdict::Verified
        );
    }

    #[test]
    fn guardduty_fields_are_compared_in_the_event_shape() {
        use aws_sdk_guardduty::types::{Finding, InstanceDetails, Resource};
        let actual = Finding::builder()
            .id("gd-1")
            .account_id("123456789012")
            .region("us-west-2")
            .r#type("CryptoCurrency:EC2/BitcoinTool.B!DNS")
            .resource(
                Resource::builder()
                    .resource_type("Instance")
                    .instance_details(InstanceDetails::builder().instance_id("i-0aaa").build())
                    .build(),
            )
            .build();
        let claimed = json!({"id": "gd-1", "accountId": "123456789012", "region": "us-west-2",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0aaa"}}});
        assert!(disagreements(&claimed, &guardduty_view(&actual), GUARDDUTY_FIELDS, "").is_empty());
        let forged =
            json!({"id": "gd-1", "resource": {"instanceDetails": {"instanceId": "i-0bbb"}}});
        assert_eq!(
            disagreements(&forged, &guardduty_view(&actual), GUARDDUTY_FIELDS, ""),
            vec![
                "/resource/instanceDetails/instanceId: the event says \"i-0bbb\", the service \"i-0aaa\""
                    .to_owned()
            ]
        );
    }
}
