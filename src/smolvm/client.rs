//! The typed smolvm wrapper: one function per subcommand.
//!
//! Each function builds its argv with `argv`, runs it through the
//! [`Smolvm`] trait with the step's time limit, and turns the result into a
//! value or a [`SmolvmError`]. A non-zero exit is an error for every
//! subcommand but `exec`, whose exit code is the guest command's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{Argv, SmolvmError};
use super::parse::{self, Known, MachineState, MachineStatus};
use super::ready::{self, Clock, Readiness};
use super::version::{Dialect, Version};
use super::{Limits, Output, Smolvm, argv};

pub use super::argv::{Create as CreateArgs, Exec as ExecArgs};

/// What a guest command did.
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
    program: String,
    version: Version,
    dialect: Dialect,
    limits: Limits,
    simulated: bool,
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
        let argv = argv::version(program);
        let out = run_checked(&smolvm, argv.clone(), limits.version)?;
        let version = Version::from_output(&out.stdout).ok_or_else(|| SmolvmError::BadVersion {
            argv: Argv(argv),
            stdout: out.stdout.clone(),
        })?;
        let dialect = version
            .dialect()
            .ok_or(SmolvmError::Unsupported { version })?;
        Ok(Client {
            smolvm,
            program: program.to_string(),
            version,
            dialect,
            limits,
            simulated: out.stdout.contains(crate::sim::VERSION_MARK),
        })
    }

    /// A client for a version already known (no `--version` call).
    pub fn with_version(smolvm: S, program: &str, version: Version, limits: Limits) -> Self {
        Client {
            smolvm,
            program: program.to_string(),
            version,
            dialect: version.dialect().unwrap_or(Dialect::NameFlag),
            limits,
            simulated: false,
        }
    }

    pub fn version(&self) -> Version {
        self.version
    }
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }
    pub fn program(&self) -> &str {
        &self.program
    }
    /// How long a `pack create` may take.
    pub fn pack_limit(&self) -> Duration {
        self.limits.pack
    }

    /// The signal with which the user asked bottle to stop, if any.
    pub fn interrupted(&self) -> Option<i32> {
        self.smolvm.interrupted()
    }
    /// Whether `--version` said this is bottle's simulator, not smolvm.
    pub fn simulated(&self) -> bool {
        self.simulated
    }

    fn check(&self, argv: Vec<String>, limit: Duration) -> Result<Output, SmolvmError> {
        run_checked(&self.smolvm, argv, limit)
    }

    /// `pack create --image IMG -o OUT`
    pub fn pack_create(&self, image: &str, out: &Path) -> Result<(), SmolvmError> {
        let argv = argv::pack_create(&self.program, image, &path_str(out));
        self.check(argv, self.limits.pack).map(drop)
    }

    /// `pack create --from-vm VM -o OUT`
    pub fn pack_create_from_vm(&self, vm: &str, out: &Path) -> Result<(), SmolvmError> {
        let argv = argv::pack_create_from_vm(&self.program, vm, &path_str(out));
        self.check(argv, self.limits.pack).map(drop)
    }

    /// `machine create …`
    pub fn machine_create(&self, args: &CreateArgs<'_>) -> Result<(), SmolvmError> {
        let argv = argv::machine_create(&self.program, self.dialect, args);
        self.check(argv, self.limits.create).map(drop)
    }

    /// `machine start --name N`
    pub fn machine_start(&self, name: &str) -> Result<(), SmolvmError> {
        let argv = argv::machine_start(&self.program, name);
        self.check(argv, self.limits.start).map(drop)
    }

    /// `machine stop --name N`
    pub fn machine_stop(&self, name: &str) -> Result<(), SmolvmError> {
        let argv = argv::machine_stop(&self.program, name);
        self.check(argv, self.limits.stop).map(drop)
    }

    /// `machine delete -f …`
    pub fn machine_delete(&self, name: &str) -> Result<(), SmolvmError> {
        let argv = argv::machine_delete(&self.program, self.dialect, name);
        self.check(argv, self.limits.delete).map(drop)
    }

    /// `machine exec … -- CMD…`: the guest command's exit code is a result.
    pub fn machine_exec(
        &self,
        args: &ExecArgs<'_>,
        cmd: &[String],
    ) -> Result<ExecResult, SmolvmError> {
        let limit = args.timeout.map_or(self.limits.exec, |t| {
            self.limits.exec.min(t + Duration::from_secs(30))
        });
        self.exec_within(args, cmd, limit)
    }

    fn exec_within(
        &self,
        args: &ExecArgs<'_>,
        cmd: &[String],
        limit: Duration,
    ) -> Result<ExecResult, SmolvmError> {
        let argv = argv::machine_exec(&self.program, args, cmd);
        let out = run(&self.smolvm, argv.clone(), limit)?;
        Ok(ExecResult {
            argv: Argv(argv),
            code: out.code,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// `machine cp SRC DST`; an empty side is a no-op that runs nothing.
    pub fn machine_cp(&self, src: &str, dst: &str) -> Result<(), SmolvmError> {
        if src.is_empty() || dst.is_empty() {
            return Ok(());
        }
        let argv = argv::machine_cp(&self.program, src, dst);
        self.check(argv, self.limits.cp).map(drop)
    }

    /// `machine status --name N --json`; `None` when there is no such machine.
    pub fn machine_status(&self, name: &str) -> Result<Option<MachineStatus>, SmolvmError> {
        let argv = argv::machine_status(&self.program, name);
        match self.check(argv.clone(), self.limits.observe) {
            Ok(out) => {
                parse::status(&out.stdout)
                    .map(Some)
                    .map_err(|detail| SmolvmError::BadJson {
                        argv: Argv(argv),
                        detail,
                    })
            }
            Err(e) if e.known() == Known::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// During readiness: fail at once if the machine is gone or no longer
    /// running, rather than probing until the deadline. A failed `status`
    /// proves nothing, so probing goes on.
    fn still_alive(&self, name: &str, probes: u32) -> Result<(), SmolvmError> {
        let state = match self.machine_status(name) {
            Err(_) => return Ok(()),
            Ok(None) => "gone".to_string(),
            Ok(Some(s)) if matches!(s.state, MachineState::Running | MachineState::Unreachable) => {
                return Ok(());
            }
            Ok(Some(s)) => s.state.as_str().to_string(),
        };
        Err(SmolvmError::Died {
            name: name.to_string(),
            state,
            probes,
        })
    }

    /// `machine ls --json`
    pub fn machine_ls(&self) -> Result<Vec<MachineStatus>, SmolvmError> {
        let argv = argv::machine_ls(&self.program);
        let out = self.check(argv.clone(), self.limits.observe)?;
        parse::list(&out.stdout).map_err(|detail| SmolvmError::BadJson {
            argv: Argv(argv),
            detail,
        })
    }

    /// Poll `exec -- true` until it exits 0, pausing between probes and
    /// asking `status` as [`ready::Backoff`] says; past `timeout`, a
    /// `NotReady` error naming `name`.
    pub fn wait_exec_ready(
        &self,
        name: &str,
        timeout: Duration,
        clock: &dyn Clock,
    ) -> Result<Readiness, SmolvmError> {
        let start = clock.now();
        let deadline = start + timeout;
        let args = ExecArgs {
            name,
            ..ExecArgs::default()
        };
        let probe = ["true".to_string()];
        let mut probes = 0;
        let mut backoff = ready::Backoff::default();
        loop {
            if let Some(sig) = self.smolvm.interrupted() {
                let argv = argv::machine_exec(&self.program, &args, &probe);
                let cause = super::RunFailure::Interrupted(sig);
                return Err(SmolvmError::Run {
                    argv: Argv(argv),
                    cause,
                });
            }
            let remaining = deadline.saturating_duration_since(clock.now());
            let limit = self.limits.probe.min(remaining.max(ready::MIN_PROBE_LIMIT));
            let last = match self.exec_within(&args, &probe, limit) {
                Ok(r) if r.code == 0 => {
                    return Ok(Readiness {
                        probes: probes + 1,
                        waited: clock.now() - start,
                    });
                }
                Ok(r) => r.stderr,
                Err(
                    e @ SmolvmError::Run {
                        cause: super::RunFailure::Spawn(_) | super::RunFailure::Signalled(_),
                        ..
                    },
                ) => return Err(e),
                Err(e) => chain(&e),
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
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        s.push_str(&format!(": {c}"));
        source = c.source();
    }
    s
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn run<S: Smolvm>(smolvm: &S, argv: Vec<String>, limit: Duration) -> Result<Output, SmolvmError> {
    smolvm.run(&argv, limit).map_err(|cause| SmolvmError::Run {
        argv: Argv(argv),
        cause,
    })
}

fn run_checked<S: Smolvm>(
    smolvm: &S,
    argv: Vec<String>,
    limit: Duration,
) -> Result<Output, SmolvmError> {
    let out = run(smolvm, argv.clone(), limit)?;
    if out.code == 0 {
        return Ok(out);
    }
    Err(SmolvmError::Failed {
        argv: Argv(argv),
        code: out.code,
        known: parse::classify(&out.stderr),
        stderr: out.stderr,
    })
}

#[cfg(test)]
mod tests;
