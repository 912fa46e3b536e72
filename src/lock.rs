//! Per-resource locks, so two runs never act on the same resource at once.
//!
//! A lock is a file in `<journal_dir>/locks/` naming its holder (run, pid, host, mode). A lock
//! whose process is gone is *stale*: the run crashed mid-way, and the resource may be half
//! changed. Only a resume of that run, or an explicit `force`, takes a stale lock over — and a
//! takeover is reported so the engine can journal it. A lock whose process may be alive is never
//! taken over. Processes on other hosts cannot be checked and count as alive.
//!
//! Locks are acquired in sorted order and all-or-nothing: a refusal rolls back the locks taken
//! in the same call, so two runs racing for overlapping sets cannot both end up half-locked.

use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::journal::Mode;

/// Who asks for the locks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOwner {
    pub run_id: String,
    pub pid: u32,
    pub host: String,
    pub mode: Mode,
}

impl LockOwner {
    /// This process on this host.
    pub fn current(run_id: impl Into<String>, mode: Mode) -> Result<Self, LockError> {
        Ok(LockOwner {
            run_id: run_id.into(),
            pid: std::process::id(),
            host: crate::host::host(),
            mode,
        })
    }
}

/// When a held lock may be taken over. Live holders are never displaced, whatever this says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TakeoverPolicy {
    /// The run being resumed: its stale locks are ours to take.
    pub resume_of: Option<String>,
    /// Take over stale locks of other runs (an operator decided the crashed run is abandoned).
    pub force: bool,
}

/// The content of a lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub run_id: String,
    pub pid: u32,
    pub host: String,
    pub mode: Mode,
    pub resource: String,
    pub acquired_at: String,
}

/// A stale lock this call took over, for the engine to journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenOver {
    pub resource: String,
    /// The previous holder; `None` when its lock file was unreadable or garbled.
    pub previous: Option<LockHolder>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "failed to lock {resource}: held by run {holder_run_id} (pid {holder_pid} on \
         {holder_host}), which may still be running"
    )]
    Held {
        resource: String,
        holder_run_id: String,
        holder_pid: u32,
        holder_host: String,
    },
    #[error(
        "failed to lock {resource}: stale lock of {} whose process is gone; only a resume of \
         that run or a forced live run may take it over",
        describe_run(.holder_run_id)
    )]
    Stale {
        resource: String,
        /// `None` when the lock file was unreadable or garbled.
        holder_run_id: Option<String>,
    },
    #[error("failed to lock {resource}: its lock file kept changing")]
    Contended { resource: String },
    #[error("failed to {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to encode the lock of {resource}: {source}")]
    Encode {
        resource: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to format the lock timestamp: {source}")]
    Clock {
        #[source]
        source: time::error::Format,
    },
}

fn describe_run(run_id: &Option<String>) -> String {
    match run_id {
        Some(id) => format!("run {id}"),
        None => "an unknown run (unreadable lock file)".to_owned(),
    }
}

/// Locks held by this run. Released by [`LockSet::release`], or best-effort on drop.
#[derive(Debug, Default)]
pub struct LockSet {
    held: Vec<OwnedLock>,
    taken_over: Vec<TakenOver>,
}

#[derive(Debug)]
struct OwnedLock {
    resource: String,
    path: PathBuf,
    /// What we wrote: a file with other content is no longer ours to remove.
    content: Vec<u8>,
    /// The stale lock this replaced, put back if the whole acquisition is rolled back.
    replaced: Option<Vec<u8>>,
}

impl LockSet {
    /// The locked resource ids, sorted.
    pub fn resources(&self) -> Vec<&str> {
        self.held.iter().map(|l| l.resource.as_str()).collect()
    }

    /// The stale locks taken over while acquiring.
    pub fn taken_over(&self) -> Vec<TakenOver> {
        self.taken_over.clone()
    }

    /// Removes every lock file this set still owns. Tries all, returns the first failure.
    pub fn release(mut self) -> Result<(), LockError> {
        self.release_all()
    }

