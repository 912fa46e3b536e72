//! Errors that point at a place in a source file, printed like a compiler's:
//!
//! ```text
//! runbooks/x.yaml:12:13: unknown action `ec2.isolate_instanc`
//!    |
//! 12 |     action: ec2.isolate_instanc
//!    |             ^^^^^^^^^^^^^^^^^^^
//!    = help: did you mean `ec2.isolate_instance`?
//! ```

use std::fmt::Write as _;

/// A position in a source file: 1-based line and column (in characters), and the length of
/// the offending text in characters (0 when unknown; rendered as a single marker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
    pub len: u32,
}

impl Pos {
    pub const UNKNOWN: Pos = Pos {
        line: 0,
        col: 0,
        len: 0,
    };

    pub fn new(line: u32, col: u32, len: u32) -> Pos {
        Pos { line, col, len }
    }

    /// The same place, `chars` characters further right on the same line.
    pub fn shifted(self, chars: u32, len: u32) -> Pos {
        Pos {
            line: self.line,
            col: self.col + chars,
            len,
        }
    }
}

/// One error found in a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub pos: Pos,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            pos,
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// `file:line:col: message`, then the source line with the offending part underlined.
    pub fn render(&self, file: &str, source: &str) -> String {
        let mut out = String::new();
        if self.pos.line == 0 {
            let _ = writeln!(out, "{file}: {}", self.message);
        } else {
            let _ = writeln!(
                out,
                "{file}:{}:{}: {}",
                self.pos.line, self.pos.col, self.message
            );
            if let Some(text) = source.lines().nth(self.pos.line as usize - 1) {
                let number = self.pos.line.to_string();
                let gutter = " ".repeat(number.len());
                let text = text.replace('\t', " ");
                let line_chars = text.chars().count() as u32;
                let start = self.pos.col.saturating_sub(1).min(line_chars);
                let width = self
                    .pos
                    .len
                    .max(1)
                    .min(line_chars.saturating_sub(start).max(1));
                let _ = writeln!(out, "{gutter} |");
                let _ = writeln!(out, "{number} | {text}");
                let _ = writeln!(
                    out,
                    "{gutter} | {}{}",
                    " ".repeat(start as usize),
                    "^".repeat(width as usize)
                );
            }
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "   = help: {help}");
        }
        out
    }
}

/// "did you mean `x`?" for a misspelt name, when one candidate is close enough.
pub fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::damerau_levenshtein(wrong, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| format!("did you mean `{candidate}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_line_and_marker() {
        let source = "version: 1\nname: x\nsteps: oops\n";
        let diagnostic = Diagnostic::new(Pos::new(3, 8, 4), "expected a list").with_help("fix it");
        let text = diagnostic.render("rb.yaml", source);
        assert_eq!(
            text,
            "rb.yaml:3:8: expected a list\n  |\n3 | steps: oops\n  |        ^^^^\n   = help: fix it\n"
        );
    }

    #[test]
    fn suggests_close_names_only() {
        let names = ["core.approve", "core.log"];
        assert_eq!(
            did_you_mean("core.aprove", names).as_deref(),
            Some("did you mean `core.approve`?")
        );
        assert_eq!(did_you_mean("ec2.snapshot_volumes", names), None);
    }
}
