//! The run as it happens, on stderr: the start and end lines every run prints, and — on a
//! terminal — a line per step with its outcome and duration and one live line (rewritten in
//! place) for waits and fan-outs. Piped, only the start, end and notice lines appear, so logs
//! stay clean.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::engine::{Observer, Progress, StepStatus};

pub struct TerminalObserver {
    /// Step lines and the live line: only on a terminal.
    live: bool,
    /// Whether a live line is on screen (and must be cleared before the next line).
    state: Mutex<bool>,
}

impl TerminalObserver {
    pub fn new(live: bool) -> TerminalObserver {
        TerminalObserver {
            live,
            state: Mutex::new(false),
        }
    }

    /// For stderr as it is: live when it is a terminal and `NO_COLOR`/`TERM=dumb` do not ask
    /// for plain output.
    pub fn for_stderr() -> TerminalObserver {
        use std::io::IsTerminal;
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        TerminalObserver::new(std::io::stderr().is_terminal() && !dumb)
    }

    fn line(&self, text: &str) {
        let mut shown = self.state.lock().expect("progress lock");
        let mut err = std::io::stderr().lock();
        if *shown {
            let _ = write!(err, "\r\x1b[K");
            *shown = false;
        }
        let _ = writeln!(err, "{text}");
    }

    fn live_line(&self, text: &str) {
        if !self.live {
            return;
        }
        let mut shown = self.state.lock().expect("progress lock");
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{text}");
        let _ = err.flush();
        *shown = true;
    }
}

impl Observer for TerminalObserver {
    fn on(&self, progress: &Progress<'_>) {
        match progress {
            Progress::RunStarted {
                run_id,
                mode,
                journal,
            } => self.line(&format!(
                "firebreak: run {run_id} started ({}), journal {journal}",
                mode.as_str()
            )),
            Progress::RunResumed {
                run_id,
                mode,
                journal,
            } => self.line(&format!(
                "firebreak: resuming run {run_id} ({}), journal {journal}",
                mode.as_str()
            )),
            Progress::Decided { record } => self.line(&format!(
                "firebreak: step `{}` decided: {}",
                record.step,
                record.describe()
            )),
            Progress::AlreadySucceeded { run_id } => self.line(&format!(
                "firebreak: run {run_id} already succeeded; nothing to resume"
            )),
            Progress::StepStarted {
                step,
                action,
                items,
            } => match items {
                Some(n) => self.live_line(&format!("  ▶ {step} ({action}): 0/{n} items")),
                None => self.live_line(&format!("  ▶ {step} ({action})")),
            },
            Progress::StepReplayed { step, status } if self.live => {
                self.line(&format!(
                    "  ↺ {step} {} (from the journal)",
                    status_word(*status)
                ));
            }
            Progress::StepFinished {
                step,
                status,
                elapsed,
                ..
            } if self.live => {
                self.line(&format!(
                    "  {} {step} {} in {}",
                    status_mark(*status),
                    status_word(*status),
                    seconds(*elapsed)
                ));
            }
            Progress::ItemFinished {
                step,
                done,
                total,
                failed,
            } => {
                let failed = if *failed > 0 {
                    format!(", {failed} failed")
                } else {
                    String::new()
                };
                self.live_line(&format!("  ▶ {step}: {done}/{total} items{failed}"));
            }
            Progress::Waiting { step, item, text } => {
                let unit = match item {
                    Some(i) => format!("{step}[{i}]"),
                    None => (*step).to_owned(),
                };
                self.live_line(&format!("  … {unit}: {text}"));
            }
            Progress::Notice { text } => self.line(&format!("firebreak: {text}")),
            Progress::Refused { reason } => {
                self.line(&format!("firebreak: refused before any change: {reason}"))
            }
            Progress::RunFinished {
                run_id,
                status,
                journal,
            } => match status {
                crate::engine::RunStatus::Interrupted => self.line(&format!(
                    "firebreak: run {run_id} interrupted; carry on with `firebreak resume {run_id}`"
                )),
                crate::engine::RunStatus::AwaitingApproval => self.line(&format!(
                    "firebreak: run {run_id} is waiting for a person's decision; what is done \
                     stays done and its resources stay locked. Decide at a terminal with \
                     `firebreak resume {run_id}` (asked there), or `firebreak resume {run_id} --yes`; \
                     journal {journal}"
                )),
                other => self.line(&format!(
                    "firebreak: run {run_id} {}, journal {journal}",
                    other.as_str()
                )),
            },
            _ => {}
        }
    }
}

fn status_word(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Succeeded => "succeeded",
        StepStatus::Failed => "failed",
        StepStatus::Skipped => "skipped",
    }
}

fn status_mark(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Succeeded => "✔",
        StepStatus::Failed => "✘",
        StepStatus::Skipped => "⤼",
    }
}

fn seconds(elapsed: Duration) -> String {
    if elapsed < Duration::from_secs(1) {
        format!("{} ms", elapsed.as_millis())
    } else {
        format!("{:.1} s", elapsed.as_secs_f64())
    }
}
