//! Evidence artifacts named in a journal: actions write a file and the engine journals an
//! `evidence` record (`{"step": …, "artifact": {"path", "size", "sha256"}}`). Checking a journal
//! includes checking that each file is still there, byte for byte ([`check_artifacts`]).
//!
//! A later record for the same path supersedes an earlier one: a step that runs again after a
//! crash writes its artifact again under the same name, and only the last write is on disk.

use std::fmt;
use std::io::Read;
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::read::Record;

/// The record type actions' artifacts are journaled under.
pub const EVIDENCE: &str = "evidence";

/// One artifact as the journal describes it (the last record for its path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub step: Option<String>,
    pub seq: Option<u64>,
}

/// An artifact that is not as journaled (or a record that does not say what it should).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactProblem {
    /// The artifact's path as journaled (`record seq N` when the record has none).
    pub path: String,
    /// The seq of the record that journaled it.
    pub seq: Option<u64>,
    pub kind: ArtifactProblemKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactProblemKind {
    /// The file is gone.
    Missing,
    /// It is there but cannot be read (permissions, a folder…).
    Unreadable(String),
    SizeMismatch {
        journaled: u64,
        actual: u64,
    },
    HashMismatch {
        journaled: String,
        actual: String,
    },
    /// The `evidence` record lacks a field or has one of the wrong type.
    Malformed(String),
}

impl fmt::Display for ArtifactProblem {
    /// The problem, without the path (callers print `<path>: <problem>`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ArtifactProblemKind::Missing => write!(f, "missing"),
            ArtifactProblemKind::Unreadable(message) => write!(f, "cannot be read: {message}"),
            ArtifactProblemKind::SizeMismatch { journaled, actual } => write!(
                f,
                "size mismatch: {actual} bytes on disk, {journaled} journaled"
            ),
            ArtifactProblemKind::HashMismatch { journaled, actual } => write!(
                f,
                "sha256 mismatch: {actual} on disk, {journaled} journaled"
            ),
            ArtifactProblemKind::Malformed(message) => {
                write!(f, "malformed evidence record: {message}")
            }
        }
    }
}

/// The artifacts the journal's `evidence` records name, the last record for each path, in the
/// order the paths first appear. Malformed records are left out ([`check_artifacts`] reports
/// them).
pub fn artifacts(records: &[Record]) -> Vec<Artifact> {
    collect(records).0
}

/// Every journaled artifact that is missing, unreadable, or differs in size or SHA-256 from its
/// record, and every malformed `evidence` record. Empty when all is well.
pub fn check_artifacts(records: &[Record]) -> Vec<ArtifactProblem> {
    let (artifacts, mut problems) = collect(records);
    problems.extend(artifacts.iter().filter_map(check_one));
    problems
}

fn collect(records: &[Record]) -> (Vec<Artifact>, Vec<ArtifactProblem>) {
    let mut artifacts: Vec<Artifact> = Vec::new();
    let mut problems = Vec::new();
    // A malformed `evidence` record reads as `Event::Other` of kind `evidence`: checked field by
    // field below, so the problem names what is missing.
    for record in records.iter().filter(|r| r.event.kind() == EVIDENCE) {
        match parse(&record.to_value()) {
            Ok(artifact) => match artifacts.iter_mut().find(|a| a.path == artifact.path) {
                Some(earlier) => *earlier = artifact,
                None => artifacts.push(artifact),
            },
            Err(problem) => problems.push(problem),
        }
    }
    (artifacts, problems)
}

fn parse(record: &Value) -> Result<Artifact, ArtifactProblem> {
    let seq = record["seq"].as_u64();
    let artifact = &record["artifact"];
    let path = artifact["path"].as_str().filter(|p| !p.is_empty());
    let malformed = |message: &str| ArtifactProblem {
        path: path.map_or_else(
            || match seq {
                Some(seq) => format!("record seq {seq}"),
                None => "record without seq".to_owned(),
            },
            str::to_owned,
        ),
        seq,
        kind: ArtifactProblemKind::Malformed(message.to_owned()),
    };
    let Some(path) = path else {
        return Err(malformed("no `artifact.path`"));
    };
    let Some(size) = artifact["size"].as_u64() else {
        return Err(malformed("no `artifact.size` (a whole number)"));
    };
    let sha256 = artifact["sha256"]
        .as_str()
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| malformed("no `artifact.sha256` (64 hex digits)"))?;
    Ok(Artifact {
        path: path.to_owned(),
        size,
        sha256: sha256.to_ascii_lowercase(),
        step: record["step"].as_str().map(str::to_owned),
        seq,
    })
}

fn check_one(artifact: &Artifact) -> Option<ArtifactProblem> {
    let problem = |kind| {
        Some(ArtifactProblem {
            path: artifact.path.clone(),
            seq: artifact.seq,
            kind,
        })
    };
    let path = Path::new(&artifact.path);
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return problem(ArtifactProblemKind::Missing);
        }
        Err(e) => return problem(ArtifactProblemKind::Unreadable(e.to_string())),
    };
    match file.metadata() {
        Ok(meta) if !meta.is_file() => {
            return problem(ArtifactProblemKind::Unreadable("not a regular file".into()));
        }
        Ok(meta) if meta.len() != artifact.size => {
            return problem(ArtifactProblemKind::SizeMismatch {
                journaled: artifact.size,
                actual: meta.len(),
            });
        }
        Ok(_) => {}
        Err(e) => return problem(ArtifactProblemKind::Unreadable(e.to_string())),
    }
    match sha256_of(file) {
        Ok(actual) if actual == artifact.sha256 => None,
        Ok(actual) => problem(ArtifactProblemKind::HashMismatch {
            journaled: artifact.sha256.clone(),
            actual,
        }),
        Err(e) => problem(ArtifactProblemKind::Unreadable(e.to_string())),
    }
}

