//! De-duplication of findings: EventBridge delivers at least once and GuardDuty re-sends updated
//! findings, so each (runbook, finding) gets one claim file in `<journal-dir>/dispatch/`,
//! appearing whole or not at all, naming the run that handles it. A second delivery finds the
//! claim and is a duplicate while that run is live, waits for a person, succeeded, or was
//! refused by a policy interlock; after a failure, a crash, or a refusal that may pass later
//! (a lock held, an interlock that could not be evaluated, an account not yet configured) it
//! resumes that run instead of starting a new one. Whether a run is live is its lease
//! ([`crate::lease`]), never a process id.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::journal::{Event, RunStatus};
use crate::table::replica::Materialized;
use crate::table::{Claimed, Shared};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claim {
    pub key: String,
    pub runbook: String,
    pub run_id: String,
    pub journal: PathBuf,
    /// Informational: where the claiming process ran.
    #[serde(default)]
    pub host: String,
    pub claimed_at: String,
}

/// What to do with a finding.
#[derive(Debug)]
pub enum Decision {
    /// New: the claim is ours; start the run with its id.
    Start(Claim),
    /// Already handled or being handled.
    Duplicate { claim: Claim, status: String },
    /// A run for it failed, crashed or was refused in a way that may pass now: resume it.
    Resume(Claim),
    /// Its run's journal has a record this engine does not know (written by a newer one):
    /// neither a duplicate nor resumable here.
    Unreadable { claim: Claim, kind: String },
}

/// Why a finding could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("failed to {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to encode the claim of {key}: {source}")]
    Encode {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the shared table: {0}")]
    Table(String),
    #[error("the claim {} names journal {}, which is not that run's journal in this directory", .path.display(), .journal.display())]
    Foreign { path: PathBuf, journal: PathBuf },
}

/// Where a claimed finding's run stands.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RunState {
    /// Live, waiting for a person, succeeded, or refused for good: leave it.
    Settled(String),
    /// Failed, crashed, interrupted, or refused in a way that may pass now: resume it.
    Unfinished,
    /// No journal yet: the claiming process died before the run began.
    NotBegun,
    /// A record this engine cannot read.
    Unreadable(String),
}

/// An I/O error's context: what was being done, to which file.
fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ClaimError {
    let path = path.to_owned();
    move |source| ClaimError::Io {
        action,
        path,
        source,
    }
}

fn claim_path(dir: &Path, key: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    dir.join("dispatch").join(format!("{}.json", &digest[..32]))
}

fn run_state(journal_dir: &Path, claim: &Claim) -> RunState {
    run_state_of(journal_dir, &claim.run_id)
}

/// Where run `run_id` of `journal_dir` stands: live (its lease held), waiting, ended, or not
/// begun.
pub(super) fn run_state_of(journal_dir: &Path, run_id: &str) -> RunState {
    if crate::lease::is_live(journal_dir, run_id) {
        return RunState::Settled("running".into());
    }
    let journal = crate::engine::journal_path(journal_dir, run_id);
    if !journal.exists() {
        return RunState::NotBegun;
    }
    let records = crate::journal::read(&journal).unwrap_or_default();
    if let Some(other) = records.iter().find_map(|r| match &r.event {
        Event::Other(other) => Some(other),
        _ => None,
    }) {
        // Never guess what a run did from a journal this engine cannot read.
        return RunState::Unreadable(other.kind.clone());
    }
    // The last end, unless a resume came after it.
    let last_end = records.iter().rev().find_map(|r| match &r.event {
        Event::RunFinished(finished) => Some(Some(finished)),
        Event::RunResumed(_) => Some(None),
        _ => None,
    });
    match last_end.flatten() {
        Some(finished) => match finished.status {
            RunStatus::Succeeded | RunStatus::AwaitingApproval => {
                RunState::Settled(finished.status.as_str().to_owned())
            }
            RunStatus::Refused if finished.refused_by.is_none_or(|kind| kind.is_final()) => {
                RunState::Settled("refused".into())
            }
            _ => RunState::Unfinished,
        },
        None => RunState::Unfinished,
    }
}

