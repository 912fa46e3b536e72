//! Durable journal records per second on this machine's disk: one appender (every record its
//! own sync), concurrent appenders (group commit: they share syncs), and `append_batch`.
//! Run: `cargo bench --bench journal [-- RECORDS]`. Writes under `./target/journal-bench`
//! (the disk the journal would use, not a tmpfs) unless FIREBREAK_BENCH_DIR says otherwise.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use firebreak::journal::{FileJournal, JournalSink};
use serde_json::{Map, Value, json};

fn payload(i: usize) -> Map<String, Value> {
    // About the size of an api_call record.
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
        unreachable!()
    };
    fields
}

struct Figures {
    records: usize,
    seconds: f64,
    syncs: u64,
}

fn journal(dir: &Path, name: &str) -> FileJournal {
    let path = dir.join(format!("{name}.jsonl"));
    let _ = std::fs::remove_file(&path);
    FileJournal::create(&path, "bench", None).expect("the bench journal can be created")
}

fn one_appender(dir: &Path, records: usize) -> Figures {
    let journal = journal(dir, "one");
    let started = Instant::now();
    for i in 0..records {
        journal.append_fields("api_call", payload(i)).unwrap();
    }
    Figures {
        records,
        seconds: started.elapsed().as_secs_f64(),
        syncs: journal.syncs().unwrap(),
    }
}

fn concurrent(dir: &Path, records: usize, threads: usize) -> Figures {
    let journal = Arc::new(journal(dir, &format!("threads-{threads}")));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let journal = journal.clone();
            scope.spawn(move || {
                for i in (t..records).step_by(threads) {
                    journal.append_fields("api_call", payload(i)).unwrap();
                }
            });
        }
    });
    Figures {
        records,
        seconds: started.elapsed().as_secs_f64(),
        syncs: journal.syncs().unwrap(),
    }
}

fn batches(dir: &Path, records: usize, size: usize) -> Figures {
    let journal = journal(dir, &format!("batch-{size}"));
    let started = Instant::now();
    let mut written = 0;
    while written < records {
        let n = size.min(records - written);
        let batch = (written..written + n)
            .map(|i| ("api_call", payload(i)))
            .collect();
        journal.append_batch(batch).unwrap();
        written += n;
    }
    Figures {
        records,
        seconds: started.elapsed().as_secs_f64(),
        syncs: journal.syncs().unwrap(),
    }
}

fn main() {
    let records: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5000);
    let dir = std::env::var_os("FIREBREAK_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/journal-bench"));
    std::fs::create_dir_all(&dir).expect("the bench folder can be created");
    println!(
        "durable journal appends, {records} records, in {}",
        dir.display()
    );
    println!(
        "{:<34} {:>12} {:>8} {:>14}",
        "how", "records/s", "syncs", "records/sync"
    );
    let rows = [
        (
            "one appender (a sync per record)",
            one_appender(&dir, records),
        ),
        ("16 appenders (group commit)", concurrent(&dir, records, 16)),
        ("64 appenders (group commit)", concurrent(&dir, records, 64)),
        ("append_batch of 100", batches(&dir, records, 100)),
    ];
    for (how, f) in rows {
        println!(
            "{:<34} {:>12.0} {:>8} {:>14.1}",
            how,
            f.records as f64 / f.seconds,
            f.syncs,
            f.records as f64 / f.syncs.max(1) as f64
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
