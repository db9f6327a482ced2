//! The documented exit codes (README, "Exit codes"). Which error maps to
//! which lives in `error`, in one match; nothing else picks a code.

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
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Invalid => 2,
            Exit::Environment => 3,
            Exit::Interrupted(sig) => u8::try_from(128 + sig).unwrap_or(u8::MAX),
        }
    }
}
