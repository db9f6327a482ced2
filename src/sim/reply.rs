//! What one simulated call gives back: its output, or nothing ever.
//!
//! Owns the simulator's reply types. They are the simulator's own, so the
//! simulator never depends on the wrapper's output or failure types; a
//! test that needs bottle's `Smolvm` trait wraps [`Engine::call`]
//! (super::Engine::call) itself.

use std::time::Duration;

use super::stream::GuestStream;

/// What a finished call printed and returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl SimOutput {
    /// Exit 0 with `stdout`.
    pub fn ok(stdout: impl Into<String>) -> Self {
        SimOutput {
            code: 0,
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    /// Exit 1 with `Error: MSG` on stderr, as smolvm fails a command.
    pub fn error(msg: impl std::fmt::Display) -> Self {
        SimOutput {
            code: 1,
            stdout: String::new(),
            stderr: format!("Error: {msg}\n"),
        }
    }

    /// This output with `line` printed on stderr before it.
    pub fn after_stderr(mut self, line: &str) -> Self {
        self.stderr.insert_str(0, line);
        self
    }

    /// This output with `line` printed on stdout before it.
    pub fn after_stdout(mut self, line: &str) -> Self {
        self.stdout.insert_str(0, line);
        self
    }
}

/// What a call does: return, or never return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Done(SimOutput),
    /// An injected hang (`SMOLVM_SIM_HANG`): the binary sleeps forever; an
    /// in-process caller decides what a hang means to it.
    Hang,
}

/// What a command decided under the world lock; waiting happens after the
/// lock is released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    Done(SimOutput),
    Hang,
    /// A guest command killed by `exec --timeout` after this long: exit 124.
    TimedOut(Duration),
    /// This output, with the stream written on stdout after its stdout.
    Streamed(SimOutput, GuestStream),
}

impl From<SimOutput> for Outcome {
    fn from(o: SimOutput) -> Self {
        Outcome::Done(o)
    }
}
