//! Asking the user before a machine whose apply completed is replaced.
//!
//! Asks only when both stdin and stderr are terminals; otherwise the
//! answer is no, and the apply refuses (exit 3) unless `--replace` was
//! given. One question at a time, so `-j N` workers never interleave them.
//! The default answer is no, and a signal while waiting answers no at once
//! (the run then exits with 128 + the signal, having changed nothing).

use std::io::{BufRead, IsTerminal};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::reconcile::Confirm;
use crate::smolvm::process::Interrupt;

use super::term;

/// The terminal prompt.
#[derive(Debug)]
pub struct Prompt {
    one_at_a_time: Mutex<()>,
    interrupt: Arc<Interrupt>,
}

impl Prompt {
    pub fn new(interrupt: Arc<Interrupt>) -> Self {
        Prompt {
            one_at_a_time: Mutex::new(()),
            interrupt,
        }
    }

    /// Wait until stdin has a line to read or a signal arrived; whether
    /// there is input.
    fn input_ready(&self) -> bool {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let stdin = std::io::stdin();
        let tick = Timespec::try_from(Duration::from_millis(100)).ok();
        loop {
            if self.interrupt.signal().is_some() {
                return false;
            }
            let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
            match poll(&mut fds, tick.as_ref()) {
                Ok(0) | Err(rustix::io::Errno::INTR) => continue,
                Ok(_) => return self.interrupt.signal().is_none(),
                Err(_) => return false,
            }
        }
    }
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
        if !self.input_ready() {
            term::err("\n");
            return false;
        }
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
