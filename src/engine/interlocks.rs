//! Safety interlocks, checked before any change, live and dry-run alike, on a new run and again
//! on every resume: never on more targets than the runbook allows, never on a protected
//! resource (unless a person on that command line overrides it, with a reason, journaled). Their
//! AWS calls are retried like a step's; an interlock that still cannot be evaluated refuses —
//! as "unavailable", which a later resume checks again, never as a pass.

use std::future::Future;
use std::sync::Arc;

use serde_json::{Value, json};

use super::observe::Progress;
use super::state::RunState;
use super::{Settings, retry};
use crate::actions::ec2::{MAX_FILTER_VALUES, describe_tags_page};
use crate::actions::{ActionError, RunContext, StepContext};
use crate::journal::Event;
use crate::journal::event::{Interlock, Refusal};
use crate::runbook::Runbook;

/// The journal's pseudo-step for the interlocks' own AWS calls.
pub const STEP: &str = "interlocks";
/// Attempts for an interlock's AWS call (throttling and transient errors only).
const ATTEMPTS: u32 = 8;

/// An interlock's AWS call, retried like a step's: throttling, transient and timeout errors
/// again, with jittered backoff, every attempt journaled.
pub(crate) async fn retried<T, F, Fut>(
    state: &Arc<RunState>,
    run: &Arc<RunContext>,
    call: F,
) -> Result<T, ActionError>
where
    F: Fn(StepContext) -> Fut,
    Fut: Future<Output = Result<T, ActionError>>,
{
    retried_as(state, run, STEP, ATTEMPTS, call).await
}

