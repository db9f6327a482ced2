//! Asking the user before a machine whose apply completed is replaced.
//!
//! Asks only when both stdin and stderr are terminals; otherwise the
//! answer is no, and the apply refuses (exit 3) unless `--replace` was
//! given. One question at a time, so `-j N` workers never interleave them.
//! The default answer is no.

use std::io::{BufRead, IsTerminal};
use std::sync::Mutex;

use crate::reconcile::Confirm;

use super::term;

/// The terminal prompt.
#[derive(Debug, Default)]
pub struct Prompt {
    one_at_a_time: Mutex<()>,
}

impl Confirm for Prompt {
    fn replace(&self, machine: &str, what: &str) -> bool {
        if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
            return false;
        }
        let Ok(_turn) = self.one_at_a_time.lock() else {
            return false;
        };
        term::err(&term::escape_controls(&format!("{machine}: {what} [y/N] ")));
        let mut answer = String::new();
        match std::io::stdin().lock().read_line(&mut answer) {
            Ok(_) => yes(&answer),
            Err(_) => false,
        }
    }
}

/// Whether an answer agrees: `y` or `yes`, in any case.
fn yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_y_or_yes_agrees() {
        for a in ["y\n", "Y", " yes \n", "YES"] {
            assert!(super::yes(a), "{a:?}");
        }
        for a in ["", "\n", "n", "no", "yy", "sure", "y es"] {
            assert!(!super::yes(a), "{a:?}");
        }
    }
}
