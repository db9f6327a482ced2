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
