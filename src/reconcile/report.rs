//! Where progress lines go. The CLI prints them (masked, escaped); tests
//! collect them. Must not print anything itself.

use std::sync::Mutex;

/// Receives one line per step, prefixed by the machine it is about.
pub trait Report: Sync {
    fn line(&self, machine: &str, text: &str);
}

/// Keeps lines in memory.
#[derive(Debug, Default)]
pub struct Collect(pub Mutex<Vec<String>>);

impl Report for Collect {
    fn line(&self, machine: &str, text: &str) {
        if let Ok(mut v) = self.0.lock() {
            v.push(format!("{machine}: {text}"));
        }
    }
}

/// Asks the user before an apply destroys a machine whose apply completed.
/// The CLI asks on a terminal; without one, and in tests, the answer is no.
pub trait Confirm: Sync {
    /// Whether machine `machine` may be replaced; `what` says what changed
    /// and what is lost.
    fn replace(&self, machine: &str, what: &str) -> bool;
}

/// Never agrees: replacement needs `--replace`.
#[derive(Debug, Default)]
pub struct Refuse;

impl Confirm for Refuse {
    fn replace(&self, _: &str, _: &str) -> bool {
        false
    }
}
