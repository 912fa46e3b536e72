//! A background `firebreak` process a test started (a `serve` worker): killed when the test
//! ends however it ends, so a failing test cannot leave a worker polling moto (or stopped,
//! holding a lease) under the tests that follow; on a failure its log is shown.

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::process::Child;

pub struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    pub fn new(child: Child, log: impl Into<PathBuf>) -> Worker {
        Worker {
            child,
            log: log.into(),
        }
    }
}

impl Deref for Worker {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl DerefMut for Worker {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SIGKILL ends a stopped process too.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!(
                "--- worker {} log {} ---\n{}",
                self.child.id(),
                self.log.display(),
                telling_lines(&log)
            );
        }
    }
}

/// What a failure needs from a worker's log: every line but the periodic health lines and the
/// steps that went well (a tail of those hid the one line saying why a message was kept), then
/// the last health line; at most the last 200 of those.
fn telling_lines(log: &str) -> String {
    const HEALTH: &str = "\"log\":\"health\"";
    let routine = |l: &&str| {
        l.contains(HEALTH)
            || (l.contains("\"log\":\"step_finished\"") && !l.contains("\"status\":\"failed\""))
    };
    let mut lines: Vec<&str> = log.lines().filter(|l| !routine(l)).collect();
    if let Some(last) = log.lines().rev().find(|l| l.contains(HEALTH)) {
        lines.push(last);
    }
    lines[lines.len().saturating_sub(200)..].join("\n")
}
