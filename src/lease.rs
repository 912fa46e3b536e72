//! Liveness of a run on one host: a run holds an exclusive advisory lock (`flock`, through
//! `std::fs::File::try_lock`) on its lease file, `<journal-dir>/live/<run-id>.lease`, for as
//! long as its process lives. The kernel releases it when the process dies — a crash, a kill,
//! a power cut — so "is this run alive?" never depends on process ids or host names, which PID
//! namespaces and restarts make lie. Two processes can never hold one run's lease, so two can
//! never append to one run's journal. (Across hosts, a lease on shared storage works where the
//! filesystem honours `flock`, e.g. NFSv4 or EFS; leases in DynamoDB come with workers.)

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// A live run's lease; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct RunLease {
    path: PathBuf,
    /// Held locked for the lease's life.
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("run {run_id} is live in another process (its lease {} is held)", .path.display())]
    Held { run_id: String, path: PathBuf },
    #[error("failed to {action} lease {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `<journal-dir>/live/<run-id>.lease`
pub fn lease_path(journal_dir: &Path, run_id: &str) -> PathBuf {
    journal_dir.join("live").join(format!("{run_id}.lease"))
}

impl RunLease {
    /// Takes the run's lease, or says that another process holds it.
    pub fn acquire(journal_dir: &Path, run_id: &str) -> Result<RunLease, LeaseError> {
        let path = lease_path(journal_dir, run_id);
        let io = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| LeaseError::Io {
                action,
                path,
                source,
            }
        };
        let dir = path.parent().expect("a lease lives in a folder");
        std::fs::create_dir_all(dir).map_err(io("create the folder of", &path))?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("open", &path))?;
        match file.try_lock() {
            Ok(()) => Ok(RunLease { path, _file: file }),
            Err(TryLockError::WouldBlock) => Err(LeaseError::Held {
                run_id: run_id.to_owned(),
                path,
            }),
            Err(TryLockError::Error(source)) => Err(LeaseError::Io {
                action: "lock",
                path,
                source,
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Releases a lease whose run never began and removes its file. Only for a run id nobody
    /// else knows (a reservation that was not used): removing the file of a run others may
    /// look up would let two processes lock two different files for one run.
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether a process holds the run's lease now. A run without a lease file never ran here (or
/// ran before leases); one whose file cannot be opened counts as live, so doubt never lets two
/// processes act for one run.
pub fn is_live(journal_dir: &Path, run_id: &str) -> bool {
    let path = lease_path(journal_dir, run_id);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
        Err(_) => return true,
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_live(dir.path(), "r1"), "never ran");
        let lease = RunLease::acquire(dir.path(), "r1").unwrap();
        assert!(is_live(dir.path(), "r1"));
        let second = RunLease::acquire(dir.path(), "r1").unwrap_err();
        assert!(matches!(second, LeaseError::Held { .. }), "{second}");
        assert!(!is_live(dir.path(), "r2"));
        drop(lease);
        assert!(!is_live(dir.path(), "r1"), "released when dropped");
        RunLease::acquire(dir.path(), "r1").unwrap();
    }

    /// A process that dies without cleaning up releases its lease: the kernel drops the lock.
    #[test]
    fn a_dead_process_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = lease_path(dir.path(), "r1");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // A child takes the lock with flock(1) and exits: its lock goes with it.
        let status = std::process::Command::new("flock")
            .arg(&path)
            .arg("true")
            .status()
            .expect("flock(1), from util-linux");
        assert!(status.success());
        assert!(!is_live(dir.path(), "r1"));
        RunLease::acquire(dir.path(), "r1").unwrap();
    }
}
