//! Where a run acts: the account the finding is in (through a role assumed there, never in the
//! wrong one) and the region it is in (the resource's own, else the finding's, else the
//! event's; an explicit `--region` that disagrees is refused rather than silently overridden).

use std::sync::Arc;

use aws_credential_types::provider::SharedCredentialsProvider;
use serde_json::{Value, json};

use super::Settings;
use super::credentials::{AssumedRole, Clock, RefreshingProvider};
use crate::aws::Clients;
use crate::template::Templates;

/// Which account a run acts in.
pub(crate) enum Account {
    /// The caller's own account (or no finding to say otherwise).
    Own,
    /// A member account, through an assumed role whose credentials refresh.
    Assumed {
        clients: Clients,
        role: Arc<AssumedRole>,
        account: String,
    },
    /// Not in this account: no role to assume there, or a role in another one (configuration
    /// can fix it; the run may be resumed then).
    Refused(String),
    /// The account could not be confirmed or the role not assumed (a throttled or failed STS
    /// call): nothing was done, the run ends failed and resumes.
    Unavailable(String),
}

/// The account a finding belongs to: GuardDuty's `detail.accountId`, Security Hub's
/// `detail.findings[0].AwsAccountId`, else EventBridge's `account`.
pub fn event_account(event: &Value) -> Option<String> {
    [
        &event["detail"]["accountId"],
        &event["detail"]["findings"][0]["AwsAccountId"],
        &event["account"],
    ]
    .into_iter()
    .find_map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
}

/// The region a finding is about: the resource's own (ASFF `Resources[].Region`), the finding's
/// (ASFF `Region`, GuardDuty `detail.region`), else the event's envelope — which, for findings
/// aggregated into one Security Hub region, is the aggregation region, not the resource's.
pub fn finding_region(event: &Value) -> Option<String> {
    let finding = &event["detail"]["findings"][0];
    [
        &finding["Resources"][0]["Region"],
        &finding["Region"],
        &event["detail"]["region"],
        &event["region"],
    ]
    .into_iter()
    .find_map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
}

/// The region to act in, or why the command line and the finding disagree.
pub(crate) fn region(event: Option<&Value>, settings: &Settings) -> Result<Option<String>, String> {
    let found = event.and_then(finding_region);
    match (found, &settings.aws.region) {
        (Some(found), Some(given)) if &found != given => Err(format!(
            "the finding is in region {found} but --region says {given}; firebreak acts where \
             the finding is: drop --region, or handle this finding from {found}"
        )),
        (Some(found), _) => Ok(Some(found)),
        (None, given) => Ok(given.clone()),
    }
}

/// A parameter that is an ARN in another partition than the caller's (`aws`, `aws-cn`,
/// `aws-us-gov`) names something this run cannot act on — or was meant for another
/// deployment: the run is refused before anything happens. Says which, if one is.
pub(crate) fn foreign_partition(
    caller: &Value,
    values: &crate::runbook::params::ParamValues,
) -> Option<String> {
    let own = caller["arn"].as_str()?.split(':').nth(1)?;
    for (name, value) in values {
        let strings: Vec<&str> = match value {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        for text in strings {
            if let Some(partition) = text.strip_prefix("arn:").and_then(|r| r.split(':').next())
                && partition != own
            {
                return Some(format!(
                    "parameter `{name}` is an ARN in partition `{partition}` ({text}), but this run acts in partition `{own}`"
                ));
            }
        }
    }
    None
}

pub(crate) async fn account(
    home: &Clients,
    caller: &Value,
    event: Option<&Value>,
    settings: &Settings,
    run_id: &str,
    clock: Clock,
) -> Account {
    let finding_account = event.and_then(event_account);
    let template = settings.assume_role.as_deref();
    if finding_account.is_none() && template.is_none() {
        return Account::Own;
    }
    let Some(caller_account) = caller["account"].as_str() else {
        return Account::Unavailable(format!(
            "cannot confirm the account to act in: sts:GetCallerIdentity failed ({}); \
             firebreak never acts in an account it cannot confirm",
            caller["error"].as_str().unwrap_or("unknown error")
        ));
    };
    if finding_account.as_deref() == Some(caller_account) {
        return Account::Own;
    }
    let Some(template) = template else {
        return Account::Refused(format!(
            "the finding is for account {}, but firebreak runs as account {caller_account}; \
             give --assume-role (e.g. 'arn:aws:iam::{{{{event.account}}}}:role/firebreak-responder') to act there",
            finding_account.unwrap_or_default()
        ));
    };
    let context = json!({"event": event.cloned().unwrap_or(Value::Null)});
    let role_arn = match Templates::new().render_string(template, &context) {
        Ok(arn) => arn,
        Err(e) => {
            return Account::Refused(format!(
                "--assume-role template: {e}{}",
                if event.is_none() {
                    " (a run without an event needs a template that names the account)"
                } else {
                    ""
                }
            ));
        }
    };
    let Some(role_account) = role_arn.split(':').nth(4).filter(|a| a.len() == 12) else {
        return Account::Refused(format!(
            "--assume-role rendered to {role_arn}, which is not a role ARN"
        ));
    };
    if let Some(finding_account) = &finding_account
        && role_account != finding_account
    {
        return Account::Refused(format!(
            "--assume-role rendered to {role_arn}, which is not in the finding's account {finding_account}"
        ));
    }
    let role = Arc::new(AssumedRole::new(
        home.sts.clone(),
        role_arn.clone(),
        run_id,
        settings.assume_role_external_id.clone(),
        clock,
    ));
    if let Err(error) = role.credentials().await {
        return Account::Unavailable(format!("cannot act in account {role_account}: {error}"));
    }
    let clients = home.with_credentials(SharedCredentialsProvider::new(RefreshingProvider(
        role.clone(),
    )));
    Account::Assumed {
        clients,
        role,
        account: role_account.to_owned(),
    }
}

#[cfg(test)]
mod partition_tests {
    use super::*;

    #[test]
    fn an_arn_of_another_partition_is_named_and_one_of_the_callers_is_not() {
        let caller = json!({"arn": "arn:aws:sts::123456789012:assumed-role/responder/s"});
        let mut values = crate::runbook::params::ParamValues::new();
        values.insert(
            "profile".into(),
            json!("arn:aws:iam::123456789012:instance-profile/q"),
        );
        assert_eq!(foreign_partition(&caller, &values), None);
        values.insert(
            "roles".into(),
            json!(["ok", "arn:aws-cn:iam::123456789012:role/r"]),
        );
        let reason = foreign_partition(&caller, &values).unwrap();
        assert!(
            reason.contains("`roles`") && reason.contains("`aws-cn`"),
            "{reason}"
        );
        // An unknown caller: nothing to compare with (the account interlock speaks to that).
        assert_eq!(foreign_partition(&json!({}), &values), None);
    }
}
