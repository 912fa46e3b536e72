//! Safety interlocks, checked before any change, live and dry-run alike: never act in the wrong
//! account, never on more targets than the runbook allows, never on a protected resource
//! (unless a person on the command line overrides it, with a reason, journaled).

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_ec2::types::Filter;
use serde_json::{Value, json};

use super::Settings;
use super::observe::Progress;
use super::state::RunState;
use crate::actions::{ActionError, RunContext};
use crate::aws::{AwsError, Clients, load_sdk_config};
use crate::journal::Event;
use crate::journal::event::Interlock;
use crate::runbook::Runbook;
use crate::template::Templates;

/// Which account a run acts in.
pub(crate) enum Account {
    /// The caller's own account (or no event to say otherwise).
    Own,
    /// A member account, through an assumed role.
    Assumed {
        clients: Clients,
        role_arn: String,
        account: String,
    },
    /// Refused: the reason.
    Refused(String),
}

/// The account a finding belongs to: EventBridge's `account`, GuardDuty's `detail.accountId`,
/// Security Hub's `detail.findings[0].AwsAccountId`.
pub fn event_account(event: &Value) -> Option<String> {
    [
        &event["detail"]["accountId"],
        &event["detail"]["findings"][0]["AwsAccountId"],
        &event["account"],
    ]
    .into_iter()
    .find_map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
}

pub(crate) async fn account(
    clients: &Clients,
    caller: &Value,
    event: Option<&Value>,
    settings: &Settings,
    run_id: &str,
) -> Account {
    let Some(event_account) = event.and_then(event_account) else {
        return Account::Own;
    };
    let Some(caller_account) = caller["account"].as_str() else {
        return Account::Refused(format!(
            "the finding is for account {event_account} but the caller's account is unknown (sts:GetCallerIdentity failed); firebreak never acts in an account it cannot confirm"
        ));
    };
    if caller_account == event_account {
        return Account::Own;
    }
    let Some(template) = &settings.assume_role else {
        return Account::Refused(format!(
            "the finding is for account {event_account}, but firebreak runs as account {caller_account}; \
             give --assume-role (e.g. 'arn:aws:iam::{{{{event.account}}}}:role/firebreak-responder') to act there"
        ));
    };
    let role_arn = match Templates::new().render_string(template, &json!({"event": event})) {
        Ok(arn) => arn,
        Err(e) => return Account::Refused(format!("--assume-role template: {e}")),
    };
    if role_arn.split(':').nth(4) != Some(event_account.as_str()) {
        return Account::Refused(format!(
            "--assume-role rendered to {role_arn}, which is not in the finding's account {event_account}"
        ));
    }
    let session: String = format!("firebreak-{run_id}")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "=,.@-".contains(*c))
        .take(64)
        .collect();
    let assumed = clients
        .sts
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name(&session)
        .duration_seconds(3600)
        .send()
        .await;
    let credentials = match assumed {
        Ok(output) => match output.credentials() {
            Some(c) => Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_owned()),
                None,
                "firebreak-assume-role",
            ),
            None => {
                return Account::Refused(format!(
                    "sts:AssumeRole on {role_arn} returned no credentials"
                ));
            }
        },
        Err(error) => {
            let error = AwsError::from_sdk("sts", "AssumeRole", error);
            return Account::Refused(format!("cannot act in account {event_account}: {error}"));
        }
    };
    let base: SdkConfig = load_sdk_config(&settings.aws).await;
    let config = base
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build();
    Account::Assumed {
        clients: Clients::new(&config),
        role_arn,
        account: event_account,
    }
}

