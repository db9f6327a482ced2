//! The one CLI error: every layer's error, the one place it is mapped to an
//! exit code, and the one renderer (`error: …`, each cause once, a hint,
//! secret values masked, control characters escaped).

use crate::reconcile::{ApplyError, StepError};
use crate::render::RenderError;
use crate::smolvm::SmolvmError;
use crate::spec::{SpecError, ValueError};
use crate::state::StateError;

use super::exit::Exit;
use super::output::Mask;
use super::term;

/// Anything that stops a command, or one spec of it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Smolvm(#[from] SmolvmError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("`{target}` is neither a spec file nor a machine name: the name {cause}")]
    Target { target: String, cause: ValueError },
    #[error("stopped by signal {0} before anything was changed")]
    Interrupted(i32),
}

impl Error {
    /// The documented exit code of this error.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Spec(_) | Error::Target { .. } => Exit::Invalid,
            Error::Interrupted(signal) => Exit::Interrupted(*signal),
            Error::Smolvm(e) => smolvm_exit(e),
            Error::State(_) => Exit::Environment,
            Error::Render(e) => match e {
                RenderError::Refused(_) => Exit::Invalid,
                RenderError::Read { .. } | RenderError::Write { .. } => Exit::Environment,
                RenderError::Yaml { .. } => Exit::Failed,
            },
            Error::Apply(e) => match e {
                ApplyError::Step { .. } | ApplyError::Down { .. } | ApplyError::Gone { .. } => {
                    Exit::Failed
                }
                ApplyError::Switch { cause, .. } => match cause.as_ref() {
                    StepError::Smolvm(e) => smolvm_exit(e),
                    StepError::Exec { .. }
                    | StepError::Log { .. }
                    | StepError::NoPack { .. }
                    | StepError::Cache { .. }
                    | StepError::State(_)
                    | StepError::Interrupted { .. }
                    | StepError::Archive { .. }
                    | StepError::Copy { .. }
                    | StepError::Secret { .. } => Exit::Failed,
                },
                ApplyError::Interrupted { signal, .. } => Exit::Interrupted(*signal),
                ApplyError::Observe { cause, .. } => smolvm_exit(cause),
                ApplyError::Unmanaged { .. }
                | ApplyError::OwnedElsewhere { .. }
                | ApplyError::NotThisSpec { .. }
                | ApplyError::ReplaceRefused { .. }
                | ApplyError::EgressUnenforced { .. }
                | ApplyError::NotOwned { .. }
                | ApplyError::Plan { .. }
                | ApplyError::State(_) => Exit::Environment,
            },
        }
    }

    /// What to do about it, if bottle can say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Apply(e) => e.hint(),
            Error::Smolvm(SmolvmError::Missing { .. }) => Some(
                "hint: to try bottle without smolvm, pass --sim to use the bundled simulator"
                    .into(),
            ),
            Error::Spec(_)
            | Error::Smolvm(_)
            | Error::State(_)
            | Error::Target { .. }
            | Error::Interrupted(_)
            | Error::Render(_) => None,
        }
    }
}

fn smolvm_exit(e: &SmolvmError) -> Exit {
    if e.is_environment() {
        Exit::Environment
    } else {
        Exit::Failed
    }
}

/// `error: …`, every cause, then the hint, as one text.
pub fn render(e: &Error, mask: &Mask) -> String {
    let mut text = format!("error: {e}\n");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!("  caused by: {s}\n"));
        source = s.source();
    }
    if let Some(h) = e.hint() {
        text.push_str(&h);
        text.push('\n');
    }
    term::escape_controls(&mask.apply(&text))
}

/// Print `e` on stderr as one write, and return its exit code.
pub fn report(e: &Error, mask: &Mask) -> Exit {
    term::err(&render(e, mask));
    e.exit()
}
