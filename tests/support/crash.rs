//! The crash-then-resume flow: run the built binary with `FIREBREAK_FAULT` so it aborts at a
//! journal boundary (like a power cut), then `resume` the run it left. Needs the binary built
//! with the `fault-injection` feature (`scripts/test` builds it so).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Output, firebreak, journal, moto, output};

/// A `firebreak` command against moto with its journals in `dir`.
pub fn command(dir: &Path) -> Command {
    let mut command = firebreak();
    command.envs(moto::env()).env("FIREBREAK_JOURNAL_DIR", dir);
    command
}

/// Runs `firebreak <args>` set to abort at `point`; asserts that it did and returns the journal
/// it left in `dir`.
pub fn crash_at(point: &str, dir: &Path, args: &[&str]) -> PathBuf {
    assert_fault_injection();
    let crashed = output(command(dir).env("FIREBREAK_FAULT", point).args(args));
    assert!(
        crashed.code.is_none(),
        "{point}: the process should have aborted; exit {:?}\n{}",
        crashed.code,
        crashed.stderr
    );
    journal::only_journal(dir)
}

/// `firebreak resume JOURNAL --yes <extra>`.
pub fn resume(dir: &Path, journal: &Path, extra: &[&str]) -> Output {
    output(
        command(dir)
            .arg("resume")
            .arg(journal)
            .arg("--yes")
            .args(extra),
    )
}

/// `firebreak journal verify JOURNAL`.
pub fn verify(journal: &Path) -> Output {
    output(firebreak().args(["journal", "verify"]).arg(journal))
}

/// Crash tests need the feature; without it they fail with instructions rather than pass.
pub fn assert_fault_injection() {
    if !cfg!(feature = "fault-injection") {
        panic!(
            "this test aborts the binary at journal boundaries: run it with \
             `cargo test --features fault-injection` (scripts/test does)"
        );
    }
}