/// What an earlier claim's run state means for a new delivery; the claim of a run that never
/// began is handed back for the caller to take over its own way.
fn settled(state: RunState, existing: Claim) -> Result<Decision, Box<Claim>> {
    match state {
        RunState::Settled(status) => Ok(Decision::Duplicate {
            claim: existing,
            status,
        }),
        RunState::Unfinished => Ok(Decision::Resume(existing)),
        RunState::Unreadable(kind) => Ok(Decision::Unreadable {
            claim: existing,
            kind,
        }),
        RunState::NotBegun => Err(Box::new(existing)),
    }
}

/// Points `key`'s claim at `run_id`: a finding that joined a case is handled by the case's run,
/// so its later deliveries are duplicates of that run.
pub fn repoint(journal_dir: &Path, key: &str, run_id: &str) -> Result<(), ClaimError> {
    let path = claim_path(journal_dir, key);
    let bytes = std::fs::read(&path).map_err(io("read the claim", &path))?;
    let mut claim: Claim = serde_json::from_slice(&bytes).map_err(|source| ClaimError::Encode {
        key: key.to_owned(),
        source,
    })?;
    claim.run_id = run_id.to_owned();
    claim.journal = crate::engine::journal_path(journal_dir, run_id);
    let text = serde_json::to_vec_pretty(&claim).map_err(|source| ClaimError::Encode {
        key: key.to_owned(),
        source,
    })?;
    let aside = path.with_extension(format!("{:016x}.tmp", fastrand::u64(..)));
    std::fs::write(&aside, text).map_err(io("write a claim", &aside))?;
    std::fs::rename(&aside, &path).map_err(io("repoint the claim", &path))
}

/// Claims `key` for a new run, or says what became of an earlier claim.
pub fn decide(journal_dir: &Path, key: &str, new_claim: Claim) -> Result<Decision, ClaimError> {
    let path = claim_path(journal_dir, key);
    let folder = path.parent().expect("claims live in a folder");
    std::fs::create_dir_all(folder).map_err(io("create the claims folder", folder))?;
    let text = serde_json::to_vec_pretty(&new_claim).map_err(|source| ClaimError::Encode {
        key: key.to_owned(),
        source,
    })?;
    // Written aside and linked into place: a claim is never seen empty or half written, so
    // nobody mistakes a fresh claim for a torn one.
    let aside = folder.join(format!(
        ".{}.{:016x}.tmp",
        new_claim.run_id,
        fastrand::u64(..)
    ));
    {
        let mut file = std::fs::File::create_new(&aside).map_err(io("write a claim", &aside))?;
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .map_err(io("write a claim", &aside))?;
    }
    let linked = std::fs::hard_link(&aside, &path);
    let _ = std::fs::remove_file(&aside);
    match linked {
        Ok(()) => return Ok(Decision::Start(new_claim)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io("create the claim", &path)(e)),
    }
    let existing: Claim = std::fs::read(&path)
        .map_err(io("read the claim", &path))
        .and_then(|bytes| {
            serde_json::from_slice(&bytes).map_err(|source| ClaimError::Encode {
                key: key.to_owned(),
                source,
            })
        })?;
    // A claim names a journal this directory holds, under the run's own name: never another
    // path a claim file could point resume at.
    let expected = crate::engine::journal_path(journal_dir, &existing.run_id);
    if !crate::engine::run_id::is_valid(&existing.run_id) || existing.journal != expected {
        return Err(ClaimError::Foreign {
            path,
            journal: existing.journal,
        });
    }
    let existing = match settled(run_state(journal_dir, &existing), existing) {
        Ok(decision) => return Ok(decision),
        Err(unbegun) => *unbegun,
    };
    // The claiming process died before the run's journal existed (its lease is free, so it is
    // not merely starting): take the claim over with the new run. Of two deliveries that find
    // it so at once, the one that links the takeover mark first takes it.
    let mark = path.with_extension(format!("taken-from-{}", existing.run_id));
    let aside = folder.join(format!(
        ".{}.{:016x}.tmp",
        new_claim.run_id,
        fastrand::u64(..)
    ));
    std::fs::write(&aside, &text).map_err(io("write a claim", &aside))?;
    Ok(match std::fs::hard_link(&aside, &mark) {
        Ok(()) => {
            std::fs::rename(&aside, &path).map_err(io("take over the claim", &path))?;
            Decision::Start(new_claim)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_file(&aside);
            Decision::Duplicate {
                claim: existing,
                status: "starting".into(),
            }
        }
        Err(e) => {
            let _ = std::fs::remove_file(&aside);
            return Err(io("take over the claim", &mark)(e));
        }
    })
}