    fn release_all(&mut self) -> Result<(), LockError> {
        let mut first_err = None;
        for lock in std::mem::take(&mut self.held) {
            if let Err(e) = remove_if_ours(&lock) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Undoes a partial acquisition: own locks removed, taken-over stale locks put back, so a
    /// refused run leaves the lock directory as it found it.
    fn roll_back(&mut self) {
        for lock in std::mem::take(&mut self.held) {
            let _ = match &lock.replaced {
                Some(previous) if still_ours(&lock) => replace(&lock.path, previous),
                _ => remove_if_ours(&lock),
            };
        }
        self.taken_over.clear();
    }
}

impl Drop for LockSet {
    fn drop(&mut self) {
        let _ = self.release_all();
    }
}

/// Locks every resource in `resources` for `owner`, or none of them.
pub fn acquire(
    dir: &Path,
    resources: &[String],
    owner: &LockOwner,
    policy: TakeoverPolicy,
) -> Result<LockSet, LockError> {
    let locks = dir.join("locks");
    fs::create_dir_all(&locks).map_err(io_err("create lock directory", &locks))?;
    let mut wanted: Vec<&str> = resources.iter().map(String::as_str).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut set = LockSet::default();
    for resource in wanted {
        if let Err(e) = acquire_one(&locks, resource, owner, &policy, &mut set) {
            set.roll_back();
            return Err(e);
        }
    }
    Ok(set)
}

/// Tries to create the lock; if it is held, decides whether to take it over. Retries when the
/// lock changes between looking and acting (its holder released or replaced it).
fn acquire_one(
    locks: &Path,
    resource: &str,
    owner: &LockOwner,
    policy: &TakeoverPolicy,
    set: &mut LockSet,
) -> Result<(), LockError> {
    const ATTEMPTS: usize = 5;
    let path = locks.join(lock_file_name(resource));
    let content = encode(owner, resource)?;
    for _ in 0..ATTEMPTS {
        match create_new(&path, &content) {
            Ok(()) => {
                set.held.push(OwnedLock {
                    resource: resource.to_owned(),
                    path,
                    content,
                    replaced: None,
                });
                return Ok(());
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(LockError::Io {
                    action: "create lock file",
                    path,
                    source,
                });
            }
        }
        let seen = match fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == ErrorKind::NotFound => continue, // released meanwhile
            Err(_) => None,                                        // unreadable: garbled
        };
        let holder = seen
            .as_deref()
            .and_then(|b| serde_json::from_slice::<LockHolder>(b).ok());
        decide(resource, holder.as_ref(), owner, policy)?;
        // Narrow the window in which a new holder could appear between reading and replacing.
        if fs::read(&path).ok() != seen {
            continue;
        }
        replace(&path, &content)?;
        set.held.push(OwnedLock {
            resource: resource.to_owned(),
            path,
            content,
            replaced: seen,
        });
        set.taken_over.push(TakenOver {
            resource: resource.to_owned(),
            previous: holder,
        });
        return Ok(());
    }
    Err(LockError::Contended {
        resource: resource.to_owned(),
    })
}

/// `Ok` when `owner` may take over the lock of `holder` (`None`: garbled), else the refusal.
fn decide(
    resource: &str,
    holder: Option<&LockHolder>,
    owner: &LockOwner,
    policy: &TakeoverPolicy,
) -> Result<(), LockError> {
    let stale = |run_id: Option<&str>| LockError::Stale {
        resource: resource.to_owned(),
        holder_run_id: run_id.map(str::to_owned),
    };
    let Some(holder) = holder else {
        // An unknown holder may have been live, so a dry run must not displace it.
        return if policy.force && owner.mode == Mode::Live {
            Ok(())
        } else {
            Err(stale(None))
        };
    };
    if holder.host != owner.host || process_alive(holder.pid) {
        return Err(LockError::Held {
            resource: resource.to_owned(),
            holder_run_id: holder.run_id.clone(),
            holder_pid: holder.pid,
            holder_host: holder.host.clone(),
        });
    }
    if owner.mode == Mode::DryRun && holder.mode == Mode::Live {
        return Err(stale(Some(&holder.run_id)));
    }
    let own_run = holder.run_id == owner.run_id
        || policy.resume_of.as_deref() == Some(holder.run_id.as_str());
    if own_run || policy.force {
        Ok(())
    } else {
        Err(stale(Some(&holder.run_id)))
    }
}

/// Whether `pid` names a process on this host. A process of another user (`EPERM`) is alive;
/// a reused pid looks alive too, which errs on the side of refusing.
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false; // 0 and negatives address process groups, not a holder
    }
    // SAFETY: signal 0 delivers nothing; it only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The lock file name for a resource id: readable, filesystem-safe, and unique thanks to a
