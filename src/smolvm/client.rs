//! The typed smolvm wrapper: runs [`Call`]s built by `argv` and reads their
//! results.
//!
//! Each call runs through the [`Smolvm`] trait with the time limit of its
//! [`Op`], and its result becomes a value or a [`SmolvmError`]. A non-zero
//! exit is an error for every call but `exec`, whose exit code is the
//! guest command's. Builds no argv of its own: every command line comes
//! from [`Cli`]. Must not know whether it talks to smolvm or a simulator.
//!
//! Reading results: an observation's answer (`--version`, `status --json`,
//! `ls --json`) arrives whole, up to `capture::WHOLE_CAP` (8 MiB; more
//! fails the call), and is parsed; of every other call only the last
//! 64 KiB of each stream is kept, enough for smolvm's `Error:` line and a
//! guest command's last words. An exec step's full output goes to a
//! [`Sink`] ([`Client::exec_logged`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::argv::Cli;
use super::call::{Argv, Call, Op};
use super::error::{SmolvmError, one_line};
use super::parse::{self, Known, MachineState, MachineStatus};
use super::ready::{self, Clock, Readiness};
use super::version::{Dialect, Version};
use super::{Limits, Output, RunFailure, Sink, Smolvm};
use crate::spec::MachineName;

/// What a guest command did (of its output, what [`Output`] keeps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecResult {
    pub argv: Argv,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A connection to one smolvm binary of a known version.
pub struct Client<S> {
    smolvm: S,
    cli: Cli,
    version: Version,
    banner: String,
    limits: Limits,
}

/// Whether `program` can be found (a path, or a name on `PATH`).
pub fn is_available(program: &str) -> bool {
    which::which(program).is_ok()
}

/// Find the smolvm binary: `explicit` (from `--smolvm` or `$BOTTLE_SMOLVM`)
/// if given, else `smolvm` on `PATH`.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, SmolvmError> {
    let wanted = explicit.unwrap_or(Path::new("smolvm"));
    which::which(wanted).map_err(|e| SmolvmError::Missing {
        detail: format!("{} ({e})", wanted.display()),
    })
}

impl<S: Smolvm> Client<S> {
    /// Ask `program --version` and pick the dialect; refuse unknown versions.
    pub fn connect(smolvm: S, program: &str, limits: Limits) -> Result<Self, SmolvmError> {
        let call = Cli::new(program, Dialect::NameFlag).version();
        let out = run_checked(&smolvm, &call, limits.version)?;
        let version = Version::from_output(&out.stdout).ok_or_else(|| SmolvmError::BadVersion {
            argv: Argv::from(&call),
            stdout: out.stdout.clone(),
        })?;
        let dialect = version.dialect().ok_or_else(|| SmolvmError::Unsupported {
            version: version.clone(),
        })?;
        Ok(Client {
            smolvm,
            cli: Cli::new(program, dialect),
            version,
            banner: out.stdout,
            limits,
        })
    }

    /// A client for a version already known (no `--version` call).
    pub fn with_version(smolvm: S, program: &str, version: Version, limits: Limits) -> Self {
        let dialect = version.dialect().unwrap_or(Dialect::NameFlag);
        Client {
            smolvm,
            cli: Cli::new(program, dialect),
            banner: format!("smolvm {version}\n"),
            version,
            limits,
        }
    }

    /// The command line of this smolvm: every call bottle makes or shows
    /// is built by it.
    pub fn cli(&self) -> &Cli {
        &self.cli
    }
    pub fn version(&self) -> &Version {
        &self.version
    }
    /// What `--version` printed.
    pub fn banner(&self) -> &str {
        &self.banner
    }

    /// The signal with which the user asked bottle to stop, if any.
    pub fn interrupted(&self) -> Option<i32> {
        self.smolvm.interrupted()
    }

    /// How long `call` may take.
    pub fn limit(&self, call: &Call) -> Duration {
        let l = &self.limits;
        match call.op {
            Op::Version => l.version,
            Op::Pack => l.pack,
            Op::Create => l.create,
            Op::Start => l.start,
            Op::Stop => l.stop,
            Op::Delete => l.delete,
            Op::Cp => l.cp,
            Op::Status | Op::Ls => l.observe,
            Op::Probe => l.probe,
            Op::Exec { timeout: None } => l.exec,
            Op::Exec { timeout: Some(t) } => l.exec.min(t + Duration::from_secs(30)),
        }
    }

    /// Run `call`; a non-zero exit is an error.
    pub fn run(&self, call: &Call) -> Result<Output, SmolvmError> {
        run_checked(&self.smolvm, call, self.limit(call))
    }

    /// Run a guest command: its exit code is a result.
    pub fn exec(&self, call: &Call) -> Result<ExecResult, SmolvmError> {
        self.exec_within(call, self.limit(call))
    }

    /// [`Client::exec`], also giving `sink` all the command prints as it
    /// arrives (the result keeps only a bounded tail of each stream).
    pub fn exec_logged(
        &self,
        call: &Call,
        sink: &Arc<dyn Sink>,
    ) -> Result<ExecResult, SmolvmError> {
        let out = self
            .smolvm
            .run_logged(call, self.limit(call), sink)
            .map_err(|cause| SmolvmError::Run {
                argv: Argv::from(call),
                cause,
            })?;
        Ok(exec_result(call, out))
    }

