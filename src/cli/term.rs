//! Where everything bottle prints goes: stdout and stderr, written so that
//! a closed pipe never panics (`bottle status --json | head -1`). Further
//! output is dropped; the command finishes what it is doing (an apply or a
//! teardown) and exits with its normal code.

use std::io::Write;
use std::sync::{Mutex, MutexGuard};

/// Held while a question waits for its answer (see `prompt`): other
/// threads' output waits too, so the question stays the last line.
static QUESTION: Mutex<()> = Mutex::new(());

/// Hold all output until the guard drops; write meanwhile with
/// [`err_held`]. Never call [`out`] or [`err`] while holding it.
pub fn hold() -> Option<MutexGuard<'static, ()>> {
    QUESTION.lock().ok()
}

/// Write `text` to stdout, ignoring a closed pipe.
pub fn out(text: &str) {
    let _turn = QUESTION.lock();
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes()).and_then(|()| o.flush());
}

/// Write `text` to stderr, ignoring a closed pipe.
pub fn err(text: &str) {
    let _turn = QUESTION.lock();
    err_held(text);
}

/// [`err`] for the holder of [`hold`].
pub fn err_held(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `text` with every control character but newline and tab shown escaped
/// (`\x1b`), so that nothing a guest or smolvm prints can drive the
/// terminal.
pub fn escape_controls(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => s.push(c),
            c if c.is_control() => {
                let n = u32::from(c);
                if n <= 0xff {
                    s.push_str(&format!("\\x{n:02x}"));
                } else {
                    s.push_str(&format!("\\u{{{n:x}}}"));
                }
            }
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_but_lines_stay() {
        assert_eq!(
            escape_controls("a\x1b[2Jb\n\tc\x07\r\u{9b}"),
            "a\\x1b[2Jb\n\tc\\x07\\x0d\\x9b"
        );
        assert_eq!(escape_controls("plain é"), "plain é");
    }
}
