//! Fault injection for the crash-matrix tests: with the `fault-injection` feature, the process
//! aborts (no cleanup, like a power cut) when it reaches the point named in
//! `FIREBREAK_FAULT`. Without the feature this compiles to nothing.
//!
//! Points: `after-run-started`, `after-step-started:<step>`, `before-step-finished:<step>`
//! (the action returned, its outcome not yet journaled), `after-step-finished:<step>`.

#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
    if std::env::var("FIREBREAK_FAULT").is_ok_and(|wanted| wanted == name) {
        tracing::error!("fault injected at {name}");
        std::process::abort();
    }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_name: &str) {}