    fn exec_within(&self, call: &Call, limit: Duration) -> Result<ExecResult, SmolvmError> {
        let out = run(&self.smolvm, call, limit)?;
        Ok(exec_result(call, out))
    }

    /// `machine status --name N --json`; `None` when there is no such machine.
    pub fn status(&self, name: &MachineName) -> Result<Option<MachineStatus>, SmolvmError> {
        let call = self.cli.machine_status(name);
        match self.run(&call) {
            Ok(out) => parse::status(&out.stdout)
                .map(Some)
                .map_err(|cause| SmolvmError::BadJson {
                    argv: Argv::from(&call),
                    cause,
                }),
            Err(e) if e.known() == Known::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `machine ls --json`
    pub fn ls(&self) -> Result<Vec<MachineStatus>, SmolvmError> {
        let call = self.cli.machine_ls();
        let out = self.run(&call)?;
        parse::list(&out.stdout).map_err(|cause| SmolvmError::BadJson {
            argv: Argv::from(&call),
            cause,
        })
    }

    /// During readiness: fail at once if the machine is gone or no longer
    /// running, rather than probing until the deadline. A failed `status`
    /// proves nothing, so probing goes on.
    fn still_alive(&self, name: &MachineName, probes: u32) -> Result<(), SmolvmError> {
        let state = match self.status(name) {
            Err(_) => return Ok(()),
            Ok(Some(s)) if matches!(s.state, MachineState::Running | MachineState::Unreachable) => {
                return Ok(());
            }
            Ok(found) => found.map(|s| s.state),
        };
        Err(SmolvmError::Died {
            name: name.to_string(),
            state,
            probes,
        })
    }

    /// Run `probe` until it exits 0, pausing between probes and asking
    /// `status` as [`ready::Backoff`] says; past `timeout`, a `NotReady`
    /// error naming `name`.
    pub fn wait_ready(
        &self,
        name: &MachineName,
        probe: &Call,
        timeout: Duration,
        clock: &dyn Clock,
    ) -> Result<Readiness, SmolvmError> {
        let start = clock.now();
        let deadline = start + timeout;
        let mut probes = 0;
        let mut backoff = ready::Backoff::default();
        loop {
            let remaining = deadline.saturating_duration_since(clock.now());
            let last = match self.probe_once(probe, remaining)? {
                None => {
                    return Ok(Readiness {
                        probes: probes + 1,
                        waited: clock.now() - start,
                    });
                }
                Some(last) => last,
            };
            let pause = backoff.after_failure(clock.now() - start);
            if pause.check_status {
                self.still_alive(name, probes + 1)?;
            }
            let now = clock.now();
            if now >= deadline {
                return Err(SmolvmError::NotReady {
                    name: name.to_string(),
                    waited: Duration::from_millis((now - start).as_millis() as u64),
                    probes: probes + 1,
                    last,
                });
            }
            clock.sleep(pause.sleep.min(deadline - now));
            probes += 1;
        }
    }

    /// One probe, given what is left of the deadline: `None` when the
    /// guest answered, else what the failed probe said. An interrupt, a
    /// smolvm that cannot start or a probe killed by a signal end the wait.
    fn probe_once(&self, probe: &Call, remaining: Duration) -> Result<Option<String>, SmolvmError> {
        if let Some(sig) = self.smolvm.interrupted() {
            return Err(SmolvmError::Run {
                argv: Argv::from(probe),
                cause: RunFailure::Interrupted(sig),
            });
        }
        let limit = self.limit(probe).min(remaining.max(ready::MIN_PROBE_LIMIT));
        match self.exec_within(probe, limit) {
            Ok(r) if r.code == 0 => Ok(None),
            Ok(r) => Ok(Some(r.stderr)),
            Err(
                e @ SmolvmError::Run {
                    cause: RunFailure::Spawn(_) | RunFailure::Signalled(_),
                    ..
                },
            ) => Err(e),
            Err(e) => Ok(Some(one_line(&e))),
        }
    }
}

fn exec_result(call: &Call, out: Output) -> ExecResult {
    ExecResult {
        argv: Argv::from(call),
        code: out.code,
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

fn run<S: Smolvm>(smolvm: &S, call: &Call, limit: Duration) -> Result<Output, SmolvmError> {
    smolvm.run(call, limit).map_err(|cause| SmolvmError::Run {
        argv: Argv::from(call),
        cause,
    })
}

fn run_checked<S: Smolvm>(smolvm: &S, call: &Call, limit: Duration) -> Result<Output, SmolvmError> {
    let out = run(smolvm, call, limit)?;
    if out.code == 0 {
        return Ok(out);
    }
    Err(SmolvmError::Failed {
        argv: Argv::from(call),
        code: out.code,
        known: parse::classify(&out.stderr),
        stderr: out.stderr,
    })
}

#[cfg(test)]
mod tests;
