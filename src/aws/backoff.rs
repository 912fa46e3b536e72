//! How long to wait before trying an AWS call again: exponential with "equal jitter", so
//! concurrent branches do not retry in lockstep. Steps, interlocks and the isolation's own moves
//! use it with their own base and cap.

use std::time::Duration;

/// The wait before attempt `attempt + 1`: half of `base * 2^(attempt-1)` (capped at `cap`) plus
/// a random part of the other half.
pub fn equal_jitter(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exponential = base
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(cap);
    let half = exponential / 2;
    half + half.mul_f64(fastrand::f64())
}
