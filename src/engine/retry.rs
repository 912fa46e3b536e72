//! Step-level retries: exponential backoff with jitter, on top of the SDK's own retries.

use std::time::Duration;

pub const BASE: Duration = Duration::from_secs(1);
pub const CAP: Duration = Duration::from_secs(20);

/// The wait before attempt `attempt + 1`: half of `BASE * 2^(attempt-1)` (capped) plus a random
/// part of the other half ("equal jitter"), so concurrent branches do not retry in lockstep.
pub fn backoff(attempt: u32) -> Duration {
    crate::aws::backoff::equal_jitter(attempt, BASE, CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_is_capped() {
        for attempt in 1..10 {
            let d = backoff(attempt);
            let full = BASE.saturating_mul(1 << (attempt - 1)).min(CAP);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert!(backoff(30) <= CAP);
    }
}
