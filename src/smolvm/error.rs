//! Errors of the smolvm wrapper. Each carries the argv it ran.

use std::fmt;
use std::time::Duration;

use super::parse::Known;
use super::version::{SUPPORTED, Version};

/// An argv, displayed shell-quoted so it can be pasted into a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argv(pub Vec<String>);

impl fmt::Display for Argv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = self.0.iter().map(|w| quote(w)).collect();
        f.write_str(&words.join(" "))
    }
}

/// Quote `w` for a POSIX shell when it needs it.
pub fn quote(w: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c);
    if !w.is_empty() && w.chars().all(plain) {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

/// `: STDERR` trimmed, or nothing when smolvm said nothing.
pub(crate) fn stderr_tail(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
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
        cause: super::RunFailure,
    },
    #[error("machine `{name}` not ready after {} ({probes} probes){}", humantime::format_duration(*waited), stderr_tail(last))]
    NotReady {
        name: String,
        waited: Duration,
        probes: u32,
        last: String,
    },
    #[error(
        "machine `{name}` is {state}: it stopped answering while bottle waited for it ({probes} probes)"
    )]
    Died {
        name: String,
        state: String,
        probes: u32,
    },
    #[error("cannot tell the smolvm version: `{argv}` printed {stdout:?}")]
    BadVersion { argv: Argv, stdout: String },
    #[error("smolvm {version} is not supported; bottle supports smolvm {SUPPORTED}")]
    Unsupported { version: Version },
    #[error("`{argv}` printed JSON bottle cannot read: {detail}")]
    BadJson { argv: Argv, detail: String },
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
        ) || matches!(
            self,
            SmolvmError::Run {
                cause: super::RunFailure::Spawn(_),
                ..
            }
        )
    }
}
