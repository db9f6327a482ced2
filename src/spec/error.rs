//! Errors of the spec layer: every one names the file, line, column and key.
//!
//! A problem is shown as its location, key and message, then the source
//! line with a caret under the column. Keys, messages and source lines are
//! escaped and long lines cut (see `location`), so no control character
//! from a spec reaches the terminal.

use std::fmt;
use std::path::PathBuf;

use super::location::{Location, escape};

/// One problem in a spec, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub at: Location,
    /// The dotted key the problem is about, e.g. `network.allow_cidrs[0]`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (key, message) = (escape(&self.key), escape(&self.message));
        writeln!(f, "{}: `{key}`: {message}", self.at)?;
        let snippet = self.at.snippet();
        let gutter = self.at.line.to_string().len();
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{} | {}", self.at.line, snippet.line)?;
        write!(f, "{:gutter$} | {:>col$}", "", "^", col = snippet.caret + 1)
    }
}

/// Why a spec could not be loaded. Nothing is created when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{}: cannot read spec: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render(.0))]
    Invalid(Vec<Problem>),
    #[error("machine name `{name}` is used by both {} and {}", first.display(), second.display())]
    DuplicateName {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
}

impl SpecError {
    /// The located problems, if this is a validation error.
    pub fn problems(&self) -> &[Problem] {
        match self {
            SpecError::Invalid(p) => p,
            SpecError::Read { .. } | SpecError::DuplicateName { .. } => &[],
        }
    }
}

fn render(problems: &[Problem]) -> String {
    let parts: Vec<String> = problems.iter().map(Problem::to_string).collect();
    parts.join("\n")
}
