//! Fault injection for the crash-matrix tests: with the `fault-injection` feature, the process
//! aborts (no cleanup, like a power cut) when it reaches the point named in
//! `FIREBREAK_FAULT`, or stops itself (SIGSTOP, as a paused VM or a stalled container is
//! stopped) at the point named in `FIREBREAK_PAUSE`, once, so a test can kill it there or let
//! another worker take its run before continuing it. Without the feature this compiles to
//! nothing.
//!
//! Points: `after-run-started`, `after-step-started:<step>`, `before-step-finished:<step>`
//! (the action returned, its outcome not yet journaled), `after-step-finished:<step>`.

#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
    if std::env::var("FIREBREAK_FAULT").is_ok_and(|wanted| wanted == name) {
        tracing::error!("fault injected at {name}");
        std::process::abort();
    }
    static PAUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if std::env::var("FIREBREAK_PAUSE").is_ok_and(|wanted| wanted == name)
        && !PAUSED.swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        tracing::error!("pausing at {name}");
        // SAFETY: raise(3) on this process with a signal that only stops it.
        unsafe { libc::raise(libc::SIGSTOP) };
    }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_name: &str) {}