/// [`retried`] for another of the engine's own pseudo-steps, with its own number of attempts.
pub(crate) async fn retried_as<T, F, Fut>(
    state: &Arc<RunState>,
    run: &Arc<RunContext>,
    step: &str,
    attempts: u32,
    call: F,
) -> Result<T, ActionError>
where
    F: Fn(StepContext) -> Fut,
    Fut: Future<Output = Result<T, ActionError>>,
{
    let mut attempt = 1;
    loop {
        // These attempts are the policy (a finding service that keeps throttling refuses the
        // run as unavailable, and the next delivery asks again): no re-sends inside them.
        let mut ctx = state.engine_context(run, step).sending_once();
        ctx.attempt = attempt;
        match call(ctx).await {
            Err(error) if error.is_retryable() && attempt < attempts => {
                tokio::time::sleep(retry::backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// The owners of access-key targets, looked up before the locks and interlocks so the user is
/// locked and protection-checked whichever trigger named the key (`iam-user/<name>`).
pub(crate) async fn key_owners(
    state: &Arc<RunState>,
    run: &Arc<RunContext>,
    targets: &[String],
) -> Result<Vec<String>, ActionError> {
    let mut owners = Vec::new();
    for key in targets.iter().filter(|t| is_access_key(t)) {
        let looked_up = retried(state, run, |ctx| async move {
            ctx.call("iam", "GetAccessKeyLastUsed", &[key], || {
                ctx.clients()
                    .iam
                    .get_access_key_last_used()
                    .access_key_id(key)
                    .send()
            })
            .await
        })
        .await;
        // No such key: no owner to lock; the steps that use the key say so themselves.
        let out = match looked_up {
            Err(error) if error.aws_class() == Some(crate::aws::ErrorClass::NotFound) => continue,
            other => other?,
        };
        if let Some(user) = out.user_name() {
            let target = format!("iam-user/{user}");
            if !targets.contains(&target) && !owners.contains(&target) {
                owners.push(target);
            }
        }
    }
    Ok(owners)
}

fn is_access_key(target: &str) -> bool {
    target.len() == 20 && (target.starts_with("AKIA") || target.starts_with("ASIA"))
}

/// Target count and protected tags. Returns the refusal, if any; every check is journaled.
pub(crate) async fn check_targets(
    state: &Arc<RunState>,
    run: &Arc<RunContext>,
    runbook: &Runbook,
    targets: &[String],
    implied: &[String],
    settings: &Settings,
) -> Result<Option<(Refusal, String)>, ActionError> {
    let record = |interlock: Interlock| state.write_step(Event::Interlock(interlock));
    let refuse = |limit: Option<u32>, reason: String| {
        record(Interlock {
            check: "max_targets".into(),
            passed: false,
            targets: Some(targets.len()),
            limit,
            reason: Some(reason.clone()),
            ..Default::default()
        })?;
        Ok(Some((Refusal::Interlock, reason)))
    };
    let limit = match target_limit(&runbook.limits, settings) {
        Ok(limit) => limit,
        Err(reason) => return refuse(None, reason),
    };
    if targets.len() as u32 > limit.value {
        let reason = format!(
            "the run would act on {} targets, more than the limit of {} ({}){}",
            targets.len(),
            limit.value,
            limit.source,
            match (runbook.limits.max_targets_hard, settings.raise_max_targets) {
                (Some(hard), true) if limit.value < hard =>
                    format!("; a person may raise it up to {hard} with run --max-targets N"),
                _ => String::new(),
            }
        );
        return refuse(Some(limit.value), reason);
    }
    record(Interlock {
        check: "max_targets".into(),
        passed: true,
        targets: Some(targets.len()),
        limit: Some(limit.value),
        reason: limit.raised.clone(),
        by: limit.raised.as_ref().map(|_| crate::host::user()),
        host: limit.raised.as_ref().map(|_| crate::host::host()),
        ..Default::default()
    })?;

    let protected_keys = &runbook.limits.protected_tags;
    if protected_keys.is_empty() || targets.is_empty() {
        return Ok(None);
    }
    // Implied targets (an access key's owner) are protection-checked, not counted: the limit
    // is on what the runbook was asked to act on.
    let checked: Vec<String> = targets.iter().chain(implied).cloned().collect();
    let protected = match protected_targets(state, run, &checked, protected_keys).await {
        Ok(protected) => protected,
        Err(ActionError::Journal(e)) => return Err(ActionError::Journal(e)),
        Err(error) => {
            let reason = format!(
                "the protected-tag check could not be evaluated ({error}); nothing was changed, \
                 and a resume checks again"
            );
            record(Interlock {
                check: "protected_tags".into(),
                passed: false,
                tags: Some(protected_keys.clone()),
                reason: Some(reason.clone()),
                ..Default::default()
            })?;
            return Ok(Some((Refusal::Unavailable, reason)));
        }
    };
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
            Ok(Some((Refusal::Interlock, reason)))
        }
    }
}

/// The target limit a run works under, and where it comes from.
struct TargetLimit {
    value: u32,
    source: &'static str,
    /// Raised above the runbook's default by the operator: what to journal.
    raised: Option<String>,
}

/// `--max-targets` lowers the runbook's `max_targets`; at `run`/`resume` it may raise it up to
/// `max_targets_hard`, never beyond, and never at `dispatch` (an event must not widen the
/// blast radius).
fn target_limit(
    limits: &crate::runbook::model::Limits,
    settings: &Settings,
) -> Result<TargetLimit, String> {
    let default = limits.max_targets;
    let runbook = "the runbook's limits.max_targets";
    let Some(asked) = settings.max_targets else {
        return Ok(TargetLimit {
            value: default,
            source: runbook,
            raised: None,
        });
    };
    if asked <= default {
        return Ok(TargetLimit {
            value: asked,
            source: "--max-targets",
            raised: None,
        });
    }
    if !settings.raise_max_targets {
        return Ok(TargetLimit {
            value: default,
            source: "the runbook's limits.max_targets; dispatch never raises it",
            raised: None,
        });
    }
    match limits.max_targets_hard {
        Some(hard) if asked <= hard => Ok(TargetLimit {
            value: asked,
            source: "--max-targets",
            raised: Some(format!(
                "limit raised from {default} to {asked} by --max-targets (the runbook allows up to {hard})"
            )),
        }),
        Some(hard) => Err(format!(
            "--max-targets {asked} is above the runbook's limits.max_targets_hard ({hard})"
        )),
        None => Err(format!(
            "--max-targets {asked} would raise the runbook's limits.max_targets ({default}), and \
             the runbook sets no limits.max_targets_hard to allow it"
        )),
    }
}

/// `{resource, tag, value}` of every target that carries a protected tag key.
async fn protected_targets(
    state: &Arc<RunState>,
    run: &Arc<RunContext>,
    targets: &[String],
    keys: &[String],
) -> Result<Vec<Value>, ActionError> {
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
    for chunk in ec2_ids.chunks(MAX_FILTER_VALUES) {
        let mut token: Option<String> = None;
        loop {
            let page = retried(state, run, |ctx| {
                let token = token.clone();
                async move { describe_tags_page(&ctx, chunk, keys, token).await }
            })
            .await?;
            for tag in page.tags() {
                protected.push(
                    json!({"resource": tag.resource_id(), "tag": tag.key(), "value": tag.value()}),
                );
            }
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => break,
            }
        }
    }
    for target in targets {
        let tags: Vec<(String, String)> = if let Some(user) = target.strip_prefix("iam-user/") {
            let out = retried(state, run, |ctx| async move {
                ctx.call("iam", "ListUserTags", &[user], || {
                    ctx.clients().iam.list_user_tags().user_name(user).send()
                })
                .await
            })
            .await?;
            out.tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect()
        } else if let Some(role) = target.strip_prefix("iam-role/") {
            let out = retried(state, run, |ctx| async move {
                ctx.call("iam", "ListRoleTags", &[role], || {
                    ctx.clients().iam.list_role_tags().role_name(role).send()
                })
                .await
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
            if keys.contains(&key) {
                protected.push(json!({"resource": target, "tag": key, "value": value}));
            }
        }
    }
    Ok(protected)
}
