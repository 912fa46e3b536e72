//! End-to-end journal tests: writing, reading back, tampering, resuming, concurrency.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::chain::{self, ChainKey};
use super::*;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// A journal of `n` records: `run_started` (declaring the chain), steps, and `run_finished`
/// last when `finished`.
fn write_journal(dir: &Path, key: Option<&[u8]>, n: u64, finished: bool) -> PathBuf {
    let path = dir.join("runs").join("r1.jsonl");
    let journal = FileJournal::create(&path, "r1", key.map(ChainKey::new)).unwrap();
    let first = journal
        .append_fields("run_started", obj(json!({"chain": journal.chain()})))
        .unwrap();
    assert_eq!(first.seq, 1);
    for i in 2..n {
        journal
            .append_fields("step", obj(json!({"step": format!("s{i}"), "n": i})))
            .unwrap();
    }
    if n > 1 {
        let kind = if finished { RUN_FINISHED } else { "step" };
        journal.append_fields(kind, obj(json!({"n": n}))).unwrap();
    }
    path
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(path, text).unwrap();
}

/// Rebuilds a line with a correct hash of its own (as a forger without a key could) after
/// `edit` changes its fields.
fn forge(line: &str, key: Option<&[u8]>, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut record = obj(serde_json::from_str(line).unwrap());
    record.shift_remove("hash");
    edit(&mut record);
    let body = serde_json::to_vec(&record).unwrap();
    let sealed = record::seal(body, key);
    String::from_utf8(sealed.line)
        .unwrap()
        .trim_end()
        .to_owned()
}

fn problem(path: &Path, key: Option<&[u8]>) -> Problem {
    let v = verify(path, key).unwrap();
    v.problem
        .clone()
        .unwrap_or_else(|| panic!("no problem: {v}"))
}

#[test]
fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), None, 4, true);
    let records = read::read_raw(&path).unwrap();
    assert_eq!(records.len(), 4);
    let keys: Vec<&str> = records[1]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["seq", "ts", "run_id", "type", "step", "n", "prev", "hash"]
    );
    assert_eq!(records[0]["prev"], chain::GENESIS);
    assert_eq!(records[0]["chain"], "sha256");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["seq"], i as u64 + 1);
        assert_eq!(r["run_id"], "r1");
    }
    let raw = lines(&path);
    assert_eq!(records[1]["prev"], chain::digest(None, raw[0].as_bytes()));

    let v = verify(&path, None).unwrap();
    assert_eq!(v.records, 4);
    assert!(v.complete && v.is_intact());
    assert_eq!(v.head.as_deref(), records[3]["hash"].as_str());
    assert_eq!(
        v.to_string(),
        format!("ok: 4 records, head {}", v.head.unwrap())
    );
}

#[test]
fn create_refuses_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), None, 1, false);
    let err = FileJournal::create(&path, "r2", None).unwrap_err();
    assert!(matches!(err, JournalError::Exists { .. }), "{err}");
    assert_eq!(read::read_raw(&path).unwrap().len(), 1);
}

#[test]
fn reserved_payload_keys_are_refused_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::create(dir.path().join("j"), "r1", None).unwrap();
    let err = journal
        .append_fields("step", obj(json!({"hash": "x"})))
        .unwrap_err();
    assert!(err.to_string().contains("\"hash\" is reserved"), "{err}");
    assert_eq!(journal.append_fields("step", Map::new()).unwrap().seq, 1);
    assert_eq!(
        journal.head(),
        Some(
            read::read_raw(journal.path().unwrap()).unwrap()[0]["hash"]
                .as_str()
                .unwrap()
                .to_owned()
        )
    );
}

#[test]
fn keyed_chain_verifies_only_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), Some(b"k1"), 3, true);
    let records = read::read_raw(&path).unwrap();
    assert_eq!(records[0]["chain"], "hmac-sha256");
    assert!(verify(&path, Some(b"k1")).unwrap().is_intact());

    for key in [None, Some(&b"k2"[..])] {
        let p = problem(&path, key);
        assert_eq!((p.kind, p.line, p.seq), (ProblemKind::Tampered, 1, Some(1)));
        assert!(p.message.contains("hash mismatch"), "{}", p.message);
        assert!(p.message.contains("hmac-sha256"), "{}", p.message);
    }
    let without = verify(&path, None).unwrap();
    assert!(
        without
            .to_string()
            .starts_with("tampered: line 1 (seq 1): hash mismatch")
    );
    assert!(without.to_string().contains("key is needed"));
}

#[test]
fn a_key_on_a_plain_chain_fails_at_record_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), None, 2, true);
    let p = problem(&path, Some(b"k"));
    assert_eq!((p.line, p.seq), (1, Some(1)));
    assert!(p.message.contains("declares sha256"), "{}", p.message);
}

