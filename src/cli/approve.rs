//! Asking the operator at the terminal (`core.approve`): the question on stderr, the answer on
//! stdin, one question at a time even when fan-out items ask together.

use std::future::Future;
use std::io::{BufRead, IsTerminal, Write};
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::actions::{ApprovalRequest, Decision};
use crate::engine::{Approvals, Approver};

/// What the command line implies: `--yes`, else a terminal to ask on, else nobody (the run
/// parks at its approvals).
pub fn from_flags(yes: bool) -> Approvals {
    if yes {
        Approvals::Yes
    } else if std::io::stdin().is_terminal() {
        Approvals::Person(Arc::new(TerminalApprover::default()))
    } else {
        Approvals::Nobody
    }
}

#[derive(Default)]
pub struct TerminalApprover {
    /// One question at a time.
    turn: Mutex<()>,
}

impl Approver for TerminalApprover {
    fn ask<'a>(
        &'a self,
        request: &'a ApprovalRequest,
    ) -> Pin<Box<dyn Future<Output = Decision> + Send + 'a>> {
        Box::pin(async move {
            let _turn = self.turn.lock().await;
            let question = format!(
                "firebreak run {} — step `{}` asks for approval:\n{} [y/N] ",
                request.run_id,
                request.step_id,
                printable(&request.prompt)
            );
            let answer = tokio::task::spawn_blocking(move || {
                let mut stderr = std::io::stderr();
                let _ = write!(stderr, "\n{question}");
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
                parked: false,
                by: "operator".into(),
                expires_at: None,
            }
        })
    }
}

/// The prompt without control characters, so text from an event or an AWS error cannot move
/// the cursor or change the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\n' { '?' } else { c })
        .collect()
}