/// [`decide`] for workers that share no disk: the claim is an item in the shared table, the
/// claimed run's liveness its lease there, and its state read from its journal as the table
/// holds it (copied into this worker's journal directory first).
pub async fn decide_shared(
    shared: &Shared,
    journal_dir: &Path,
    key: &str,
    new_claim: Claim,
) -> Result<Decision, ClaimError> {
    let run_id = match shared
        .claim(key, &new_claim.run_id)
        .await
        .map_err(ClaimError::Table)?
    {
        Claimed::Ours => return Ok(Decision::Start(new_claim)),
        Claimed::Theirs { run_id } => run_id,
    };
    let existing = Claim {
        run_id: run_id.clone(),
        journal: crate::engine::journal_path(journal_dir, &run_id),
        ..new_claim.clone()
    };
    if shared.run_is_live(&run_id).await {
        return Ok(Decision::Duplicate {
            claim: existing,
            status: "running".into(),
        });
    }
    let materialized = shared
        .materialize(&run_id, &existing.journal)
        .await
        .map_err(|e| ClaimError::Table(e.to_string()))?;
    let state = if materialized == Materialized::Absent && !existing.journal.exists() {
        RunState::NotBegun
    } else {
        run_state_of(journal_dir, &run_id)
    };
    let existing = match settled(state, existing) {
        Ok(decision) => return Ok(decision),
        Err(unbegun) => *unbegun,
    };
    // The claiming worker died before the run's first record: of the deliveries that find it
    // so, the one whose conditional update lands takes the claim.
    Ok(
        if shared
            .take_claim(key, &run_id, &new_claim.run_id)
            .await
            .map_err(ClaimError::Table)?
        {
            Decision::Start(new_claim)
        } else {
            Decision::Duplicate {
                claim: existing,
                status: "starting".into(),
            }
        },
    )
}

