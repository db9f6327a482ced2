//! Errors of the reconcile layer. Each knows the machine it is about; a
//! message describes only this layer (causes are `source`s).

use crate::lifecycle::End;
use crate::plan::{PlanError, Step};
use crate::smolvm::{Argv, Call, MachineState, SmolvmError, Version, version};
use crate::state::StateError;

/// `: STDERR` of a guest command, whole and trimmed (it is the guest's,
/// not smolvm's), or nothing when it printed nothing.
fn guest_tail(stderr: &str) -> String {
    match stderr.trim() {
        "" => String::new(),
        s => format!(": {s}"),
    }
}

/// `; its output is in PATH` when the command's output was logged.
fn logged_in(log: &Option<std::path::PathBuf>) -> String {
    log.as_ref()
        .map(|p| format!("; its output is in {}", p.display()))
        .unwrap_or_default()
}

/// Why one step of an apply (or one teardown call) failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Smolvm(#[from] SmolvmError),
    #[error(
        "`{argv}` exited with code {code}{}{}",
        guest_tail(stderr),
        logged_in(log)
    )]
    Exec {
        argv: Argv,
        code: i32,
        /// The last 64 KiB of what it printed on stderr.
        stderr: String,
        /// The exec log holding all it printed, for an exec step.
        log: Option<std::path::PathBuf>,
    },
    #[error("cannot open the exec log {}", path.display())]
    Log {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{argv}` succeeded but wrote no pack at {}", path.display())]
    NoPack {
        argv: Argv,
        path: std::path::PathBuf,
    },
    #[error("cannot prepare the pack cache at {}", path.display())]
    Cache {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("interrupted by signal {signal} before it started")]
    Interrupted { signal: i32 },
    #[error("cannot write the copy archive {}", path.display())]
    Archive {
        path: std::path::PathBuf,
        #[source]
        source: super::archive::ArchiveError,
    },
    #[error("cannot copy {} by itself", path.display())]
    Copy {
        path: std::path::PathBuf,
        #[source]
        source: super::archive::ArchiveError,
    },
    #[error("cannot stage a secret in an anonymous memory file (memfd)")]
    Secret {
        #[source]
        source: std::io::Error,
    },
}

/// Why an apply, plan, down or status did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{name}: {step} failed")]
    Step {
        name: String,
        step: Step,
        /// What the step was doing, e.g. `copy /workspace/README.md`.
        doing: String,
        #[source]
        cause: Box<StepError>,
        /// How the failed apply left the machine.
        cleanup: End,
        /// The apply was an in-place update: the machine is kept.
        in_place: bool,
        /// The smolvm calls that remove the machine by hand, in the
        /// installed smolvm's dialect.
        remove_with: Vec<Call>,
    },
    #[error(
        "{name}: a machine named `{name}` exists ({}) but bottle has no record of creating it; \
         bottle never touches machines it does not own. Rename the spec's machine, or remove \
         that machine yourself if it is yours to remove",
        state.as_str()
    )]
    Unmanaged { name: String, state: MachineState },
    #[error(
        "{name}: refusing to create a machine with {keys} on smolvm {version}: \
         smolvm before {fixed} silently drops --allow-cidr and --allow-host on `create --from`, \
         so egress would be unrestricted. Upgrade smolvm to {fixed} or later, or pass \
         --allow-unenforced-egress to proceed anyway",
        fixed = version::EGRESS_FIXED
    )]
    EgressUnenforced {
        name: String,
        version: Version,
        /// The spec's allow-list keys, e.g. `network.allow_cidrs`.
        keys: String,
    },
    #[error(
        "{name}: machine `{name}` belongs to the spec {}, not to {}; two specs never share a \
         machine. Give this spec's machine another name, pass --adopt to make it this spec's \
         (as when the project moved), or --replace to replace it",
        owner.display(),
        spec.display()
    )]
    OwnedElsewhere {
        name: String,
        owner: std::path::PathBuf,
        spec: std::path::PathBuf,
    },
    #[error(
        "{name}: machine `{name}` belongs to the spec {}, not to {}; name the machine \
         (`{name}`) instead of the spec to act on it anyway",
        owner.display(),
        spec.display()
    )]
    NotThisSpec {
        name: String,
        owner: std::path::PathBuf,
        spec: std::path::PathBuf,
    },
    #[error(
        "{name}: applying this spec replaces machine `{name}` ({changed}): its disk, and \
         everything written in it since it was created, would be lost. Pass --replace to \
         replace it, or undo the change"
    )]
    ReplaceRefused { name: String, changed: String },
    #[error(
        "{name}: bottle has no record of machine `{name}`; it only acts on machines it created"
    )]
    NotOwned { name: String },
    #[error("{name}: stopped by signal {signal} before anything was changed")]
    Interrupted { name: String, signal: i32 },
    #[error(
        "{name}: machine `{name}` is gone (bottle's record names it); `bottle apply` its spec \
         to create it again, or `bottle down {name}` to forget it"
    )]
    Gone { name: String },
    #[error("{name}: cannot {what} the machine")]
    Switch {
        name: String,
        what: Switch,
        #[source]
        cause: Box<StepError>,
    },
    #[error("{name}: cannot observe the machine")]
    Observe {
        name: String,
        #[source]
        cause: SmolvmError,
    },
    #[error("{name}: cannot remove the machine")]
    Down {
        name: String,
        /// The last teardown call that failed.
        #[source]
        cause: Option<Box<StepError>>,
        remove_with: Vec<Call>,
    },
    #[error("{name}: cannot plan the apply")]
    Plan {
        name: String,
        #[source]
        cause: PlanError,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

/// What `bottle stop` and `bottle start` do to a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    Stop,
    Start,
}

impl std::fmt::Display for Switch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Switch::Stop => "stop",
            Switch::Start => "start",
        })
    }
}

/// `smolvm machine stop …; smolvm machine delete …` as one shell line.
fn shell_lines(calls: &[Call]) -> String {
    let lines: Vec<String> = calls.iter().map(ToString::to_string).collect();
    lines.join("; ")
}

impl ApplyError {
    /// A line telling the user what was left behind and what to do.
    pub fn hint(&self) -> Option<String> {
        let (name, cleanup, remove_with) = match self {
            ApplyError::Step {
                name,
                in_place: true,
                ..
            } => {
                return Some(format!(
                    "{name}: updated in place up to the failed step and kept as it is, with its \
                     work; the next apply sends or runs again what did not finish"
                ));
            }
            ApplyError::Step {
                name,
                cleanup,
                remove_with,
                ..
            } => (name, *cleanup, remove_with),
            ApplyError::Down {
                name, remove_with, ..
            } => (name, End::Left, remove_with),
            ApplyError::Unmanaged { .. }
            | ApplyError::OwnedElsewhere { .. }
            | ApplyError::NotThisSpec { .. }
            | ApplyError::ReplaceRefused { .. }
            | ApplyError::EgressUnenforced { .. }
            | ApplyError::NotOwned { .. }
            | ApplyError::Interrupted { .. }
            | ApplyError::Gone { .. }
            | ApplyError::Switch { .. }
            | ApplyError::Observe { .. }
            | ApplyError::Plan { .. }
            | ApplyError::State(_) => return None,
        };
        let by_hand = shell_lines(remove_with);
        Some(match cleanup {
            End::NothingCreated => format!("{name}: nothing was created"),
            End::Removed => format!("{name}: torn down: the machine this run created was deleted"),
            End::Left => format!(
                "{name}: teardown failed: the machine may still exist (bottle still owns it; where \
                 `stop` failed on smolvm 0.8.x it is not deleted, since that would leave its VM \
                 running untracked); remove it with `bottle down {name}` or `{by_hand}`"
            ),
            End::Kept => format!(
                "{name}: kept as it failed (--keep-on-failure); remove it with `bottle down {name}` \
                 or `{by_hand}`"
            ),
            End::Ready => return None,
        })
    }
}
