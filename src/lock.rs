//! Per-resource locks, so two runs never act on the same resource at once.
//!
//! A lock is a file in `<journal_dir>/locks/` naming the run that holds it. Whether that run is
//! alive is its lease's business ([`crate::lease`]: a kernel lock held for the life of the
//! run's process), never a process id or a host name. A lock held by a run that is neither live
//! nor parked is *stale*: the run crashed mid-way, and the resource may be half changed. Only a
//! resume of that run, or an explicit `force`, takes a stale lock over — and a takeover is
//! reported so the engine can journal it. A live run's lock is never taken over; a parked run
//! (waiting for a person's decision) keeps its locks until it is resumed. A drill never holds a
//! lock that blocks containment: a live run takes a drill's lock over.
//!
//! Locks are acquired in sorted order and all-or-nothing: a refusal rolls back the locks taken
//! in the same call, so two runs racing for overlapping sets cannot both end up half-locked. A
//! lock file appears whole or not at all (written aside, then linked into place).

use std::fs;
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::journal::Mode;
use crate::lease;

/// Who asks for the locks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOwner {
    pub run_id: String,
    /// Informational: where the holder ran.
    pub host: String,
    pub mode: Mode,
}

impl LockOwner {
    /// This run, on this host.
    pub fn new(run_id: impl Into<String>, mode: Mode) -> Self {
        LockOwner {
            run_id: run_id.into(),
            host: crate::host::host(),
            mode,
        }
    }
}

/// When a held lock may be taken over. Live and parked holders are never displaced, whatever
/// this says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TakeoverPolicy {
    /// The run being resumed: its stale or parked locks are ours to take.
    pub resume_of: Option<String>,
    /// Take over stale locks of other runs (an operator decided the crashed run is abandoned).
    pub force: bool,
}

/// The content of a lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub run_id: String,
    /// Informational; liveness is the run's lease.
    #[serde(default)]
    pub host: String,
    pub mode: Mode,
    pub resource: String,
    pub acquired_at: String,
    /// The run waits for a person's decision: its locks stay until it is resumed.
    #[serde(default)]
    pub parked: bool,
}

/// A lock this call took over, for the engine to journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenOver {
    pub resource: String,
    /// The previous holder; `None` when its lock file was unreadable or garbled.
    pub previous: Option<LockHolder>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "failed to lock {resource}: held by run {holder_run_id} (on {holder_host}), which is running"
    )]
    Held {
        resource: String,
        holder_run_id: String,
        holder_host: String,
    },
    #[error(
        "failed to lock {resource}: run {holder_run_id} holds it while it waits for a person's \
         decision; approve or deny that run first"
    )]
    Parked {
        resource: String,
        holder_run_id: String,
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
    #[error("failed to lock {resource} in the shared table: {message}")]
    Table { resource: String, message: String },
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

impl LockError {
    /// Another run holds the resource (as opposed to the lock directory failing).
    pub fn is_held(&self) -> bool {
        matches!(
            self,
            LockError::Held { .. }
                | LockError::Parked { .. }
                | LockError::Stale { .. }
                | LockError::Contended { .. }
        )
    }
}

fn describe_run(run_id: &Option<String>) -> String {
    match run_id {
        Some(id) => format!("run {id}"),
        None => "an unknown run (unreadable lock file)".to_owned(),
    }
}

/// Locks held by this run. Released by [`LockSet::release`] (or best-effort on drop), or kept
/// for a person's decision by [`LockSet::park`].
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
    /// The lock this replaced, put back if the whole acquisition is rolled back.
    replaced: Option<Vec<u8>>,
    holder: LockHolder,
}

impl LockSet {
    /// The locked resource ids, sorted.
    pub fn resources(&self) -> Vec<&str> {
        self.held.iter().map(|l| l.resource.as_str()).collect()
    }

    /// The locks taken over while acquiring.
    pub fn taken_over(&self) -> Vec<TakenOver> {
        self.taken_over.clone()
    }

    /// Removes every lock file this set still owns. Tries all, returns the first failure.
    pub fn release(mut self) -> Result<(), LockError> {
        self.release_all()
    }

