//! Asking the user before a machine whose apply completed is replaced.
//!
//! Asks only when both stdin and stderr are terminals; otherwise the
//! answer is no, and the apply refuses (exit 3) unless `--replace` was
//! given. One question at a time, so `-j N` workers never interleave them;
//! while it waits, other output waits too (the question stays the last
//! line), and what was typed before it was shown is discarded.
//! The default answer is no, and a signal while waiting answers no at once
//! (the run then exits with 128 + the signal, having changed nothing).

use std::io::IsTerminal;
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
        let Some(_held) = term::hold() else {
            return false;
        };
        discard_typed_ahead();
        term::err_held(&term::escape_controls(&format!("{machine}: {what} [y/N] ")));
        if !self.input_ready() {
            term::err_held("\n");
            return false;
        }
        yes(&read_line())
    }
}

/// One line from stdin, read byte by byte from the descriptor, so nothing
/// past it is buffered away from the next question's flush and poll.
fn read_line() -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while let Ok(1) = rustix::io::read(std::io::stdin(), &mut byte) {
        match byte[0] {
            b'\n' => break,
            b => line.push(b),
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Drop what was typed before the question was shown, so no answer meant
/// for an earlier question (or typed ahead) consents to this one.
fn discard_typed_ahead() {
    let _ = rustix::termios::tcflush(std::io::stdin(), rustix::termios::QueueSelector::IFlush);
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
