//! The process-wide count of shielded changes in flight (see [`super::StepContext::shielded`]).
//! A second Ctrl-C stops firebreak at once — reads in flight are abandoned — except while an
//! interface is between its two isolation moves: then it waits until every such change has
//! finished, so no interface is left in the all-traffic group.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static IDLE: Notify = Notify::const_new();

/// Held while one shielded change runs.
pub struct Held(());

impl Held {
    pub fn take() -> Held {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        Held(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if IN_FLIGHT.fetch_sub(1, Ordering::SeqCst) == 1 {
            IDLE.notify_waiters();
        }
    }
}

/// How many shielded changes are in flight now.
pub fn in_flight() -> usize {
    IN_FLIGHT.load(Ordering::SeqCst)
}

/// Returns once no shielded change is in flight.
pub async fn idle() {
    loop {
        let notified = IDLE.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if in_flight() == 0 {
            return;
        }
        notified.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_waits_for_every_held_change() {
        let first = Held::take();
        let second = Held::take();
        let waiter = tokio::spawn(idle());
        tokio::task::yield_now().await;
        drop(first);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "one change is still in flight");
        drop(second);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("idle once both are done")
            .unwrap();
    }
}
