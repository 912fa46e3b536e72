//! How many durable records per second a journal sustains on a given disk: one appender (every
//! record its own sync), concurrent appenders (group commit: they share syncs) and
//! `append_batch`. In an outbreak every AWS call is a record and each waits for its sync, so a
//! slow disk slows containment: measure it where the journals will live
//! (`firebreak journal bench --dir …`, and `cargo bench --bench journal`).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::{FileJournal, JournalError, JournalSink};

/// One way of appending, measured.
#[derive(Debug, Clone)]
pub struct Figures {
    pub how: String,
    pub records: usize,
    pub seconds: f64,
    pub syncs: u64,
}

impl Figures {
    pub fn per_second(&self) -> f64 {
        self.records as f64 / self.seconds.max(f64::EPSILON)
    }

    pub fn per_sync(&self) -> f64 {
        self.records as f64 / self.syncs.max(1) as f64
    }
}

/// The figures as the table `firebreak journal bench` and `cargo bench --bench journal` print.
pub fn table(rows: &[Figures]) -> String {
    let mut text = format!(
        "{:<34} {:>12} {:>8} {:>14}\n",
        "how", "records/s", "syncs", "records/sync"
    );
    for row in rows {
        text.push_str(&format!(
            "{:<34} {:>12.0} {:>8} {:>14.1}\n",
            row.how,
            row.per_second(),
            row.syncs,
            row.per_sync()
        ));
    }
    text
}

/// Appends `records` records each way into fresh journals under `dir` (removed afterwards).
pub fn measure(dir: &Path, records: usize) -> Result<Vec<Figures>, JournalError> {
    let records = records.max(1);
    let rows = vec![
        one_appender(dir, records)?,
        concurrent(dir, records, 16)?,
        concurrent(dir, records, 64)?,
        batches(dir, records, 100)?,
    ];
    for name in ["one", "threads-16", "threads-64", "batch-100"] {
        let _ = std::fs::remove_file(dir.join(format!("{name}.jsonl")));
    }
    Ok(rows)
}

/// About the size of an `api_call` record.
fn payload(i: usize) -> Map<String, Value> {
    let Value::Object(fields) = json!({
        "step": "isolate",
        "item_index": i,
        "service": "ec2",
        "operation": "ModifyNetworkInterfaceAttribute",
        "targets": ["eni-0123456789abcdef0", "sg-0123456789abcdef0"],
        "outcome": "ok",
        "request_id": "8f2d7c1e-3b4a-4c5d-9e6f-0a1b2c3d4e5f",
        "attempt": 1,
        "duration_ms": 12,
    }) else {
        unreachable!("a JSON object literal")
    };
    fields
}

fn journal(dir: &Path, name: &str) -> Result<FileJournal, JournalError> {
    let path = dir.join(format!("{name}.jsonl"));
    let _ = std::fs::remove_file(&path);
    FileJournal::create(&path, "bench", None)
}

fn figures(how: &str, records: usize, started: Instant, journal: &FileJournal) -> Figures {
    Figures {
        how: how.to_owned(),
        records,
        seconds: started.elapsed().as_secs_f64(),
        syncs: journal.syncs().unwrap_or(0),
    }
}

fn one_appender(dir: &Path, records: usize) -> Result<Figures, JournalError> {
    let journal = journal(dir, "one")?;
    let started = Instant::now();
    for i in 0..records {
        journal.append_fields("api_call", payload(i))?;
    }
    Ok(figures(
        "one appender (a sync per record)",
        records,
        started,
        &journal,
    ))
}

fn concurrent(dir: &Path, records: usize, threads: usize) -> Result<Figures, JournalError> {
    let journal = Arc::new(journal(dir, &format!("threads-{threads}"))?);
    let started = Instant::now();
    let results: Vec<Result<(), JournalError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let journal = journal.clone();
                scope.spawn(move || {
                    for i in (t..records).step_by(threads) {
                        journal.append_fields("api_call", payload(i))?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("an appender thread does not panic"))
            .collect()
    });
    results.into_iter().collect::<Result<(), _>>()?;
    let how = format!("{threads} appenders (group commit)");
    Ok(figures(&how, records, started, &journal))
}

fn batches(dir: &Path, records: usize, size: usize) -> Result<Figures, JournalError> {
    let journal = journal(dir, &format!("batch-{size}"))?;
    let started = Instant::now();
    let mut written = 0;
    while written < records {
        let n = size.min(records - written);
        let batch = (written..written + n)
            .map(|i| ("api_call", payload(i)))
            .collect();
        journal.append_batch(batch)?;
        written += n;
    }
    let how = format!("append_batch of {size}");
    Ok(figures(&how, records, started, &journal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_way_writes_every_record_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let rows = measure(dir.path(), 200).unwrap();
        assert_eq!(rows.len(), 4);
        for row in &rows {
            assert_eq!(row.records, 200, "{row:?}");
            assert!(row.syncs >= 1 && row.syncs <= 200, "{row:?}");
        }
        // A batch of 100 is one sync: 200 records, 2 syncs (the header's own may add one).
        assert!(rows[3].syncs <= 3, "{:?}", rows[3]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
