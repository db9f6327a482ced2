//! Errors of the spec layer: every one names the file, line, column and key.

use std::fmt;
use std::path::PathBuf;

use super::location::Location;

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
        writeln!(f, "{}: `{}`: {}", self.at, self.key, self.message)?;
        let gutter = self.at.line.to_string().len();
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{} | {}", self.at.line, self.at.source_line)?;
        write!(f, "{:gutter$} | {:>col$}", "", "^", col = self.at.column)
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