/// Streams the file through SHA-256 (artifacts such as memory images can be large).
fn sha256_of(mut file: std::fs::File) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// A record as read from a journal, from its fields (envelope added).
    fn typed(mut value: Value) -> Record {
        value["ts"] = json!("2026-11-28T10:01:27.123Z");
        value["run_id"] = json!("r1");
        Record::from_value(value).expect("an envelope")
    }

    /// An `evidence` record for `bytes` written at `path`, as the engine journals it.
    fn record(seq: u64, path: &Path, bytes: &[u8]) -> Record {
        typed(json!({
            "seq": seq, "type": "evidence", "step": "console",
            "artifact": {"path": path.display().to_string(), "size": bytes.len(), "sha256": sha(bytes)},
        }))
    }

    fn kinds(problems: &[ArtifactProblem]) -> Vec<&ArtifactProblemKind> {
        problems.iter().map(|p| &p.kind).collect()
    }

    #[test]
    fn intact_artifacts_pass_and_other_records_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        let b = dir.path().join("b.bin");
        std::fs::write(&a, b"console text\n").unwrap();
        std::fs::write(&b, b"").unwrap();
        let records = vec![
            typed(json!({"seq": 1, "type": "run_started"})),
            record(2, &a, b"console text\n"),
            typed(json!({"seq": 3, "type": "api_call", "artifact": {"path": "/nonexistent"}})),
            record(4, &b, b""),
        ];
        assert_eq!(check_artifacts(&records), []);
        let found = artifacts(&records);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].path, a.display().to_string());
        assert_eq!(found[0].size, 13);
        assert_eq!(found[0].step.as_deref(), Some("console"));
        assert_eq!(found[1].seq, Some(4));
        assert!(check_artifacts(&[]).is_empty());
    }

    #[test]
    fn missing_resized_and_edited_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone.txt");
        let grown = dir.path().join("grown.txt");
        let edited = dir.path().join("edited.txt");
        std::fs::write(&grown, b"original plus more").unwrap();
        std::fs::write(&edited, b"0riginal").unwrap(); // same size, other bytes
        let records = vec![
            record(1, &gone, b"original"),
            record(2, &grown, b"original"),
            record(3, &edited, b"original"),
        ];
        let problems = check_artifacts(&records);
        assert_eq!(
            kinds(&problems),
            [
                &ArtifactProblemKind::Missing,
                &ArtifactProblemKind::SizeMismatch {
                    journaled: 8,
                    actual: 18
                },
                &ArtifactProblemKind::HashMismatch {
                    journaled: sha(b"original"),
                    actual: sha(b"0riginal")
                },
            ]
        );
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [gone.to_str(), grown.to_str(), edited.to_str()].map(Option::unwrap)
        );
        assert_eq!(problems[0].seq, Some(1));
        assert_eq!(problems[0].to_string(), "missing");
        assert_eq!(
            problems[1].to_string(),
            "size mismatch: 18 bytes on disk, 8 journaled"
        );
        assert!(
            problems[2].to_string().starts_with("sha256 mismatch: "),
            "{}",
            problems[2]
        );
    }

    #[test]
    fn a_folder_in_place_of_the_file_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let problems = check_artifacts(&[record(1, dir.path(), b"x")]);
        assert_eq!(problems.len(), 1);
        assert!(
            matches!(problems[0].kind, ArtifactProblemKind::Unreadable(_)),
            "{:?}",
            problems[0]
        );
    }

    #[test]
    fn a_later_record_for_the_same_path_supersedes_the_earlier() {
        // A step that ran again after a crash rewrote its artifact under the same name.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console-i-1.txt");
        std::fs::write(&path, b"second capture").unwrap();
        let records = vec![
            record(3, &path, b"first capture"),
            record(9, &path, b"second capture"),
        ];
        assert_eq!(check_artifacts(&records), []);
        assert_eq!(artifacts(&records).len(), 1);
        assert_eq!(artifacts(&records)[0].seq, Some(9));
        // …but not the other way round: the last record is the one that must hold.
        let reversed = vec![
            record(3, &path, b"second capture"),
            record(9, &path, b"first capture"),
        ];
        assert_eq!(check_artifacts(&reversed).len(), 1);
    }

    #[test]
    fn malformed_records_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.txt");
        std::fs::write(&path, b"x").unwrap();
        let p = path.display().to_string();
        let cases = [
            (
                json!({"seq": 5, "type": "evidence"}),
                "record seq 5",
                "artifact.path",
            ),
            (
                json!({"seq": 6, "type": "evidence", "artifact": {"path": p, "sha256": sha(b"x")}}),
                p.as_str(),
                "artifact.size",
            ),
            (
                json!({"seq": 7, "type": "evidence", "artifact": {"path": p, "size": 1, "sha256": "abc"}}),
                p.as_str(),
                "artifact.sha256",
            ),
        ];
        for (record, path, what) in cases {
            let problems = check_artifacts(&[typed(record.clone())]);
            assert_eq!(problems.len(), 1, "{record}");
            assert_eq!(problems[0].path, path);
            assert!(
                matches!(&problems[0].kind, ArtifactProblemKind::Malformed(m) if m.contains(what)),
                "{:?}",
                problems[0]
            );
        }
    }
}
