//! The fence a worker's clients carry while it holds a run's lease in the shared table: every
//! HTTP attempt first asks whether the lease is still this worker's, and is refused before it
//! leaves the process when it is not. A lease counts as held only until the moment its last
//! renewal promised (measured on the monotonic clock, which runs on while a process is paused),
//! so a worker stopped past its lease and then continued makes no call at all — even before its
//! keeper has learnt that the lease was taken over.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Whether a lease is still held, shared by its keeper (which extends it) and the clients
/// (which check it).
#[derive(Debug, Clone)]
pub struct Fence {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    held_until: Mutex<Instant>,
    lost: AtomicBool,
}

impl Fence {
    /// A lease called `name`, held from now for `duration` — less a margin, so a call that
    /// passes the check still lands before another worker may take over.
    pub fn new(name: impl Into<String>, duration: Duration) -> Fence {
        Fence {
            inner: Arc::new(Inner {
                name: name.into(),
                held_until: Mutex::new(Instant::now() + usable(duration)),
                lost: AtomicBool::new(false),
            }),
        }
    }

    /// A renewal that started at `started` succeeded: held until `started + duration` (less
    /// the margin). The start, not the answer, so a slow answer never stretches the lease.
    pub fn extend(&self, started: Instant, duration: Duration) {
        if let Ok(mut until) = self.inner.held_until.lock() {
            *until = (*until).max(started + usable(duration));
        }
    }

    /// The lease is gone (a renewal refused, or given up): nothing more from this holder.
    pub fn lose(&self) {
        self.inner.lost.store(true, Ordering::SeqCst);
    }

    /// Whether the holder may still act.
    pub fn holds(&self) -> bool {
        !self.inner.lost.load(Ordering::SeqCst)
            && self
                .inner
                .held_until
                .lock()
                .is_ok_and(|until| Instant::now() < *until)
    }

    /// Why an action was refused, for errors and logs.
    pub fn refusal(&self) -> String {
        format!(
            "the lease {} is no longer this worker's (it expired or another worker took the run \
             over): it makes no further call",
            self.inner.name
        )
    }
}

/// A call must land well inside the lease: a fifth of it (at least a second) is kept back.
fn usable(duration: Duration) -> Duration {
    duration.saturating_sub((duration / 5).max(Duration::from_secs(1)))
}

/// The interceptor: refuses each attempt once the fence is down.
#[derive(Debug)]
pub struct FenceInterceptor(pub Fence);

impl Intercept for FenceInterceptor {
    fn name(&self) -> &'static str {
        "FirebreakLeaseFence"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.0.holds() {
            Ok(())
        } else {
            Err(self.0.refusal().into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_until_the_promised_moment_less_the_margin() {
        let fence = Fence::new("run", Duration::from_secs(10));
        assert!(fence.holds());
        let long_ago = Instant::now() - Duration::from_secs(20);
        let stale = Fence::new("run", Duration::from_secs(10));
        *stale.inner.held_until.lock().unwrap() = long_ago + Duration::from_secs(8);
        assert!(!stale.holds(), "past the promise");
        stale.extend(Instant::now(), Duration::from_secs(10));
        assert!(stale.holds(), "a renewal extends it");
        stale.lose();
        assert!(!stale.holds(), "a lost lease is never held again");
        assert!(stale.refusal().contains("no longer this worker's"));
    }

    #[test]
    fn a_renewal_never_shortens_the_lease() {
        let fence = Fence::new("run", Duration::from_secs(60));
        fence.extend(
            Instant::now() - Duration::from_secs(59),
            Duration::from_secs(10),
        );
        assert!(fence.holds());
    }
}
