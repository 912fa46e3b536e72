//! `firebreak report`.

use super::{Exit, GlobalArgs, ReportArgs, ReportFormat};
use crate::report;
use crate::table::TableLocation;

pub fn run(args: &ReportArgs, global: &GlobalArgs) -> Exit {
    let key = super::run::journal_key();
    // A run in the workers' table is reported from its export (its evidence is in the seal).
    let exported = match table_copy(args, global) {
        Ok(copy) => copy,
        Err(error) => {
            eprintln!("error: {error}");
            return Exit::Invalid;
        }
    };
    let journal = exported
        .as_ref()
        .map_or(args.journal.clone(), |(_, path)| path.clone());
    let built = match report::build(&journal, key.as_deref()) {
        Ok(built) => built,
        Err(error) => {
            eprintln!("error: {error}");
            return Exit::Invalid;
        }
    };
    let text = match args.format {
        ReportFormat::Markdown => report::markdown::render(&built),
        ReportFormat::Html => report::html::render(&built),
    };
    match &args.output {
        Some(path) => {
            if let Err(error) = std::fs::write(path, text) {
                eprintln!("error: failed to write {}: {error}", path.display());
                return Exit::Invalid;
            }
            eprintln!("firebreak: report written to {}", path.display());
        }
        None => print!("{text}"),
    }
    drop(exported);
    if !built.intact {
        eprintln!(
            "firebreak: the journal does not verify: {}",
            built.verification
        );
    }
    Exit::Ok
}

/// The table run's journal as a file in a temporary folder (kept while the report is built).
fn table_copy(
    args: &ReportArgs,
    global: &GlobalArgs,
) -> Result<Option<(ScratchDir, std::path::PathBuf)>, String> {
    let target = args.journal.to_string_lossy();
    if !TableLocation::is_table(&target) {
        return Ok(None);
    }
    let location = TableLocation::parse(&target)?;
    let run = location.run()?.to_owned();
    let bytes = super::journal::journal_bytes(&target, global)?;
    let dir = ScratchDir::new()?;
    let path = dir.path().join(format!("{run}.jsonl"));
    std::fs::write(&path, bytes).map_err(|e| format!("failed to write {}: {e}", path.display()))?;
    Ok(Some((dir, path)))
}

/// A folder of its own under the system's temporary directory, removed when dropped.
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn new() -> Result<ScratchDir, String> {
        let path = std::env::temp_dir().join(format!(
            "firebreak-report-{}-{:016x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir(&path)
            .map_err(|e| format!("failed to create {}: {e}", path.display()))?;
        Ok(ScratchDir(path))
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
