//! Decisions on approvals that wait for a person: what the journal already holds (decision
//! records, the deadlines of parked approvals), the decision a person brings to `approve` or
//! `deny`, who may decide (`approvers` patterns), and the rule that an expired approval is
//! denied — never approved — by whichever command next touches the run.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::journal::event::{Decider, DecisionRecord, Verdict};
use crate::journal::{Event, Record};

/// What a resumed run knows about its approvals, from its journal.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// The latest decision per `core.approve` step.
    pub decisions: HashMap<String, DecisionRecord>,
    /// When each parked approval expires (from the first time it parked).
    pub expiries: HashMap<String, String>,
    /// The approval the run waits at, if it ended waiting.
    pub waiting: Option<Waiting>,
}

/// The approval a parked run waits at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub step: String,
    pub prompt: String,
    /// When it first parked (the record's time).
    pub since: String,
    /// When it parked last (a resume or a reminder parks it again).
    pub last_parked: String,
    pub expires_at: Option<String>,
}

impl Ledger {
    pub fn from_records(records: &[Record]) -> Ledger {
        let mut ledger = Ledger::default();
        for record in records {
            match &record.event {
                Event::Approval(approval) if approval.parked == Some(true) => {
                    if let Some(expires) = &approval.expires_at {
                        ledger
                            .expiries
                            .entry(approval.step.clone())
                            .or_insert_with(|| expires.clone());
                    }
                    let since = match &ledger.waiting {
                        Some(w) if w.step == approval.step => w.since.clone(),
                        _ => record.ts.clone(),
                    };
                    ledger.waiting = Some(Waiting {
                        step: approval.step.clone(),
                        prompt: approval.prompt.clone(),
                        since,
                        last_parked: record.ts.clone(),
                        expires_at: ledger.expiries.get(&approval.step).cloned(),
                    });
                }
                Event::Decision(decision) => {
                    ledger
                        .decisions
                        .insert(decision.step.clone(), decision.clone());
                }
                Event::StepSucceeded(done)
                    if ledger.waiting.as_ref().is_some_and(|w| w.step == done.step) =>
                {
                    ledger.waiting = None;
                }
                _ => {}
            }
        }
        ledger
    }
}

/// A decision a person brings to a waiting run (`firebreak approve` / `deny`, or another channel
/// through the library).
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRequest {
    /// The step decided; `None`: the one the run waits at.
    pub step: Option<String>,
    pub verdict: Verdict,
    pub reason: String,
    /// Through what: `cli`, `queue`, …
    pub channel: String,
    /// Who decided, when it is not the identity running the resume: a decision that came
    /// through the queue, whose sender SQS vouched for (`SenderId`) and IAM confirmed.
    pub sender: Option<Decider>,
}

/// The step a decision is for, checked before anything is written: the run must wait at an
/// approval, and a named step must be that one.
pub fn step_decided(
    run_id: &str,
    waiting: Option<&Waiting>,
    request: &DecisionRequest,
) -> Result<String, String> {
    let Some(waiting) = waiting else {
        return Err(format!(
            "run {run_id} does not wait for a decision (`firebreak approvals` lists the runs that do)"
        ));
    };
    match &request.step {
        Some(step) if *step != waiting.step => Err(format!(
            "run {run_id} waits at step `{}`, not `{step}`",
            waiting.step
        )),
        _ => Ok(waiting.step.clone()),
    }
}