    /// Keeps the locks for a run that waits for a person: each is marked parked, so no other
    /// run takes it while the process is gone, and the run's own resume takes them back.
    pub fn park(mut self) -> Result<(), LockError> {
        let mut first_err = None;
        for lock in std::mem::take(&mut self.held) {
            let holder = LockHolder {
                parked: true,
                ..lock.holder.clone()
            };
            let parked = encode(&holder).and_then(|content| {
                if still_ours(&lock) {
                    replace(&lock.path, &content)
                } else {
                    Ok(())
                }
            });
            if let Err(e) = parked {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
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

    /// Undoes a partial acquisition: own locks removed, taken-over locks put back, so a refused
    /// run leaves the lock directory as it found it.
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

/// Locks every resource in `resources` for `owner`, or none of them. `dir` is the journal
/// directory: locks live in `dir/locks`, leases in `dir/live`.
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
        if let Err(e) = acquire_one(dir, &locks, resource, owner, &policy, &mut set) {
            set.roll_back();
            return Err(e);
        }
    }
    Ok(set)
}

/// Tries to create the lock; if it is held, decides whether to take it over. Retries when the
/// lock changes between looking and acting (its holder released or replaced it).
fn acquire_one(
    journal_dir: &Path,
    locks: &Path,
    resource: &str,
    owner: &LockOwner,
    policy: &TakeoverPolicy,
    set: &mut LockSet,
) -> Result<(), LockError> {
    const ATTEMPTS: usize = 5;
    let path = locks.join(lock_file_name(resource));
    let holder = holder_for(owner, resource)?;
    let content = encode(&holder)?;
    for _ in 0..ATTEMPTS {
        match create_new(&path, &content) {
            Ok(()) => {
                set.held.push(OwnedLock {
                    resource: resource.to_owned(),
                    path,
                    content,
                    replaced: None,
                    holder,
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
        let previous = seen
            .as_deref()
            .and_then(|b| serde_json::from_slice::<LockHolder>(b).ok());
        let live = previous
            .as_ref()
            .is_some_and(|h| lease::is_live(journal_dir, &h.run_id));
        decide(resource, previous.as_ref(), live, owner, policy)?;
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
            holder,
        });
        set.taken_over.push(TakenOver {
            resource: resource.to_owned(),
            previous,
        });
        return Ok(());
    }
    Err(LockError::Contended {
        resource: resource.to_owned(),
    })
}

/// `Ok` when `owner` may take over the lock of `holder` (`None`: garbled), else the refusal.
/// `holder_live`: whether the holder's run holds its lease now (wherever leases are kept).
pub fn decide(
    resource: &str,
    holder: Option<&LockHolder>,
    holder_live: bool,
    owner: &LockOwner,
    policy: &TakeoverPolicy,
) -> Result<(), LockError> {
    let stale = |run_id: Option<&str>| LockError::Stale {
        resource: resource.to_owned(),
        holder_run_id: run_id.map(str::to_owned),
    };
    let Some(holder) = holder else {
        // An unknown holder may have been live, so a drill must not displace it.
        return if policy.force && owner.mode == Mode::Live {
            Ok(())
        } else {
            Err(stale(None))
        };
    };
    // The run itself (its resume holds its own lease, so liveness says nothing here).
    let own_run = holder.run_id == owner.run_id
        || policy.resume_of.as_deref() == Some(holder.run_id.as_str());
    if own_run {
        return Ok(());
    }
    // A drill changes nothing: containment never waits for one.
    if holder.mode == Mode::DryRun && owner.mode == Mode::Live {
        return Ok(());
    }
    if holder_live {
        return Err(LockError::Held {
            resource: resource.to_owned(),
            holder_run_id: holder.run_id.clone(),
            holder_host: holder.host.clone(),
        });
    }
    if holder.parked {
        return Err(LockError::Parked {
            resource: resource.to_owned(),
            holder_run_id: holder.run_id.clone(),
        });
    }
    if owner.mode == Mode::DryRun && holder.mode == Mode::Live {
        return Err(stale(Some(&holder.run_id)));
    }
    if policy.force {
        Ok(())
    } else {
        Err(stale(Some(&holder.run_id)))
    }
}

/// The lock file name for a resource id: readable, filesystem-safe, and unique thanks to a
/// hash of the raw id (`a/b` and `a_b` sanitize alike). Long ids (ARNs) are shortened to stay
/// under file name limits.
/// The lock key of a target: it names the account and region the resource lives in, so the same
/// instance id or IAM user name in two accounts is two resources. IAM is global (no region) and
/// its names are case-insensitive, so IAM keys are lower case.
pub fn resource_key(account: &str, region: &str, target: &str) -> String {
    if target.starts_with("iam-user/") || target.starts_with("iam-role/") {
        format!("aws:{account}:{}", target.to_lowercase())
    } else if target.starts_with("AKIA") || target.starts_with("ASIA") {
        format!("aws:{account}:{target}")
    } else {
        format!("aws:{account}:{region}:{target}")
    }
}

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

/// What a lock of `owner` on `resource` says, stamped now.
pub fn holder_for(owner: &LockOwner, resource: &str) -> Result<LockHolder, LockError> {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    let acquired_at = OffsetDateTime::now_utc()
        .format(format)
        .map_err(|source| LockError::Clock { source })?;
    Ok(LockHolder {
        run_id: owner.run_id.clone(),
        host: owner.host.clone(),
        mode: owner.mode,
        resource: resource.to_owned(),
        acquired_at,
        parked: false,
    })
}

fn encode(holder: &LockHolder) -> Result<Vec<u8>, LockError> {
    let mut bytes = serde_json::to_vec(holder).map_err(|source| LockError::Encode {
        resource: holder.resource.clone(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// A file name beside `path` for writing aside.
fn aside(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(
        ".{name}.{}.{:016x}.tmp",
        std::process::id(),
        fastrand::u64(..)
    ))
}

fn write_aside(path: &Path, content: &[u8]) -> io::Result<PathBuf> {
    let tmp = aside(path);
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut file| file.write_all(content).and_then(|()| file.sync_data()));
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Creates `path` with `content` only if absent: written aside, then hard-linked into place
/// (which fails if the name exists), so no reader ever sees an empty or partial lock.
fn create_new(path: &Path, content: &[u8]) -> io::Result<()> {
    let tmp = write_aside(path, content)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    linked
}

/// Replaces `path` atomically: readers see the old lock or the new one, never a partial file.
fn replace(path: &Path, content: &[u8]) -> Result<(), LockError> {
    let tmp = write_aside(path, content).map_err(io_err("write lock file", path))?;
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
    use super::*;
    use crate::lease::RunLease;

    fn owner(run_id: &str, mode: Mode) -> LockOwner {
        LockOwner::new(run_id, mode)
    }

    /// M6: the same IAM user in two accounts is two resources; `Alice` and `alice` are one.
    #[test]
    fn keys_name_account_and_region_and_iam_is_case_insensitive() {
        let key = |account, region, target| resource_key(account, region, target);
        assert_ne!(
            key("111111111111", "us-east-1", "iam-user/alice"),
            key("222222222222", "us-east-1", "iam-user/alice")
        );
        assert_eq!(
            key("111111111111", "us-east-1", "iam-user/Alice"),
            key("111111111111", "eu-west-1", "iam-user/alice")
        );
        assert_ne!(
            key("111111111111", "us-east-1", "i-0123456789abcdef0"),
            key("111111111111", "us-west-2", "i-0123456789abcdef0")
        );
    }

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn lock_path(dir: &Path, resource: &str) -> PathBuf {
        dir.join("locks").join(lock_file_name(resource))
    }

    /// Writes a lock file as if `run_id` held `resource`.
    fn plant(dir: &Path, resource: &str, run_id: &str, mode: Mode, parked: bool) {
        let holder = LockHolder {
            parked,
            ..holder_for(&owner(run_id, mode), resource).unwrap()
        };
        fs::create_dir_all(dir.join("locks")).unwrap();
        fs::write(lock_path(dir, resource), encode(&holder).unwrap()).unwrap();
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
        let set = acquire(
            dir.path(),
            &ids(&["i-2", "i-1", "i-2"]),
            &owner("run-a", Mode::Live),
            TakeoverPolicy::default(),
        )
        .unwrap();
        assert_eq!(set.resources(), ["i-1", "i-2"]);
        let holder = holder_of(dir.path(), "i-1");
        assert_eq!(
            (holder.run_id.as_str(), holder.mode, holder.parked),
            ("run-a", Mode::Live, false)
        );
        set.release().unwrap();
        assert_eq!(lock_files(dir.path()), 0);
    }

    #[test]
    fn dropping_the_set_releases() {
        let dir = tempfile::tempdir().unwrap();
        drop(
            acquire(
                dir.path(),
                &ids(&["i-1"]),
                &owner("run-a", Mode::Live),
                TakeoverPolicy::default(),
            )
            .unwrap(),
        );
        assert_eq!(lock_files(dir.path()), 0);
    }

    #[test]
    fn a_live_holder_is_never_displaced_even_by_force() {
        let dir = tempfile::tempdir().unwrap();
        let _lease = RunLease::acquire(dir.path(), "run-a").unwrap();
        let _held = acquire(
            dir.path(),
            &ids(&["i-1"]),
            &owner("run-a", Mode::Live),
            TakeoverPolicy::default(),
        )
        .unwrap();
        let forced = TakeoverPolicy {
            resume_of: None,
            force: true,
        };
        let err = acquire(
            dir.path(),
            &ids(&["i-1"]),
            &owner("run-b", Mode::Live),
            forced,
        )
        .unwrap_err();
        assert!(
            matches!(&err, LockError::Held { holder_run_id, .. } if holder_run_id == "run-a"),
            "{err}"
        );
        assert!(err.is_held());
    }

    #[test]
    fn a_crashed_runs_lock_goes_to_its_resume_or_to_force() {
        let dir = tempfile::tempdir().unwrap();
        plant(dir.path(), "i-1", "run-old", Mode::Live, false);
        let err = acquire(
            dir.path(),
            &ids(&["i-1"]),
            &owner("run-new", Mode::Live),
            TakeoverPolicy::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, LockError::Stale { holder_run_id: Some(id), .. } if id == "run-old"),
            "{err}"
        );
        let resume = TakeoverPolicy {
            resume_of: Some("run-old".into()),
            force: false,
        };
        let set = acquire(
            dir.path(),
            &ids(&["i-1"]),
            &owner("run-old", Mode::Live),
            resume,
        )
        .unwrap();
        assert_eq!(
            set.taken_over()[0].previous.as_ref().unwrap().run_id,
            "run-old"
        );
        drop(set);
        plant(dir.path(), "i-1", "run-old", Mode::Live, false);
        let forced = TakeoverPolicy {
            resume_of: None,
            force: true,
        };
        let set = acquire(
            dir.path(),
            &ids(&["i-1"]),
            &owner("run-new", Mode::Live),
            forced,
        )
        .unwrap();
        assert_eq!(holder_of(dir.path(), "i-1").run_id, "run-new");
        drop(set);
    }

    #[test]
    fn a_parked_runs_locks_wait_for_its_resume() {
        let dir = tempfile::tempdir().unwrap();
        let set = acquire(
            dir.path(),
            &ids(&["i-1"]),
            &owner("run-a", Mode::Live),
            TakeoverPolicy::default(),
        )
        .unwrap();
        set.park().unwrap();
        assert!(holder_of(dir.path(), "i-1").parked, "kept, marked parked");
        let forced = TakeoverPolicy {
            resume_of: None,
            force: true,
        };
        let err = acquire(
            dir.path(),
            &ids(&["i-1"]),
            &owner("run-b", Mode::Live),
            forced,
        )
        .unwrap_err();
        assert!(
            matches!(&err, LockError::Parked { holder_run_id, .. } if holder_run_id == "run-a"),
            "{err}"
        );
        let resume = TakeoverPolicy {
            resume_of: Some("run-a".into()),
            force: false,
        };
        let set = acquire(
            dir.path(),
            &ids(&["i-1"]),
            &owner("run-a", Mode::Live),
            resume,
        )
        .unwrap();
        assert!(!holder_of(dir.path(), "i-1").parked);
        set.release().unwrap();
    }

    #[test]
    fn a_drill_never_blocks_a_live_run_and_never_displaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let _drill_lease = RunLease::acquire(dir.path(), "run-drill").unwrap();
        plant(dir.path(), "i-1", "run-drill", Mode::DryRun, false);
        let set = acquire(
            dir.path(),
            &ids(&["i-1"]),
            &owner("run-live", Mode::Live),
            TakeoverPolicy::default(),
        )
        .unwrap();
        assert_eq!(
            set.taken_over()[0].previous.as_ref().unwrap().mode,
            Mode::DryRun
        );
        drop(set);
        plant(dir.path(), "i-2", "run-crashed", Mode::Live, false);
        let forced = TakeoverPolicy {
            resume_of: None,
            force: true,
        };
        let err = acquire(
            dir.path(),
            &ids(&["i-2"]),
            &owner("run-drill-2", Mode::DryRun),
            forced,
        )
        .unwrap_err();
        assert!(matches!(err, LockError::Stale { .. }), "{err}");
    }

    #[test]
    fn a_garbled_lock_is_stale_from_an_unknown_run() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("locks")).unwrap();
        fs::write(lock_path(dir.path(), "i-1"), b"{not json").unwrap();
        let err = acquire(
            dir.path(),
            &ids(&["i-1"]),
            &owner("run-b", Mode::Live),
            TakeoverPolicy::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown run"), "{err}");
        let forced = TakeoverPolicy {
            resume_of: None,
            force: true,
        };
        let set = acquire(
            dir.path(),
            &ids(&["i-1"]),
            &owner("run-b", Mode::Live),
            forced,
        )
        .unwrap();
        assert_eq!(set.taken_over()[0].previous, None);
    }

    #[test]
    fn a_refusal_rolls_back_the_locks_already_taken() {
        let dir = tempfile::tempdir().unwrap();
        plant(dir.path(), "a", "run-old", Mode::Live, false);
        let before = fs::read(lock_path(dir.path(), "a")).unwrap();
        let _lease = RunLease::acquire(dir.path(), "run-live").unwrap();
        plant(dir.path(), "c", "run-live", Mode::Live, false);
        let forced = TakeoverPolicy {
            resume_of: None,
            force: true,
        };
        let err = acquire(
            dir.path(),
            &ids(&["a", "b", "c"]),
            &owner("run-b", Mode::Live),
            forced,
        )
        .unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        assert_eq!(
            fs::read(lock_path(dir.path(), "a")).unwrap(),
            before,
            "the taken-over lock is put back"
        );
        assert!(
            !lock_path(dir.path(), "b").exists(),
            "the new lock is removed"
        );
    }

    #[test]
    fn release_leaves_a_lock_that_is_no_longer_ours() {
        let dir = tempfile::tempdir().unwrap();
        let set = acquire(
            dir.path(),
            &ids(&["i-1"]),
            &owner("run-a", Mode::Live),
            TakeoverPolicy::default(),
        )
        .unwrap();
        plant(dir.path(), "i-1", "run-b", Mode::Live, false);
        set.release().unwrap();
        assert_eq!(holder_of(dir.path(), "i-1").run_id, "run-b");
    }

    #[test]
    fn lock_file_names_are_safe_and_distinct() {
        let a = lock_file_name("a/b");
        let b = lock_file_name("a_b");
        assert_ne!(a, b);
        assert!(a.starts_with("a_b-") && a.ends_with(".lock"), "{a}");
        let long = lock_file_name(&"x".repeat(400));
        assert!(long.len() < 200, "{}", long.len());
        assert!(!lock_file_name("../../etc/passwd").contains('/'));
    }
}