#[test]
fn an_edited_value_is_a_hash_mismatch_at_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), None, 5, true);
    let mut raw = lines(&path);
    raw[2] = raw[2].replace("\"s3\"", "\"s9\"");
    write_lines(&path, &raw);
    let p = problem(&path, None);
    assert_eq!((p.kind, p.line, p.seq), (ProblemKind::Tampered, 3, Some(3)));
    assert!(p.message.contains("hash mismatch"), "{}", p.message);
    let v = verify(&path, None).unwrap();
    assert_eq!(v.records, 2);
    assert!(
        v.to_string()
            .starts_with("tampered: line 3 (seq 3): hash mismatch")
    );
}

#[test]
fn a_deleted_middle_record_breaks_the_seq() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), None, 5, true);
    let mut raw = lines(&path);
    raw.remove(2);
    write_lines(&path, &raw);
    let p = problem(&path, None);
    assert_eq!((p.kind, p.line, p.seq), (ProblemKind::Tampered, 3, Some(4)));
    assert!(
        p.message.contains("seq 4 where 3 was expected"),
        "{}",
        p.message
    );
}

#[test]
fn an_inserted_record_with_its_own_hash_breaks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), None, 4, true);
    let mut raw = lines(&path);
    // Takes the place of seq 3 with a valid hash of its own but a made-up prev.
    let forged = forge(&raw[2], None, |r| {
        r.insert("step".into(), json!("forged"));
        r.insert("prev".into(), json!(chain::digest(None, b"elsewhere")));
    });
    raw.insert(2, forged);
    write_lines(&path, &raw);
    let p = problem(&path, None);
    assert_eq!((p.kind, p.line, p.seq), (ProblemKind::Tampered, 3, Some(3)));
    assert!(p.message.contains("prev does not match"), "{}", p.message);
}

#[test]
fn an_inserted_record_chained_correctly_breaks_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), None, 4, true);
    let mut raw = lines(&path);
    let prev = chain::digest(None, raw[1].as_bytes());
    let forged = forge(&raw[2], None, |r| {
        r.insert("step".into(), json!("forged"));
        r.insert("prev".into(), json!(prev));
    });
    raw.insert(2, forged);
    write_lines(&path, &raw);
    let p = problem(&path, None);
    assert_eq!((p.line, p.seq), (4, Some(3)));
}

#[test]
fn swapped_records_are_detected_at_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), None, 5, true);
    let mut raw = lines(&path);
    raw.swap(1, 2);
    write_lines(&path, &raw);
    let p = problem(&path, None);
    assert_eq!((p.kind, p.line, p.seq), (ProblemKind::Tampered, 2, Some(3)));
}

#[test]
fn a_foreign_run_id_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), None, 3, true);
    let mut raw = lines(&path);
    raw[1] = forge(&raw[1], None, |r| {
        r.insert("run_id".into(), json!("other"));
    });
    raw.truncate(2);
    write_lines(&path, &raw);
    let p = problem(&path, None);
    assert_eq!((p.line, p.seq), (2, Some(2)));
    assert!(p.message.contains("run_id \"other\""), "{}", p.message);
}

#[test]
fn whole_lines_cut_from_the_tail_leave_an_incomplete_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), None, 5, true);
    let mut raw = lines(&path);
    raw.truncate(3);
    write_lines(&path, &raw);
    let v = verify(&path, None).unwrap();
    assert!(v.is_intact() && !v.complete, "{v}");
    assert_eq!(v.records, 3);
    assert!(
        v.to_string().starts_with("incomplete: 3 records, head "),
        "{v}"
    );
    assert!(
        v.to_string()
            .ends_with("no run_finished record (the run crashed or is still running)")
    );
}

#[test]
fn a_half_written_last_line_is_torn() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), None, 4, true);
    let text = fs::read_to_string(&path).unwrap();
    let last_start = text[..text.len() - 1].rfind('\n').unwrap() + 1;
    let half = last_start + (text.len() - last_start) / 2;
    fs::write(&path, &text[..half]).unwrap();
    let v = verify(&path, None).unwrap();
    let p = v.problem.clone().unwrap();
    assert_eq!((p.kind, p.line), (ProblemKind::Torn, 4));
    assert_eq!(v.records, 3);
    assert!(v.to_string().starts_with("torn: line 4: "), "{v}");
    assert_eq!(read::read_raw(&path).unwrap().len(), 3);

    // A complete line that only lacks its newline is torn as well: the append never returned.
    fs::write(&path, &text[..text.len() - 1]).unwrap();
    assert_eq!(problem(&path, None).kind, ProblemKind::Torn);
    // Garbage in the middle is not a torn write.
    fs::write(
        &path,
        format!("{}{{oops\n{}", &text[..last_start], &text[last_start..]),
    )
    .unwrap();
    let p = problem(&path, None);
    assert_eq!((p.kind, p.line), (ProblemKind::Tampered, 4));
    assert!(matches!(
        read::read_raw(&path),
        Err(JournalError::Parse { line: 4, .. })
    ));
}

