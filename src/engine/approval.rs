//! Operator approvals (`core.approve`). On a terminal the operator is asked; `--yes` approves
//! and says so; with neither, the approval is denied and the run refused. In a drill the
//! decision point is recorded, not asked.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use tokio::sync::Mutex;

#[derive(Clone)]
pub enum Approvals {
    /// `--yes`: approved by flag.
    Yes,
    /// Ask on the terminal (stdin and stderr).
    Interactive(Arc<Mutex<()>>),
    /// No terminal and no `--yes`: denied.
    Deny,
    /// A drill: recorded as a decision point, treated as approved so the drill walks on.
    Drill,
}

impl Approvals {
    /// What the command line implies: `--yes`, else a terminal, else deny.
    pub fn from_flags(yes: bool) -> Approvals {
        if yes {
            Approvals::Yes
        } else if std::io::stdin().is_terminal() {
            Approvals::Interactive(Arc::new(Mutex::new(())))
        } else {
            Approvals::Deny
        }
    }
}

/// The outcome of one approval.
#[derive(Debug, Clone)]
pub struct Decision {
    pub approved: bool,
    /// Denied for lack of anyone to ask: the run is refused.
    pub refused: bool,
    /// Who or what decided: `flag (--yes)`, `operator`, `no terminal and no --yes`, `drill`.
    pub by: String,
}

/// Asks (or decides) one approval. `context` is shown above the question.
pub async fn decide(approvals: &Approvals, prompt: &str, context: &str) -> Decision {
    match approvals {
        Approvals::Yes => Decision {
            approved: true,
            refused: false,
            by: "flag (--yes)".into(),
        },
        Approvals::Drill => Decision {
            approved: true,
            refused: false,
            by: "drill (decision point recorded, not asked)".into(),
        },
        Approvals::Deny => Decision {
            approved: false,
            refused: true,
            by: "no terminal and no --yes".into(),
        },
        Approvals::Interactive(lock) => {
            // One question at a time, even from concurrent fan-out items.
            let _turn = lock.lock().await;
            let question = format!("{context}\n{prompt} [y/N] ");
            let answer = tokio::task::spawn_blocking(move || {
                let mut stderr = std::io::stderr();
                let _ = write!(stderr, "{question}");
                let _ = stderr.flush();
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line).map(|_| line)
            })
            .await;
            let approved = matches!(
                answer,
                Ok(Ok(ref line)) if matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
            );
            Decision {
                approved,
                refused: false,
                by: "operator".into(),
            }
        }
    }
}