/// Target count and protected tags. Returns the refusal, if any; every check is journaled.
pub(crate) async fn check_targets(
    state: &Arc<RunState>,
    run: &Arc<RunContext>,
    runbook: &Runbook,
    targets: &[String],
    settings: &Settings,
) -> Result<Option<String>, ActionError> {
    let record = |interlock: Interlock| state.write_step(Event::Interlock(interlock));
    let limit = settings
        .max_targets
        .map_or(runbook.limits.max_targets, |cap| {
            cap.min(runbook.limits.max_targets)
        });
    if targets.len() as u32 > limit {
        let reason = format!(
            "the run would act on {} targets, more than the limit of {limit} ({})",
            targets.len(),
            if settings
                .max_targets
                .is_some_and(|c| c < runbook.limits.max_targets)
            {
                "--max-targets"
            } else {
                "the runbook's limits.max_targets"
            }
        );
        record(Interlock {
            check: "max_targets".into(),
            passed: false,
            targets: Some(targets.len()),
            limit: Some(limit),
            reason: Some(reason.clone()),
            ..Default::default()
        })?;
        return Ok(Some(reason));
    }
    record(Interlock {
        check: "max_targets".into(),
        passed: true,
        targets: Some(targets.len()),
        limit: Some(limit),
        ..Default::default()
    })?;

    let protected_keys = &runbook.limits.protected_tags;
    if protected_keys.is_empty() || targets.is_empty() {
        return Ok(None);
    }
    let ctx = state.engine_context(run, "interlocks");
    let mut protected = Vec::new();
    let ec2_ids: Vec<String> = targets
        .iter()
        .filter(|t| {
            [
                "i-",
                "vol-",
                "snap-",
                "eni-",
                "sg-",
                "vpc-",
                "subnet-",
                "ami-",
                "eipalloc-",
            ]
            .iter()
            .any(|p| t.starts_with(p))
        })
        .cloned()
        .collect();
    if !ec2_ids.is_empty() {
        let refs: Vec<&str> = ec2_ids.iter().map(String::as_str).collect();
        let tags = ctx
            .call("ec2", "DescribeTags", &refs, || {
                ctx.clients()
                    .ec2
                    .describe_tags()
                    .filters(
                        Filter::builder()
                            .name("resource-id")
                            .set_values(Some(ec2_ids.clone()))
                            .build(),
                    )
                    .filters(
                        Filter::builder()
                            .name("key")
                            .set_values(Some(protected_keys.clone()))
                            .build(),
                    )
                    .send()
            })
            .await?;
        for tag in tags.tags() {
            protected.push(
                json!({"resource": tag.resource_id(), "tag": tag.key(), "value": tag.value()}),
            );
        }
    }
    for target in targets {
        let tags: Vec<(String, String)> = if let Some(user) = target.strip_prefix("iam-user/") {
            let out = ctx
                .call("iam", "ListUserTags", &[user], || {
                    ctx.clients().iam.list_user_tags().user_name(user).send()
                })
                .await?;
            out.tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect()
        } else if let Some(role) = target.strip_prefix("iam-role/") {
            let out = ctx
                .call("iam", "ListRoleTags", &[role], || {
                    ctx.clients().iam.list_role_tags().role_name(role).send()
                })
                .await?;
            out.tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect()
        } else {
            continue;
        };
        for (key, value) in tags {
            if protected_keys.contains(&key) {
                protected.push(json!({"resource": target, "tag": key, "value": value}));
            }
        }
    }
    if protected.is_empty() {
        record(Interlock {
            check: "protected_tags".into(),
            passed: true,
            tags: Some(protected_keys.clone()),
            ..Default::default()
        })?;
        return Ok(None);
    }
    let resources: Vec<String> = protected
        .iter()
        .filter_map(|p| p["resource"].as_str().map(str::to_owned))
        .collect();
    match &settings.override_protection {
        Some(reason) => {
            record(Interlock {
                check: "protected_tags".into(),
                passed: true,
                overridden: Some(true),
                protected: Some(protected),
                reason: Some(reason.clone()),
                by: Some(crate::host::user()),
                host: Some(crate::host::host()),
                ..Default::default()
            })?;
            state.observe(Progress::Notice {
                text: &format!(
                    "acting on protected resources {} by override: {reason}",
                    resources.join(", ")
                ),
            });
            Ok(None)
        }
        None => {
            let reason = format!(
                "protected resources: {} (tags {}); break-glass with --override-protection --reason \"...\"",
                resources.join(", "),
                protected_keys.join(", ")
            );
            record(Interlock {
                check: "protected_tags".into(),
                passed: false,
                protected: Some(protected),
                reason: Some(reason.clone()),
                ..Default::default()
            })?;
            Ok(Some(reason))
        }
    }
}