/// The finding's identity for de-duplication: GuardDuty's `detail.id`; a Security Hub copy of a
/// GuardDuty finding by the same GuardDuty id (the last part of its `Id`, the finding's ARN), so
/// a finding that arrives both ways is handled once; another Security Hub finding's `Id`; else
/// the event's `id`.
pub fn finding_key(event: &Value) -> Option<String> {
    let finding = &event["detail"]["findings"][0];
    if finding["ProductArn"]
        .as_str()
        .is_some_and(|arn| arn.ends_with("::product/aws/guardduty"))
        && let Some(id) = finding["Id"].as_str()
    {
        return id.rsplit('/').next().map(str::to_owned);
    }
    [&event["detail"]["id"], &finding["Id"], &event["id"]]
        .into_iter()
        .find_map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{FileJournal, JournalSink};

    const RUN: &str = "20261201T000000Z-000001";

    fn claim(dir: &Path) -> Claim {
        Claim {
            key: "rb:live:finding-1".into(),
            runbook: "rb".into(),
            run_id: RUN.into(),
            journal: crate::engine::journal_path(dir, RUN),
            host: crate::host::host(),
            claimed_at: "2026-12-01T00:00:00.000Z".into(),
        }
    }

    /// A finding whose run's journal holds a record of a kind this engine does not know (a
    /// newer engine's) is neither a duplicate nor resumed: it is refused, naming the kind.
    #[test]
    fn a_journal_with_an_unknown_kind_is_unreadable_not_a_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let first = decide(dir.path(), "rb:live:finding-1", claim(dir.path())).unwrap();
        assert!(matches!(first, Decision::Start(_)), "{first:?}");
        let journal = FileJournal::create(&claim(dir.path()).journal, RUN, None).unwrap();
        let serde_json::Value::Object(fields) = serde_json::json!({"note": "newer"}) else {
            unreachable!()
        };
        journal.append_fields("quorum_reached", fields).unwrap();
        let again = decide(dir.path(), "rb:live:finding-1", claim(dir.path())).unwrap();
        match again {
            Decision::Unreadable { kind, .. } => assert_eq!(kind, "quorum_reached"),
            other => panic!("expected Unreadable, got {other:?}"),
        }
    }

    /// While the run holds its lease it is running, whatever its journal says; once the lease is
    /// gone a journal without an end is a crash, resumed.
    #[test]
    fn liveness_is_the_lease_not_a_pid() {
        let dir = tempfile::tempdir().unwrap();
        decide(dir.path(), "k", claim(dir.path())).unwrap();
        let journal = FileJournal::create(&claim(dir.path()).journal, RUN, None).unwrap();
        journal
            .append(&Event::RunResumed(crate::journal::event::RunResumed {
                previous_status: None,
                host: "h".into(),
                user: "u".into(),
                pid: 1,
                custody: None,
            }))
            .unwrap();
        let lease = crate::lease::RunLease::acquire(dir.path(), RUN).unwrap();
        assert!(matches!(
            decide(dir.path(), "k", claim(dir.path())).unwrap(),
            Decision::Duplicate { status, .. } if status == "running"
        ));
        drop(lease);
        assert!(matches!(
            decide(dir.path(), "k", claim(dir.path())).unwrap(),
            Decision::Resume(_)
        ));
    }

    /// A claim whose run died before its journal existed is taken over — by one delivery only.
    #[test]
    fn an_abandoned_claim_is_taken_over_once() {
        let dir = tempfile::tempdir().unwrap();
        decide(dir.path(), "k", claim(dir.path())).unwrap();
        let other = |run: &str| Claim {
            run_id: run.into(),
            journal: crate::engine::journal_path(dir.path(), run),
            ..claim(dir.path())
        };
        // Another delivery already linked the takeover mark for this claim.
        let mark = claim_path(dir.path(), "k").with_extension(format!("taken-from-{RUN}"));
        std::fs::write(&mark, b"{}").unwrap();
        let loser = decide(dir.path(), "k", other("20261201T000000Z-000002")).unwrap();
        assert!(
            matches!(&loser, Decision::Duplicate { status, .. } if status == "starting"),
            "{loser:?}"
        );
        std::fs::remove_file(&mark).unwrap();
        let winner = decide(dir.path(), "k", other("20261201T000000Z-000003")).unwrap();
        assert!(
            matches!(&winner, Decision::Start(c) if c.run_id.ends_with("000003")),
            "{winner:?}"
        );
        // The claim now names the new run: while it holds its lease, it is running.
        let _lease =
            crate::lease::RunLease::acquire(dir.path(), "20261201T000000Z-000003").unwrap();
        let live = decide(dir.path(), "k", other("20261201T000000Z-000005")).unwrap();
        assert!(
            matches!(&live, Decision::Duplicate { claim, status } if status == "running" && claim.run_id.ends_with("000003")),
            "{live:?}"
        );
    }

    /// A claim that points resume anywhere but its own run's journal here is refused.
    #[test]
    fn a_claim_naming_another_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut forged = claim(dir.path());
        forged.journal = PathBuf::from("/etc/passwd");
        decide(dir.path(), "k", forged).unwrap();
        let error = decide(dir.path(), "k", claim(dir.path())).unwrap_err();
        assert!(matches!(error, ClaimError::Foreign { .. }), "{error}");
    }

    #[test]
    fn a_guardduty_finding_through_security_hub_is_the_same_finding() {
        let direct = serde_json::json!({"id": "e1", "detail": {"id": "16afba5c"}});
        let through = serde_json::json!({"id": "e2", "detail": {"findings": [{
            "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty",
            "Id": "arn:aws:guardduty:us-east-1:123456789012:detector/12ab/finding/16afba5c"
        }]}});
        assert_eq!(finding_key(&direct), finding_key(&through));
    }
}
