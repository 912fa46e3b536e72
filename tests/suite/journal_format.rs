//! Journal format 1 does not change: journals written by the engine before the typed vocabulary
//! (`tests/fixtures/journals/format-1/`, every record kind, written at commit b7aa303) still
//! verify, resume, show and report, and today's writer re-encodes each of their records to the
//! same bytes. Kinds this engine does not know are shown, never acted on.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use firebreak::journal::{Event, FileJournal, JournalSink, Record};
use serde_json::{Map, Value, json};

use crate::support::{firebreak, moto, output, repo};

const FIXTURES: &str = "tests/fixtures/journals/format-1";

fn fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo(FIXTURES))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    assert!(files.len() >= 12, "fixtures: {files:?}");
    files
}

/// The complete lines of a journal (a torn tail left out).
fn complete_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    if lines.last().is_some_and(|l| !l.ends_with('\n')) {
        lines.pop();
    }
    lines
}

#[test]
fn every_record_kind_is_in_the_fixtures_and_reads_as_its_type() {
    let mut kinds = std::collections::BTreeSet::new();
    for path in fixtures() {
        let records = firebreak::journal::read(&path).unwrap();
        for record in &records {
            if let Event::Other(other) = &record.event {
                panic!(
                    "{}: seq {} of kind `{}` does not read as its type: {:?}",
                    path.display(),
                    record.seq,
                    other.kind,
                    other.malformed
                );
            }
            kinds.insert(record.event.kind().to_owned());
        }
    }
    // Kinds added after format 1 (a reader of format 1 shows them as unknown records).
    const ADDED_SINCE: &[&str] = &[
        "intent",
        "decision",
        "case_opened",
        "finding_joined",
        "sealed",
        "seal_failed",
        "signed",
        "lease_taken",
    ];
    kinds.extend(ADDED_SINCE.iter().map(|k| k.to_string()));
    let known: std::collections::BTreeSet<String> = firebreak::journal::event::KINDS
        .iter()
        .map(|k| k.to_string())
        .collect();
    assert_eq!(
        kinds, known,
        "the fixtures (and the kinds added since) cover every kind the engine writes"
    );
}

/// With the clock fixed to the fixture's own timestamps and its run id, today's writer writes
/// each fixture byte for byte: same field order, same nulls, same hashes.
#[test]
fn todays_writer_reproduces_every_fixture_byte_for_byte() {
    for path in fixtures() {
        let lines = complete_lines(&path);
        let records: Vec<Record> = lines
            .iter()
            .map(|l| Record::from_value(serde_json::from_str(l).unwrap()).unwrap())
            .collect();
        let stamps: Arc<Mutex<VecDeque<String>>> =
            Arc::new(Mutex::new(records.iter().map(|r| r.ts.clone()).collect()));
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("copy.jsonl");
        let clock_stamps = stamps.clone();
        let journal = FileJournal::create(&copy, records[0].run_id.clone(), None)
            .unwrap()
            .with_clock(Arc::new(move || {
                clock_stamps
                    .lock()
                    .unwrap()
                    .pop_front()
                    .expect("a timestamp per record")
            }));
        for record in &records {
            journal.append(&record.event).unwrap();
        }
        let written = std::fs::read_to_string(&copy).unwrap();
        let written: Vec<&str> = written.split_inclusive('\n').collect();
        for (number, (old, new)) in lines.iter().zip(&written).enumerate() {
            assert_eq!(
                old,
                new,
                "{} line {}: the typed writer changed the bytes",
                path.display(),
                number + 1
            );
        }
        assert_eq!(written.len(), lines.len(), "{}", path.display());
    }
}

#[test]
fn old_journals_verify_show_and_report() {
    for path in fixtures() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let verified = output(firebreak().args(["journal", "verify"]).arg(&path));
        let expected = match name.as_str() {
            // A crash left a torn last line: intact up to it, repaired by resume.
            "crashed.jsonl" => 2,
            // Ctrl-C: intact, not finished.
            "interrupted.jsonl" => 1,
            _ => 0,
        };
        assert_eq!(
            verified.code,
            Some(expected),
            "{name}: {}{}",
            verified.stdout,
            verified.stderr
        );
        let shown = output(firebreak().args(["journal", "show"]).arg(&path));
        assert_eq!(shown.code, Some(0), "{name}: {}", shown.stderr);
        assert!(
            shown.stdout.lines().count() >= complete_lines(&path).len(),
            "{name}: a line per record"
        );
        assert!(
            !shown.stdout.contains("unknown to this firebreak"),
            "{name}"
        );
        let report = output(firebreak().args(["report"]).arg(&path));
        if expected == 0 {
            assert_eq!(report.code, Some(0), "{name}: {}", report.stderr);
        }
        assert!(report.stdout.contains("# "), "{name}: {}", report.stdout);
    }
    let contain = repo(&format!("{FIXTURES}/contain.jsonl"));
    let verified = output(firebreak().args(["journal", "verify"]).arg(&contain));
    assert!(
        verified.stdout.contains("evidence: 1 artifacts ok"),
        "{}",
        verified.stdout
    );
}

