//! Errors of the smolvm wrapper. Each names the call it ran; a message
//! describes only this layer (a cause is its `source`, never repeated).

use std::time::Duration;

use super::RunFailure;
use super::call::Argv;
use super::parse::{self, Known, MachineState};
use super::version::{SUPPORTED, Version};

/// `: Error: MESSAGE`, smolvm's `Error:` line (log lines before it
/// dropped), or its whole stderr trimmed if it printed none; nothing when
/// it said nothing. ANSI styling is removed.
fn stderr_tail(stderr: &str) -> String {
    let s = match parse::error_message(stderr) {
        Some(m) => format!("Error: {m}"),
        None => parse::strip_ansi(stderr),
    };
    let s = s.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

/// An error and its causes on one line (`outer: cause: cause`), for a
/// message that must fit in one line (a probe's last failure, a log).
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        s.push_str(&format!(": {c}"));
        source = c.source();
    }
    s
}

/// A smolvm call that did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SmolvmError {
    #[error("`{argv}` exited with code {code}{}", stderr_tail(stderr))]
    Failed {
        argv: Argv,
        code: i32,
        stderr: String,
        known: Known,
    },
    #[error("`{argv}` failed")]
    Run {
        argv: Argv,
        #[source]
        cause: RunFailure,
    },
    #[error("machine `{name}` not ready after {} ({probes} probes){}", humantime::format_duration(*waited), stderr_tail(last))]
    NotReady {
        name: String,
        waited: Duration,
        probes: u32,
        last: String,
    },
    #[error(
        "machine `{name}` is {}: it stopped answering while bottle waited for it ({probes} probes)",
        state.as_ref().map_or("gone", MachineState::as_str)
    )]
    Died {
        name: String,
        /// What `status` said, or `None` when the machine is gone.
        state: Option<MachineState>,
        probes: u32,
    },
    #[error("cannot tell the smolvm version: `{argv}` printed {stdout:?}")]
    BadVersion { argv: Argv, stdout: String },
    #[error("smolvm {version} is not supported; bottle supports smolvm {SUPPORTED}")]
    Unsupported { version: Version },
    #[error("`{argv}` printed JSON bottle cannot read")]
    BadJson {
        argv: Argv,
        #[source]
        cause: serde_json::Error,
    },
    #[error("smolvm not found: {detail}")]
    Missing { detail: String },
}

impl SmolvmError {
    /// The recognised kind of a failed call.
    pub fn known(&self) -> Known {
        match self {
            SmolvmError::Failed { known, .. } => *known,
            _ => Known::Other,
        }
    }

    /// Whether this error is about the environment (smolvm missing or of an
    /// unsupported version) rather than a failed operation.
    pub fn is_environment(&self) -> bool {
        matches!(
            self,
            SmolvmError::Missing { .. }
                | SmolvmError::Unsupported { .. }
                | SmolvmError::BadVersion { .. }
                | SmolvmError::Run {
                    cause: RunFailure::Spawn(_),
                    ..
                }
        )
    }
}
