//! De-duplication of findings: EventBridge delivers at least once and GuardDuty re-sends updated
//! findings, so each (runbook, finding) gets one claim file in `<journal-dir>/dispatch/`,
//! created atomically, naming the run that handles it. A second delivery finds the claim and
//! is a duplicate while that run is in progress or after it succeeded (or was refused); after
//! a failure or a crash it resumes that run instead of starting a new one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::journal::Event;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claim {
    pub key: String,
    pub runbook: String,
    pub run_id: String,
    pub journal: PathBuf,
    pub pid: u32,
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
    /// A run for it failed or crashed: resume it.
    Resume(Claim),
    /// Its run's journal has a record this engine does not know (written by a newer one):
    /// neither a duplicate nor resumable here.
    Unreadable { claim: Claim, kind: String },
}

/// How [`run_status`] says the journal has a record of an unknown kind.
const UNREADABLE: &str = "unreadable:";

fn claim_path(dir: &Path, key: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    dir.join("dispatch").join(format!("{}.json", &digest[..32]))
}

/// The status of the run a claim names: `succeeded`, `failed`, `refused`, `interrupted`,
/// `running` (no end yet, holder alive) or `crashed` (no end, holder gone).
fn run_status(claim: &Claim, this_host: &str) -> String {
    let records = crate::journal::read(&claim.journal).unwrap_or_default();
    if let Some(other) = records.iter().find_map(|r| match &r.event {
        Event::Other(other) => Some(other),
        _ => None,
    }) {
        // A record this engine cannot read (a newer engine's): never guess what the run did.
        return format!("{UNREADABLE}{}", other.kind);
    }
    // A resume after the last end makes the run unfinished again.
    let last_end = records.iter().rev().find_map(|r| match &r.event {
        Event::RunFinished(finished) => Some(Some(finished.status)),
        Event::RunResumed(_) => Some(None),
        _ => None,
    });
    if let Some(Some(status)) = last_end {
        return status.as_str().to_owned();
    }
    if records
        .last()
        .is_some_and(|r| matches!(r.event, Event::RunInterrupted(_)))
    {
        return "interrupted".into();
    }
    let alive = claim.host != this_host
        // SAFETY: signal 0 only checks that the process exists.
        || unsafe { libc::kill(claim.pid as i32, 0) } == 0;
    if alive {
        "running".into()
    } else {
        "crashed".into()
    }
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
    #[error("could not claim finding {key}: its claim kept changing")]
    Contended { key: String },
}

/// Claims `key` for a new run, or says what became of an earlier claim.
pub fn decide(
    journal_dir: &Path,
    key: &str,
    runbook: &str,
    new_claim: Claim,
) -> Result<Decision, ClaimError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| ClaimError::Io {
            action,
            path,
            source,
        }
    };
    let path = claim_path(journal_dir, key);
    let folder = path.parent().expect("claims live in a folder");
    std::fs::create_dir_all(folder).map_err(io("create the claims folder", folder))?;
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                let text =
                    serde_json::to_vec_pretty(&new_claim).map_err(|source| ClaimError::Encode {
                        key: key.to_owned(),
                        source,
                    })?;
                file.write_all(&text)
                    .and_then(|()| file.sync_all())
                    .map_err(io("write the claim", &path))?;
                return Ok(Decision::Start(new_claim));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read(&path).map_err(io("read the claim", &path))?;
                let Ok(existing) = serde_json::from_slice::<Claim>(&text) else {
                    // A claim torn by a crash mid-write: nobody can be running it.
                    std::fs::remove_file(&path).map_err(io("remove the torn claim", &path))?;
                    continue;
                };
                let status = run_status(&existing, &new_claim.host);
                let _ = runbook;
                if let Some(kind) = status.strip_prefix(UNREADABLE) {
                    return Ok(Decision::Unreadable {
                        claim: existing,
                        kind: kind.to_owned(),
                    });
                }
                return Ok(match status.as_str() {
                    "succeeded" | "refused" | "running" => Decision::Duplicate {
                        claim: existing,
                        status,
                    },
                    _ if !existing.journal.exists() => {
                        // Claimed, but the run never got as far as its journal: start afresh
                        // under the same claim.
                        std::fs::remove_file(&path).map_err(io("remove the stale claim", &path))?;
                        continue;
                    }
                    _ => Decision::Resume(existing),
                });
            }
            Err(e) => return Err(io("create the claim", &path)(e)),
        }
    }
    Err(ClaimError::Contended {
        key: key.to_owned(),
    })
}

/// The finding's identity for de-duplication: the trigger's `dedupe_key` rendered, else
/// GuardDuty's `detail.id`, Security Hub's first finding `Id`, else the event's `id`.
pub fn finding_key(event: &Value) -> Option<String> {
    [
        &event["detail"]["id"],
        &event["detail"]["findings"][0]["Id"],
        &event["id"],
    ]
    .into_iter()
    .find_map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{FileJournal, JournalSink};

    fn claim(journal: PathBuf) -> Claim {
        Claim {
            key: "rb:live:finding-1".into(),
            runbook: "rb".into(),
            run_id: "20261201T000000Z-000001".into(),
            journal,
            pid: std::process::id(),
            host: crate::host::host(),
            claimed_at: "2026-12-01T00:00:00.000Z".into(),
        }
    }

    /// A finding whose run's journal holds a record of a kind this engine does not know (a
    /// newer engine's) is neither a duplicate nor resumed: it is refused, naming the kind.
    #[test]
    fn a_journal_with_an_unknown_kind_is_unreadable_not_a_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        let journal = FileJournal::create(&path, "20261201T000000Z-000001", None).unwrap();
        let serde_json::Value::Object(fields) = serde_json::json!({"note": "newer"}) else {
            unreachable!()
        };
        journal.append_fields("quorum_reached", fields).unwrap();
        let first = decide(dir.path(), "rb:live:finding-1", "rb", claim(path.clone())).unwrap();
        assert!(matches!(first, Decision::Start(_)), "{first:?}");
        let again = decide(dir.path(), "rb:live:finding-1", "rb", claim(path)).unwrap();
        match again {
            Decision::Unreadable { kind, .. } => assert_eq!(kind, "quorum_reached"),
            other => panic!("expected Unreadable, got {other:?}"),
        }
    }
}