/// hash of the raw id (`a/b` and `a_b` sanitize alike). Long ids (ARNs) are shortened to stay
/// under file name limits.
pub fn lock_file_name(resource: &str) -> String {
    const MAX_READABLE: usize = 160;
    let readable: String = resource
        .chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .take(MAX_READABLE)
        .collect();
    let hash = hex::encode(&Sha256::digest(resource.as_bytes())[..6]);
    format!("{readable}-{hash}.lock")
}

fn encode(owner: &LockOwner, resource: &str) -> Result<Vec<u8>, LockError> {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    let acquired_at = OffsetDateTime::now_utc()
        .format(format)
        .map_err(|source| LockError::Clock { source })?;
    let holder = LockHolder {
        run_id: owner.run_id.clone(),
        pid: owner.pid,
        host: owner.host.clone(),
        mode: owner.mode,
        resource: resource.to_owned(),
        acquired_at,
    };
    let mut bytes = serde_json::to_vec(&holder).map_err(|source| LockError::Encode {
        resource: resource.to_owned(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Creates `path` only if absent (atomic `O_EXCL`), then writes `content`.
fn create_new(path: &Path, content: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    let written = file.write_all(content).and_then(|()| file.sync_data());
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written
}

/// Replaces `path` atomically: readers see the old lock or the new one, never a partial file.
fn replace(path: &Path, content: &[u8]) -> Result<(), LockError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(
        ".{name}.{}.{:016x}.tmp",
        std::process::id(),
        fastrand::u64(..)
    ));
    create_new(&tmp, content).map_err(io_err("write lock file", &tmp))?;
    fs::rename(&tmp, path).map_err(|source| {
        let _ = fs::remove_file(&tmp);
        LockError::Io {
            action: "take over lock file",
            path: path.to_owned(),
            source,
        }
    })
}

fn still_ours(lock: &OwnedLock) -> bool {
    fs::read(&lock.path).is_ok_and(|bytes| bytes == lock.content)
}

/// Removes the lock file unless someone else's lock has replaced it meanwhile.
fn remove_if_ours(lock: &OwnedLock) -> Result<(), LockError> {
    let removed = match fs::read(&lock.path) {
        Ok(bytes) if bytes == lock.content => fs::remove_file(&lock.path),
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    };
    match removed {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(LockError::Io {
            action: "release lock file",
            path: lock.path.clone(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LockError {
    let path = path.to_owned();
    move |source| LockError::Io {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn owner(run_id: &str, mode: Mode) -> LockOwner {
        LockOwner::current(run_id, mode).unwrap()
    }

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// A pid that belonged to a process which has exited and been reaped.
    fn dead_pid() -> u32 {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    fn lock_path(dir: &Path, resource: &str) -> PathBuf {
        dir.join("locks").join(lock_file_name(resource))
    }

    /// Writes a lock file as if `run_id` (pid `pid` on this host) held `resource`.
    fn plant(dir: &Path, resource: &str, run_id: &str, pid: u32, mode: Mode) {
        let holder = LockOwner {
            pid,
            ..owner(run_id, mode)
        };
        fs::create_dir_all(dir.join("locks")).unwrap();
        fs::write(lock_path(dir, resource), encode(&holder, resource).unwrap()).unwrap();
    }

    fn holder_of(dir: &Path, resource: &str) -> LockHolder {
        serde_json::from_slice(&fs::read(lock_path(dir, resource)).unwrap()).unwrap()
    }

    fn lock_files(dir: &Path) -> usize {
        fs::read_dir(dir.join("locks")).unwrap().count()
    }

    #[test]
    fn acquire_writes_holders_and_release_removes_them() {
        let dir = tempfile::tempdir().unwrap();
        let me = owner("run-a", Mode::Live);
        let res = ids(&["i-2", "arn:aws:iam::1:role/x", "i-2"]);
        let set = acquire(dir.path(), &res, &me, TakeoverPolicy::default()).unwrap();
        assert_eq!(set.resources(), ["arn:aws:iam::1:role/x", "i-2"]);
        assert!(set.taken_over().is_empty());
        let holder = holder_of(dir.path(), "arn:aws:iam::1:role/x");
        assert_eq!(
            (holder.run_id.as_str(), holder.pid, holder.mode),
            ("run-a", std::process::id(), Mode::Live)
        );
        assert_eq!(holder.resource, "arn:aws:iam::1:role/x");
        let text = fs::read_to_string(lock_path(dir.path(), "i-2")).unwrap();
        assert!(text.starts_with(r#"{"run_id":"run-a","pid":"#), "{text}");
        assert!(text.contains(r#""mode":"live","resource":"i-2","acquired_at":""#));
        set.release().unwrap();
        assert_eq!(lock_files(dir.path()), 0);
    }

    #[test]
    fn dropping_the_set_releases() {
        let dir = tempfile::tempdir().unwrap();
        let me = owner("run-a", Mode::Live);
        drop(acquire(dir.path(), &ids(&["i-1"]), &me, TakeoverPolicy::default()).unwrap());
        assert_eq!(lock_files(dir.path()), 0);
    }

    #[test]
    fn a_second_owner_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let res = ids(&["i-1"]);
        let _held = acquire(
            dir.path(),
            &res,
            &owner("run-a", Mode::Live),
            TakeoverPolicy::default(),
        )
        .unwrap();
        let err = acquire(
            dir.path(),
            &res,
            &owner("run-b", Mode::Live),
            TakeoverPolicy::default(),
        )
        .unwrap_err();
        match &err {
            LockError::Held {
                resource,
                holder_run_id,
                holder_pid,
                ..
            } => {
                assert_eq!(
                    (resource.as_str(), holder_run_id.as_str()),
                    ("i-1", "run-a")
                );
                assert_eq!(*holder_pid, std::process::id());
            }
            other => panic!("expected Held, got {other}"),
        }
        assert!(
            err.to_string()
                .starts_with("failed to lock i-1: held by run run-a")
        );
    }

    #[test]
    fn the_same_run_takes_over_after_its_process_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        plant(dir.path(), "i-1", "run-a", dead_pid(), Mode::Live);
        let policy = TakeoverPolicy {
            resume_of: Some("run-a".into()),
            force: false,
        };
        let me = owner("run-a", Mode::Live);
        let set = acquire(dir.path(), &ids(&["i-1"]), &me, policy).unwrap();
        assert_eq!(holder_of(dir.path(), "i-1").pid, std::process::id());
        let taken = set.taken_over();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].previous.as_ref().unwrap().run_id, "run-a");
        set.release().unwrap();
        assert_eq!(lock_files(dir.path()), 0, "no temp files left behind");
    }

    #[test]
    fn a_dead_foreign_lock_is_stale_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let pid = dead_pid();
        plant(dir.path(), "i-1", "run-old", pid, Mode::Live);
        let me = owner("run-new", Mode::Live);
        let err = acquire(dir.path(), &ids(&["i-1"]), &me, TakeoverPolicy::default()).unwrap_err();
        assert!(
            matches!(&err, LockError::Stale { holder_run_id: Some(r), .. } if r == "run-old"),
            "{err}"
        );
        let force = TakeoverPolicy {
            resume_of: None,
            force: true,
        };
        let set = acquire(dir.path(), &ids(&["i-1"]), &me, force).unwrap();
        let previous = set.taken_over()[0].previous.clone().unwrap();
        assert_eq!((previous.run_id.as_str(), previous.pid), ("run-old", pid));
        assert_eq!(holder_of(dir.path(), "i-1").run_id, "run-new");
    }

    #[test]
    fn force_never_takes_over_a_live_holder() {
        let dir = tempfile::tempdir().unwrap();
        plant(dir.path(), "i-1", "run-a", std::process::id(), Mode::Live);
        let force = TakeoverPolicy {
            resume_of: Some("run-a".into()),
            force: true,
        };
        let err = acquire(
            dir.path(),
            &ids(&["i-1"]),
            &owner("run-a", Mode::Live),
            force,
        )
        .unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
    }

    #[test]
    fn a_holder_on_another_host_counts_as_alive() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = LockOwner {
            pid: dead_pid(),
            host: "some-other-host".into(),
            ..owner("run-a", Mode::Live)
        };
        fs::create_dir_all(dir.path().join("locks")).unwrap();
        fs::write(
            lock_path(dir.path(), "i-1"),
            encode(&elsewhere, "i-1").unwrap(),
        )
        .unwrap();
        let force = TakeoverPolicy {
            resume_of: None,
            force: true,
        };
        let err = acquire(
            dir.path(),
            &ids(&["i-1"]),
            &owner("run-b", Mode::Live),
            force,
        )
        .unwrap_err();
        assert!(
            matches!(&err, LockError::Held { holder_host, .. } if holder_host == "some-other-host"),
            "{err}"
        );
    }

    #[test]
    fn a_dry_run_never_takes_over_a_live_runs_lock() {
        let dir = tempfile::tempdir().unwrap();
        let force = TakeoverPolicy {
            resume_of: None,
            force: true,
        };
        let dry = owner("run-dry", Mode::DryRun);
        assert_eq!(serde_json::to_value(dry.mode).unwrap(), "dry-run");
        plant(dir.path(), "alive", "run-a", std::process::id(), Mode::Live);
        let err = acquire(dir.path(), &ids(&["alive"]), &dry, force.clone()).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");

        plant(dir.path(), "dead", "run-b", dead_pid(), Mode::Live);
        let err = acquire(dir.path(), &ids(&["dead"]), &dry, force.clone()).unwrap_err();
        assert!(matches!(err, LockError::Stale { .. }), "{err}");

        // A crashed dry run's lock is fair game for another forced dry run.
        plant(dir.path(), "dry", "run-c", dead_pid(), Mode::DryRun);
        assert!(acquire(dir.path(), &ids(&["dry"]), &dry, force).is_ok());
    }

    #[test]
    fn a_garbled_lock_is_stale_from_an_unknown_run() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("locks")).unwrap();
        fs::write(lock_path(dir.path(), "i-1"), "{not json").unwrap();
        let me = owner("run-a", Mode::Live);
        let err = acquire(dir.path(), &ids(&["i-1"]), &me, TakeoverPolicy::default()).unwrap_err();
        assert!(
            matches!(
                err,
                LockError::Stale {
                    holder_run_id: None,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("unknown run"), "{err}");
        let force = TakeoverPolicy {
            resume_of: None,
            force: true,
        };
        let set = acquire(dir.path(), &ids(&["i-1"]), &me, force).unwrap();
        assert_eq!(set.taken_over()[0].previous, None);
    }

    #[test]
    fn a_refusal_rolls_back_the_locks_already_taken() {
        let dir = tempfile::tempdir().unwrap();
        plant(dir.path(), "b", "run-x", std::process::id(), Mode::Live);
        plant(dir.path(), "a", "run-old", dead_pid(), Mode::Live);
        let stale_before = fs::read(lock_path(dir.path(), "a")).unwrap();
        let force = TakeoverPolicy {
            resume_of: None,
            force: true,
        };
        let me = owner("run-new", Mode::Live);
        let err = acquire(dir.path(), &ids(&["c", "b", "a", "0"]), &me, force).unwrap_err();
        assert!(
            matches!(&err, LockError::Held { resource, .. } if resource == "b"),
            "{err}"
        );
        assert!(!lock_path(dir.path(), "0").exists());
        assert!(!lock_path(dir.path(), "c").exists());
        assert_eq!(
            fs::read(lock_path(dir.path(), "a")).unwrap(),
            stale_before,
            "a taken-over stale lock is put back"
        );
        assert_eq!(holder_of(dir.path(), "b").run_id, "run-x");
        assert_eq!(lock_files(dir.path()), 2);
    }

    #[test]
    fn release_leaves_a_lock_that_is_no_longer_ours() {
        let dir = tempfile::tempdir().unwrap();
        let me = owner("run-a", Mode::Live);
        let set = acquire(dir.path(), &ids(&["i-1"]), &me, TakeoverPolicy::default()).unwrap();
        plant(dir.path(), "i-1", "run-b", std::process::id(), Mode::Live);
        set.release().unwrap();
        assert_eq!(holder_of(dir.path(), "i-1").run_id, "run-b");
    }

    #[test]
    fn lock_file_names_are_safe_and_distinct() {
        let name = lock_file_name("arn:aws:ec2:us-east-1:123:instance/i-0abc");
        assert!(
            name.starts_with("arn_aws_ec2_us-east-1_123_instance_i-0abc-"),
            "{name}"
        );
        assert!(name.ends_with(".lock"));
        assert_ne!(lock_file_name("a/b"), lock_file_name("a_b"));
        assert!(lock_file_name(&"x".repeat(2000)).len() < 200);
        assert!(lock_file_name("../..").starts_with(".._..-"));
    }
}
