//! The thin wrapper over the `smolvm` command line.
//!
//! Owns the contract with smolvm (`../shared/smolvm-cli.md`): every argv
//! bottle runs or shows (`argv`, pure, the only place one is built), what a
//! call is (`call`), whether a command line fits the kernel's argument
//! limit (`arg_limit`), which versions exist and what each enforces
//! (`version`), what smolvm's output means (`parse`), what is kept in
//! memory of a call's output (`capture`), and running calls and reading
//! their results (`client`). All process I/O sits behind the
//! [`Smolvm`] trait; `process` is its real implementation. Takes the
//! spec's validated value types as inputs, but knows nothing of specs,
//! records, plans or the lifecycle, and nothing of the simulator.

pub mod arg_limit;
pub mod argv;
pub mod call;
pub mod capture;
mod client;
mod error;
pub mod parse;
pub mod process;
pub mod ready;
pub mod version;

use std::sync::Arc;
use std::time::Duration;

pub use argv::{Cli, GuestTarget};
pub use call::{Argv, Call, Kind, Op};
pub use client::{Client, ExecResult, is_available, locate};
pub use error::{SmolvmError, one_line};
pub use parse::{Known, MachineState, MachineStatus};
pub use ready::{Clock, Readiness, SystemClock};
pub use version::{Dialect, Version};

/// What one smolvm process printed and how it ended.
///
/// Never a whole stream of unbounded size: of an observation call
/// (`--version`, `status`, `ls`, whose answer is parsed whole) each stream
/// up to [`capture::WHOLE_CAP`], past which the call fails with
/// [`RunFailure::Overflow`]; of any other call the last
/// [`capture::TAIL_BYTES`] of each stream, after a `[bottle: N earlier
/// bytes not kept]` line when cut. Whoever needs all of it passes a
/// [`Sink`] to [`Smolvm::run_logged`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Which stream of a process a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Where a call's output is copied as it arrives, besides the bounded part
/// kept in [`Output`]: an exec step's log. Called from the threads that
/// drain the pipes, so chunks of the two streams arrive interleaved.
pub trait Sink: Send + Sync {
    fn write(&self, stream: Stream, bytes: &[u8]);
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
    #[error(
        "it printed more than {} MiB on {}, more than any answer bottle reads",
        cap / (1024 * 1024),
        match stream { Stream::Stdout => "stdout", Stream::Stderr => "stderr" }
    )]
    Overflow { stream: Stream, cap: usize },
}

/// Runs one smolvm invocation (`call.argv[0]` is the program).
/// Implementations must enforce `limit` (killing what they started), must
/// refuse a [`Kind::Mutate`] call once bottle was asked to stop, and must
/// not interpret the exit code: that is the wrapper's job.
pub trait Smolvm {
    fn run(&self, call: &Call, limit: Duration) -> Result<Output, RunFailure>;

    /// [`Smolvm::run`], also giving `sink` all the process prints. The
    /// real implementation streams it as it arrives; this default, for
    /// in-process fakes, hands over [`Output`] once the call ended.
    fn run_logged(
        &self,
        call: &Call,
        limit: Duration,
        sink: &Arc<dyn Sink>,
    ) -> Result<Output, RunFailure> {
        let out = self.run(call, limit)?;
        sink.write(Stream::Stdout, out.stdout.as_bytes());
        sink.write(Stream::Stderr, out.stderr.as_bytes());
        Ok(out)
    }

    /// The signal with which the user asked bottle to stop, if any.
    /// Observation and teardown calls still run after it; loops must stop.
    fn interrupted(&self) -> Option<i32> {
        None
    }
}

impl<S: Smolvm + ?Sized> Smolvm for &S {
    fn run(&self, call: &Call, limit: Duration) -> Result<Output, RunFailure> {
        (**self).run(call, limit)
    }
    fn run_logged(
        &self,
        call: &Call,
        limit: Duration,
        sink: &Arc<dyn Sink>,
    ) -> Result<Output, RunFailure> {
        (**self).run_logged(call, limit, sink)
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