#[test]
fn an_empty_file_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.jsonl");
    fs::write(&path, "").unwrap();
    let v = verify(&path, None).unwrap();
    assert_eq!(v.problem.unwrap().kind, ProblemKind::Torn);
    assert_eq!(v.records, 0);
    let err = FileJournal::open_for_resume(&path, None).unwrap_err();
    assert!(matches!(err, JournalError::Empty { .. }), "{err}");
}

#[test]
fn resume_cuts_a_torn_tail_and_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let key = b"k".to_vec();
    let path = write_journal(dir.path(), Some(&key), 3, false);
    let intact_len = fs::metadata(&path).unwrap().len();
    let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(br#"{"seq":4,"ts":"2026-11-28T10:0"#)
        .unwrap();
    drop(file);

    let (journal, resumed) =
        FileJournal::open_for_resume(&path, Some(ChainKey::new(key.clone()))).unwrap();
    assert_eq!(resumed.run_id, "r1");
    assert_eq!(resumed.records.len(), 3);
    assert_eq!(resumed.truncated, Some(TornTail { line: 4, bytes: 30 }));
    assert_eq!(fs::metadata(&path).unwrap().len(), intact_len);
    assert_eq!(
        journal.head().as_deref(),
        resumed.records[2].hash.as_deref()
    );

    let next = journal
        .append_fields("run_resumed", obj(json!({"torn_line": 4})))
        .unwrap();
    assert_eq!(next.seq, 4);
    journal.append_fields(RUN_FINISHED, Map::new()).unwrap();
    let v = verify(&path, Some(&key)).unwrap();
    assert!(v.is_intact() && v.complete, "{v}");
    assert_eq!(v.records, 5);

    let (_, again) = FileJournal::open_for_resume(&path, Some(ChainKey::new(key))).unwrap();
    assert_eq!(again.truncated, None);
    assert_eq!(again.records.len(), 5);
}

#[test]
fn resume_refuses_a_tampered_journal_and_names_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), None, 4, false);
    let mut raw = lines(&path);
    raw[1] = raw[1].replace("\"n\":2", "\"n\":7");
    write_lines(&path, &raw);
    let before = fs::read(&path).unwrap();
    let err = FileJournal::open_for_resume(&path, None).unwrap_err();
    assert!(
        matches!(
            err,
            JournalError::Tampered {
                line: 2,
                seq: Some(2),
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("line 2 (seq 2): hash mismatch"),
        "{err}"
    );
    assert_eq!(
        fs::read(&path).unwrap(),
        before,
        "a refused journal is left as it was"
    );
}

#[test]
fn concurrent_appends_form_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let journal = Arc::new(FileJournal::create(&path, "r1", None).unwrap());
    journal
        .append_fields("run_started", obj(json!({"chain": "sha256"})))
        .unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let journal = Arc::clone(&journal);
            std::thread::spawn(move || {
                for i in 0..25 {
                    journal
                        .append_fields("step", obj(json!({"thread": t, "i": i})))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    journal.append_fields(RUN_FINISHED, Map::new()).unwrap();
    let v = verify(&path, None).unwrap();
    assert!(v.is_intact() && v.complete, "{v}");
    assert_eq!(v.records, 202);
    let seqs: Vec<u64> = read::read_raw(&path)
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=202).collect::<Vec<_>>());
}

/// Group commit: sixteen threads append at once; each append returns only once its record is
/// in the file, the chain is one, and syncs are never more than records.
#[test]
fn concurrent_appends_are_each_durable_on_return_and_share_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let journal = Arc::new(FileJournal::create(&path, "r1", None).unwrap());
    journal
        .append_fields("run_started", obj(json!({"chain": "sha256"})))
        .unwrap();
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let journal = Arc::clone(&journal);
            let path = path.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    let appended = journal
                        .append_fields("step", obj(json!({"thread": t, "i": i})))
                        .unwrap();
                    let on_disk = fs::read_to_string(&path).unwrap().lines().count() as u64;
                    assert!(
                        on_disk >= appended.seq,
                        "record {} returned before it was written ({on_disk} lines)",
                        appended.seq
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    journal.append_fields(RUN_FINISHED, Map::new()).unwrap();
    let v = verify(&path, None).unwrap();
    assert!(v.is_intact() && v.complete, "{v}");
    assert_eq!(v.records, 322);
    assert!(
        journal.syncs().unwrap() <= 322,
        "{} syncs",
        journal.syncs().unwrap()
    );
}

/// `append_batch`: one write and one sync for the batch, chained as if appended one by one.
#[test]
fn a_batch_is_one_sync_and_chains_like_single_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let journal = FileJournal::create(&path, "r1", None).unwrap();
    journal
        .append_fields("run_started", obj(json!({"chain": "sha256"})))
        .unwrap();
    let before = journal.syncs().unwrap();
    let appended = journal
        .append_batch(vec![
            ("step", obj(json!({"n": 1}))),
            ("step", obj(json!({"n": 2}))),
            ("step", obj(json!({"n": 3}))),
        ])
        .unwrap();
    assert_eq!(
        journal.syncs().unwrap() - before,
        1,
        "one sync for the batch"
    );
    assert_eq!(
        appended.iter().map(|a| a.seq).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    assert_eq!(journal.head(), Some(appended[2].hash.clone()));
    journal.append_fields(RUN_FINISHED, Map::new()).unwrap();
    let v = verify(&path, None).unwrap();
    assert!(v.is_intact() && v.complete, "{v}");
    assert_eq!(v.records, 5);
}

/// A batch with one record the journal must refuse writes none of them.
#[test]
fn a_batch_with_a_refused_record_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let journal = FileJournal::create(&path, "r1", None).unwrap();
    journal
        .append_fields("run_started", obj(json!({"chain": "sha256"})))
        .unwrap();
    let written = fs::read(&path).unwrap();
    let refused = journal.append_batch(vec![
        ("step", obj(json!({"n": 1}))),
        ("step", obj(json!({"seq": 99}))),
    ]);
    assert!(refused.is_err());
    assert_eq!(
        fs::read(&path).unwrap(),
        written,
        "nothing of the batch written"
    );
    let next = journal.append_fields("step", obj(json!({"n": 1}))).unwrap();
    assert_eq!(next.seq, 2, "the chain goes on where it was");
    let v = verify(&path, None).unwrap();
    assert!(v.is_intact(), "{v}");
}

