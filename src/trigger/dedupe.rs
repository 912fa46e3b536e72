//! De-duplication of findings: EventBridge delivers at least once and GuardDuty re-sends updated
//! findings, so each (runbook, finding) gets one claim file in `<journal-dir>/dispatch/`,
//! created atomically, naming the run that handles it. A second delivery finds the claim and
//! is a duplicate while that run is in progress or after it succeeded (or was refused); after
//! a failure or a crash it resumes that run instead of starting a new one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
}

fn claim_path(dir: &Path, key: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    dir.join("dispatch").join(format!("{}.json", &digest[..32]))
}

/// The status of the run a claim names: `succeeded`, `failed`, `refused`, `interrupted`,
/// `running` (no end yet, holder alive) or `crashed` (no end, holder gone).
fn run_status(claim: &Claim, this_host: &str) -> String {
    let records = crate::journal::read_records(&claim.journal).unwrap_or_default();
    if let Some(finished) = records.iter().rev().find(|r| r["type"] == "run_finished") {
        return finished["status"].as_str().unwrap_or("failed").to_owned();
    }
    if records
        .last()
        .is_some_and(|r| r["type"] == "run_interrupted")
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

/// Claims `key` for a new run, or says what became of an earlier claim.
pub fn decide(
    journal_dir: &Path,
    key: &str,
    runbook: &str,
    new_claim: Claim,
) -> std::io::Result<Decision> {
    let path = claim_path(journal_dir, key);
    std::fs::create_dir_all(path.parent().expect("claims live in a folder"))?;
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                let text = serde_json::to_vec_pretty(&new_claim).map_err(std::io::Error::other)?;
                file.write_all(&text)?;
                file.sync_all()?;
                return Ok(Decision::Start(new_claim));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read(&path)?;
                let Ok(existing) = serde_json::from_slice::<Claim>(&text) else {
                    // A claim torn by a crash mid-write: nobody can be running it.
                    std::fs::remove_file(&path)?;
                    continue;
                };
                let status = run_status(&existing, &new_claim.host);
                let _ = runbook;
                return Ok(match status.as_str() {
                    "succeeded" | "refused" | "running" => Decision::Duplicate {
                        claim: existing,
                        status,
                    },
                    _ if !existing.journal.exists() => {
                        // Claimed, but the run never got as far as its journal: start afresh
                        // under the same claim.
                        std::fs::remove_file(&path)?;
                        continue;
                    }
                    _ => Decision::Resume(existing),
                });
            }
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "could not claim finding {key}"
    )))
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
