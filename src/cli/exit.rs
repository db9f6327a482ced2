//! The documented exit codes, and the one place errors are mapped to them.

use crate::reconcile::ApplyError;
use crate::smolvm::SmolvmError;
use crate::spec::SpecError;

/// bottle's exit codes, in order of severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Everything is as the specs say (including "unchanged").
    Ok,
    /// An apply failed (after its teardown), or `down` could not remove.
    Failed,
    /// An invalid spec or command line; nothing was done.
    Invalid,
    /// The environment: smolvm missing or unsupported, egress not
    /// enforceable, an unmanaged machine in the way, state unreadable.
    Environment,
    /// Interrupted by a signal: 128 + its number (130 for SIGINT, 143 for
    /// SIGTERM, 129 for SIGHUP).
    Interrupted(i32),
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Invalid => 2,
            Exit::Environment => 3,
            Exit::Interrupted(sig) => 128 + sig,
        }
    }
}

pub fn of_spec(_: &SpecError) -> Exit {
    Exit::Invalid
}

pub fn of_smolvm(e: &SmolvmError) -> Exit {
    if e.is_environment() {
        Exit::Environment
    } else {
        Exit::Failed
    }
}

pub fn of_apply(e: &ApplyError) -> Exit {
    match e {
        ApplyError::Step { .. } | ApplyError::Down { .. } => Exit::Failed,
        ApplyError::Observe { cause, .. } => of_smolvm(cause),
        ApplyError::Unmanaged { .. }
        | ApplyError::EgressUnenforced { .. }
        | ApplyError::NotOwned { .. }
        | ApplyError::State(_) => Exit::Environment,
    }
}

/// Print `error: …` and every cause on stderr.
pub fn print_error(e: &dyn std::error::Error) {
    eprintln!("error: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        eprintln!("  caused by: {s}");
        source = s.source();
    }
}