/// A crash can stop an append at any byte: for every offset inside the last record, resume
/// cuts the partial line off, reports it, and continues a chain that verifies. Cut exactly at
/// the line's start (the record never begun), nothing is torn.
#[test]
fn the_last_record_torn_at_every_byte_offset_is_cut_off_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), None, 5, false);
    let whole = fs::read(&path).unwrap();
    let body = &whole[..whole.len() - 1];
    let start = body.iter().rposition(|b| *b == b'\n').unwrap() + 1;
    let torn_path = dir.path().join("torn.jsonl");
    for cut in start..whole.len() {
        fs::write(&torn_path, &whole[..cut]).unwrap();
        let (journal, resumed) = FileJournal::open_for_resume(&torn_path, None)
            .unwrap_or_else(|e| panic!("cut at byte {cut}: {e}"));
        assert_eq!(resumed.records.len(), 4, "cut at byte {cut}");
        let expected = (cut > start).then_some(TornTail {
            line: 5,
            bytes: cut - start,
        });
        assert_eq!(resumed.truncated, expected, "cut at byte {cut}");
        assert_eq!(fs::metadata(&torn_path).unwrap().len() as usize, start);
        journal.append_fields(RUN_FINISHED, Map::new()).unwrap();
        let v = verify(&torn_path, None).unwrap();
        assert!(v.is_intact() && v.complete, "cut at byte {cut}: {v}");
    }
}

/// One flipped bit anywhere in a record before the last — payload, envelope, `prev` or
/// `hash` — is tampering: `verify` names that record's line and `resume` refuses, leaving the
/// file as it was.
#[test]
fn a_bit_flipped_anywhere_in_a_middle_record_is_named_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_journal(dir.path(), None, 6, true);
    let whole = fs::read(&path).unwrap();
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            whole
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let flipped_path = dir.path().join("flipped.jsonl");
    let mut cases = 0;
    for line in 2..=5 {
        let (from, to) = (starts[line - 1], starts[line] - 1);
        for at in from..to {
            let mut bytes = whole.clone();
            bytes[at] ^= 0x01;
            fs::write(&flipped_path, &bytes).unwrap();
            let found = problem(&flipped_path, None);
            assert_eq!(
                (found.line, found.kind),
                (line, ProblemKind::Tampered),
                "bit flipped at byte {at} (line {line}): {}",
                found.message
            );
            let refused = FileJournal::open_for_resume(&flipped_path, None).unwrap_err();
            assert!(
                matches!(refused, JournalError::Tampered { line: l, .. } if l == line),
                "byte {at}: {refused}"
            );
            assert_eq!(fs::read(&flipped_path).unwrap(), bytes);
            cases += 1;
        }
    }
    assert!(cases > 400, "{cases} flips tried");
}