/// The `approvers` of a `core.approve` step, as written in the runbook (literal ARN patterns).
pub fn approvers_of(runbook: &crate::runbook::Runbook, step: &str) -> Vec<String> {
    runbook
        .steps
        .iter()
        .find(|s| s.id == step)
        .and_then(|s| s.input.get("approvers"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The record a decision becomes: the person's, or deny when the approval already expired.
pub fn record(
    request: &DecisionRequest,
    step: &str,
    ledger: &Ledger,
    decided_by: Decider,
) -> DecisionRecord {
    match ledger.expiries.get(step).filter(|d| has_passed(d)) {
        Some(deadline) => expired(step, deadline, decided_by),
        None => DecisionRecord {
            step: step.to_owned(),
            verdict: request.verdict,
            reason: request.reason.clone(),
            decided_by,
            decided_at: now(),
            channel: request.channel.clone(),
        },
    }
}

/// Now, as journals write times: RFC 3339, UTC, whole seconds.
pub fn now() -> String {
    format_time(OffsetDateTime::now_utc())
}

fn format_time(at: OffsetDateTime) -> String {
    at.replace_millisecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// The deadline of an approval parked now with `timeout`.
pub fn deadline(timeout: Duration) -> String {
    format_time(OffsetDateTime::now_utc() + timeout)
}

/// Whether an RFC 3339 deadline has passed. One that does not parse counts as passed: a
/// deadline nobody can read must not keep an approval open for ever.
pub fn has_passed(deadline: &str) -> bool {
    match OffsetDateTime::parse(deadline, &Rfc3339) {
        Ok(at) => at <= OffsetDateTime::now_utc(),
        Err(_) => true,
    }
}

/// Who is deciding, from `sts:GetCallerIdentity`'s answer as journaled (`{account, arn,
/// user_id}` or an error).
pub fn decider(caller: &Value) -> Decider {
    let text = |key: &str| caller[key].as_str().map(str::to_owned);
    Decider {
        arn: text("arn"),
        account: text("account"),
        user_id: text("user_id"),
        user: crate::host::user(),
        host: crate::host::host(),
    }
}

/// The deny written when nobody decided before the deadline.
pub fn expired(step: &str, deadline: &str, decided_by: Decider) -> DecisionRecord {
    DecisionRecord {
        step: step.to_owned(),
        verdict: Verdict::Deny,
        reason: format!("nobody decided before the approval expired at {deadline}"),
        decided_by,
        decided_at: now(),
        channel: "timeout".into(),
    }
}

/// Whether `arn` may decide under `approvers` (empty: anyone).
pub fn may_decide(approvers: &[String], arn: Option<&str>) -> bool {
    approvers.is_empty() || arn.is_some_and(|arn| approvers.iter().any(|p| arn_matches(p, arn)))
}

/// IAM-style ARN matching: `*` any run of characters, `?` one character, everything else
/// literal (case-sensitive, as ARNs are).
pub fn arn_matches(pattern: &str, arn: &str) -> bool {
    let (p, a): (Vec<char>, Vec<char>) = (pattern.chars().collect(), arn.chars().collect());
    // Iterative glob with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < a.len() {
        if i < p.len() && (p[i] == '?' || p[i] == a[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_patterns_match_like_iam() {
        let arn = "arn:aws:sts::123456789012:assumed-role/IR-Lead/alice";
        assert!(arn_matches("arn:aws:sts::*:assumed-role/IR-Lead/*", arn));
        assert!(arn_matches(arn, arn));
        assert!(arn_matches(
            "arn:aws:sts::12345678901?:assumed-role/IR-Lead/alice",
            arn
        ));
        assert!(!arn_matches("arn:aws:sts::*:assumed-role/IR-Lead", arn));
        assert!(!arn_matches("arn:aws:sts::*:assumed-role/ir-lead/*", arn));
        assert!(!arn_matches("arn:aws:iam::*:user/*", arn));
        assert!(arn_matches("*", arn));
    }

    #[test]
    fn nobody_may_decide_without_an_identity_when_approvers_are_named() {
        let approvers = vec!["arn:aws:iam::*:user/lead".to_owned()];
        assert!(!may_decide(&approvers, None));
        assert!(may_decide(&[], None));
        assert!(may_decide(&approvers, Some("arn:aws:iam::1:user/lead")));
        assert!(!may_decide(&approvers, Some("arn:aws:iam::1:user/intern")));
    }

    #[test]
    fn deadlines_pass_and_unreadable_ones_count_as_passed() {
        assert!(!has_passed(&deadline(Duration::from_secs(3600))));
        assert!(has_passed("2020-01-01T00:00:00Z"));
        assert!(has_passed("not a time"));
    }
}
