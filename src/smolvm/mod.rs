//! The thin wrapper over the `smolvm` command line.
//!
//! Owns the contract with smolvm (`../shared/smolvm-cli.md`): which argv
//! each subcommand takes in each dialect (`argv`, pure), which versions
//! exist (`version`), what smolvm's output means (`parse`), and the typed
//! functions bottle calls (`client`, one per subcommand). All process I/O
//! sits behind the [`Smolvm`] trait; `process` is its real implementation.
//! This module knows nothing of specs, records or the lifecycle.

pub mod argv;
mod client;
mod error;
pub mod parse;
pub mod process;
pub mod ready;
pub mod version;

use std::time::Duration;

pub use client::{Client, CreateArgs, ExecArgs, ExecResult, is_available, locate};
pub(crate) use error::stderr_tail;
pub use error::{Argv, SmolvmError};
pub use parse::{Known, MachineState, MachineStatus};
pub use ready::{Clock, Readiness, SystemClock};
pub use version::{Dialect, Version};

/// What one smolvm process printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Why a smolvm process gave no [`Output`].
#[derive(Debug, thiserror::Error)]
pub enum RunFailure {
    #[error("could not start it")]
    Spawn(#[source] std::io::Error),
    #[error("it did not finish within {}", humantime::format_duration(*.0))]
    TimedOut(Duration),
    #[error("it was killed by signal {0}")]
    Signalled(i32),
    #[error("bottle was interrupted by signal {0}")]
    Interrupted(i32),
}

/// Runs one smolvm invocation. `argv[0]` is the program. Implementations
/// must enforce `limit` (killing what they started) and must not interpret
/// the exit code: that is the wrapper's job.
pub trait Smolvm {
    fn run(&self, argv: &[String], limit: Duration) -> Result<Output, RunFailure>;

    /// The signal with which the user asked bottle to stop, if any. Calls
    /// still run after it (a teardown needs them); loops must stop.
    fn interrupted(&self) -> Option<i32> {
        None
    }
}

impl<S: Smolvm + ?Sized> Smolvm for &S {
    fn run(&self, argv: &[String], limit: Duration) -> Result<Output, RunFailure> {
        (**self).run(argv, limit)
    }
    fn interrupted(&self) -> Option<i32> {
        (**self).interrupted()
    }
}

/// How long each kind of smolvm call may take before it is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub version: Duration,
    pub pack: Duration,
    pub create: Duration,
    pub start: Duration,
    pub stop: Duration,
    pub delete: Duration,
    pub cp: Duration,
    pub observe: Duration,
    /// For exec steps without a timeout of their own.
    pub exec: Duration,
    /// For one readiness probe (never longer than what is left of the
    /// readiness deadline, but at least 2 s of it).
    pub probe: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        let s = Duration::from_secs;
        Limits {
            version: s(15),
            pack: s(30 * 60),
            create: s(120),
            start: s(120),
            stop: s(60),
            delete: s(60),
            cp: s(300),
            observe: s(30),
            exec: s(3600),
            probe: s(10),
        }
    }
}

impl Limits {
    /// Every limit set to `d` (the `--step-timeout` override).
    pub fn all(d: Duration) -> Self {
        Limits {
            version: d,
            pack: d,
            create: d,
            start: d,
            stop: d,
            delete: d,
            cp: d,
            observe: d,
            exec: d,
            probe: d,
        }
    }
}
