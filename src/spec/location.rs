//! Source locations in a spec file: byte offsets turned into `file:line:col`.
//!
//! Owns the conversion only; it never reads files.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A place in a spec file, with the source line for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The whole source line the location points into.
    pub source_line: String,
}

impl Location {
    /// The location of byte `offset` in `text` (clamped to the text).
    pub fn at(file: &Path, text: &str, offset: usize) -> Self {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
        Location {
            file: file.to_path_buf(),
            line: text[..line_start].matches('\n').count() + 1,
            column: text[line_start..offset].chars().count() + 1,
            source_line: text[line_start..line_end]
                .trim_end_matches('\r')
                .to_string(),
        }
    }

    /// The location where `span` starts, or the top of the file without one.
    pub fn of_span(file: &Path, text: &str, span: Option<Range<usize>>) -> Self {
        Self::at(file, text, span.map_or(0, |s| s.start))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_one_based_line_and_column() {
        let text = "a = 1\nname = \"x\"\n";
        let loc = Location::at(Path::new("s.toml"), text, 13);
        assert_eq!((loc.line, loc.column), (2, 8));
        assert_eq!(loc.source_line, "name = \"x\"");
        assert_eq!(loc.to_string(), "s.toml:2:8");
    }

    #[test]
    fn out_of_range_offsets_are_clamped() {
        let loc = Location::at(Path::new("s.toml"), "é", 1);
        assert_eq!((loc.line, loc.column), (1, 1));
        let end = Location::at(Path::new("s.toml"), "ab", 99);
        assert_eq!((end.line, end.column), (1, 3));
    }
}