/// A run that crashed under the old engine, with a torn last line, resumes under today's: the
/// tail is cut and journaled, the run finishes, and the whole journal verifies.
#[test]
fn an_old_crashed_run_resumes_to_the_end() {
    let _moto = moto::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("crashed.jsonl");
    std::fs::copy(repo(&format!("{FIXTURES}/crashed.jsonl")), &journal).unwrap();
    let resumed = output(
        firebreak()
            .envs(moto::env())
            .args(["resume"])
            .arg(&journal)
            .args(["--journal-dir"])
            .arg(dir.path())
            .args([
                "--runbook",
                &format!("{FIXTURES}/runbooks/engine-four-steps.yaml"),
            ])
            .args(["-p", "api_token=canary-token-1234", "--yes"]),
    );
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    let records = firebreak::journal::read(&journal).unwrap();
    let kinds: Vec<&str> = records.iter().map(|r| r.event.kind()).collect();
    assert!(kinds.contains(&"journal_recovered"), "{kinds:?}");
    assert!(kinds.contains(&"run_resumed"), "{kinds:?}");
    match &records.last().unwrap().event {
        Event::RunFinished(finished) => {
            assert_eq!(finished.status, firebreak::journal::RunStatus::Succeeded)
        }
        other => panic!("the run did not finish: {other:?}"),
    }
    let verified = output(firebreak().args(["journal", "verify"]).arg(&journal));
    assert_eq!(verified.code, Some(0), "{}", verified.stdout);
}

/// A journal with a record of a kind this engine does not know: a newer engine's.
fn journal_with_unknown_kind(dir: &Path) -> PathBuf {
    let source = repo(&format!("{FIXTURES}/interrupted.jsonl"));
    let records = firebreak::journal::read(&source).unwrap();
    let path = dir.join(format!("{}.jsonl", records[0].run_id));
    let journal = FileJournal::create(&path, records[0].run_id.clone(), None).unwrap();
    for record in &records[..records.len() - 1] {
        journal.append(&record.event).unwrap();
    }
    let Value::Object(fields) = json!({"step": "pause", "note": "from a newer firebreak"}) else {
        unreachable!()
    };
    journal
        .append_fields("quorum_reached", fields as Map<String, Value>)
        .unwrap();
    path
}

#[test]
fn unknown_record_kinds_are_shown_but_never_acted_on() {
    let _moto = moto::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let path = journal_with_unknown_kind(dir.path());
    let verified = output(firebreak().args(["journal", "verify"]).arg(&path));
    assert_eq!(
        verified.code,
        Some(1),
        "intact, unfinished: {}",
        verified.stdout
    );
    let shown = output(firebreak().args(["journal", "show"]).arg(&path));
    assert_eq!(shown.code, Some(0));
    assert!(
        shown
            .stdout
            .contains("quorum_reached (unknown to this firebreak)"),
        "{}",
        shown.stdout
    );
    let report = output(firebreak().args(["report"]).arg(&path));
    assert!(
        report.stdout.contains("quorum_reached"),
        "{}",
        report.stdout
    );

    let resumed = output(
        firebreak()
            .envs(moto::env())
            .args(["resume"])
            .arg(&path)
            .args(["--journal-dir"])
            .arg(dir.path())
            .args([
                "--runbook",
                &format!("{FIXTURES}/runbooks/slow.yaml"),
                "--yes",
            ]),
    );
    assert_eq!(resumed.code, Some(2), "{}", resumed.stderr);
    assert!(
        resumed
            .stderr
            .contains("`quorum_reached`, which this firebreak")
            && resumed.stderr.contains("does not know"),
        "{}",
        resumed.stderr
    );
    let after = firebreak::journal::read(&path).unwrap();
    assert!(
        !after
            .iter()
            .any(|r| matches!(r.event, Event::RunResumed(_))),
        "nothing was appended"
    );
}
