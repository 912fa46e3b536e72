//! Durable journal records per second on this machine's disk (the same measurement as
//! `firebreak journal bench`): one appender, concurrent appenders sharing syncs, batches.
//! Run: `cargo bench --profile dev --bench journal [-- RECORDS]`. Writes under
//! `./target/journal-bench` (the disk the journal would use, not a tmpfs) unless
//! FIREBREAK_BENCH_DIR says otherwise.

use std::path::PathBuf;

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
    let rows =
        firebreak::journal::throughput::measure(&dir, records).expect("the journal benchmark runs");
    print!("{}", firebreak::journal::throughput::table(&rows));
    let _ = std::fs::remove_dir(&dir);
}
