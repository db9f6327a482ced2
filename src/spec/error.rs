//! Errors of the spec layer, and how a list of located problems is shown.
//!
//! Owns [`Problem`] (one located problem: file, line, column, dotted key,
//! message), [`SpecError`], the order problems are reported in (source
//! order, see [`SpecError::invalid`]) and the cap on how many are printed
//! ([`MAX_SHOWN`]). Must not find problems or decide keys: `validate` and
//! `resolve` do that.
//!
//! The display of [`SpecError::Invalid`] is meant to follow the `error: `
//! that the command line prints before every error: each further problem
//! starts its own `error: ` line, so every problem reads alike:
//!
//! ```text
//! error: specs/x.toml:1:8: `name`: must start with a letter or digit
//!   |
//! 1 | name = "-vm"
//!   |        ^
//! ```
//!
//! A problem with an empty key (a syntax error at the top of the file,
//! before any table) leaves the `` `key`: `` part out. After [`MAX_SHOWN`]
//! problems one line `… and N more problems` ends the list.
//! Keys, messages and source lines are escaped (see `location`), so no
//! control character from a spec reaches the terminal.

use std::fmt;
use std::path::PathBuf;

use super::location::{Location, escape};

/// The most problems one error shows; the rest are counted.
pub const MAX_SHOWN: usize = 20;

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
        write!(f, "{}: ", self.at)?;
        if !self.key.is_empty() {
            write!(f, "`{}`: ", escape(&self.key))?;
        }
        writeln!(f, "{}", escape(&self.message))?;
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
    /// `Invalid` with `problems` in source order: by line, then column;
    /// problems at the same place keep the order they were found in.
    pub fn invalid(mut problems: Vec<Problem>) -> Self {
        problems.sort_by_key(|p| (p.at.line, p.at.column));
        SpecError::Invalid(problems)
    }

    /// The located problems, if this is a validation error (all of them,
    /// not only the shown ones).
    pub fn problems(&self) -> &[Problem] {
        match self {
            SpecError::Invalid(p) => p,
            SpecError::Read { .. } | SpecError::DuplicateName { .. } => &[],
        }
    }
}

/// The first [`MAX_SHOWN`] problems, then how many more there are.
fn render(problems: &[Problem]) -> String {
    let shown = problems.iter().take(MAX_SHOWN).map(Problem::to_string);
    let mut text = shown.collect::<Vec<_>>().join("\nerror: ");
    match problems.len().saturating_sub(MAX_SHOWN) {
        0 => {}
        1 => text.push_str("\n… and 1 more problem"),
        more => text.push_str(&format!("\n… and {more} more problems")),
    }
    text
}
