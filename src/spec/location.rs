//! Where a problem is, and how that place is shown to a human.
//!
//! Owns three small things: turning a byte offset into `file:line:col` with
//! its source line ([`Location`]), spelling a path through the document as a
//! dotted key ([`Step`], [`dotted`]), and the terminal-safe snippet of a
//! source line ([`Snippet`], [`escape`]).
//!
//! Must not read files, parse TOML or decide what is wrong: callers bring
//! the text, the offsets and the steps.
//!
//! # Display rules
//!
//! - Columns count characters (not bytes, not terminal cells): a wide
//!   character may shift the caret by one cell.
//! - Nothing echoed reaches the terminal raw: every control character is
//!   shown escaped, `\t`, `\r`, `\n` as such, other C0 characters and DEL
//!   as `\x1b`-style, C1 controls and the bidirectional-text controls
//!   (which can make a line read differently from what it is) as
//!   `\u{202e}`-style. The caret moves with the escaped text, so it stays
//!   under the character it points at.
//! - A shown line wider than [`MAX_SNIPPET_WIDTH`] is cut to a window of
//!   that width around the caret, with `…` on each side that was cut.

use std::borrow::Cow;
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

    /// The source line as it is shown under a problem.
    pub fn snippet(&self) -> Snippet {
        Snippet::new(&self.source_line, self.column.saturating_sub(1))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One step of a path through the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A key of a table.
    Key(String),
    /// An element of an array (0-based).
    Index(usize),
}

/// The dotted key of `steps`, e.g. `exec[1].workdir`; empty for the root.
pub fn dotted(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(&key_part(k)),
            Step::Key(k) => {
                out.push('.');
                out.push_str(&key_part(k));
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// One key as TOML would accept it: bare when it can be, quoted otherwise.
pub fn key_part(key: &str) -> Cow<'_, str> {
    let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !key.is_empty() && key.chars().all(bare) {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(format!("{key:?}"))
    }
}

/// The widest source line shown whole; longer ones are cut around the caret.
pub const MAX_SNIPPET_WIDTH: usize = 120;

/// A source line made safe to print, and where the caret goes under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// The text to print (escaped, and cut when long).
    pub line: String,
    /// 0-based column of the caret under `line`, in characters.
    pub caret: usize,
}

impl Snippet {
    /// The snippet of `line` with the caret under character `caret`
    /// (0-based; one past the end points just after the line).
    pub fn new(line: &str, caret: usize) -> Self {
        let pieces: Vec<Cow<'_, str>> = line.chars().map(escape_char).collect();
        let caret = caret.min(pieces.len());
        let width = |r: Range<usize>| pieces[r].iter().map(|p| p.chars().count()).sum::<usize>();
        if width(0..pieces.len()) <= MAX_SNIPPET_WIDTH {
            return Snippet {
                line: pieces.concat(),
                caret: width(0..caret),
            };
        }
        let (lo, hi) = window(&pieces, caret, MAX_SNIPPET_WIDTH - 2);
        let cut_left = usize::from(lo > 0);
        let mut shown = String::from(if lo > 0 { "…" } else { "" });
        shown.push_str(&pieces[lo..hi].concat());
        if hi < pieces.len() {
            shown.push('…');
        }
        Snippet {
            line: shown,
            caret: cut_left + width(lo..caret),
        }
    }
}

/// The pieces `lo..hi` around `caret` whose width fits in `budget`,
/// growing on both sides alike so the caret ends up near the middle.
fn window(pieces: &[Cow<'_, str>], caret: usize, budget: usize) -> (usize, usize) {
    let w = |i: usize| pieces[i].chars().count();
    let (mut lo, mut hi) = (caret, (caret + 1).min(pieces.len()));
    let (mut left, mut right) = (0, (lo..hi).map(w).sum::<usize>());
    loop {
        let grow_left = lo > 0 && left + right + w(lo - 1) <= budget;
        let grow_right = hi < pieces.len() && left + right + w(hi) <= budget;
        match (grow_left, grow_right) {
            (false, false) => return (lo, hi),
            (true, true) if left <= right => (lo, left) = (lo - 1, left + w(lo - 1)),
            (true, false) => (lo, left) = (lo - 1, left + w(lo - 1)),
            (_, true) => (hi, right) = (hi + 1, right + w(hi)),
        }
    }
}

/// `text` with every control character escaped (see the module doc).
pub fn escape(text: &str) -> Cow<'_, str> {
    if text.chars().all(|c| !needs_escape(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().map(escape_char).collect())
}

fn needs_escape(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// Characters that reorder how a terminal draws the text around them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape_char(c: char) -> Cow<'static, str> {
    match c {
        '\t' => Cow::Borrowed("\\t"),
        '\r' => Cow::Borrowed("\\r"),
        '\n' => Cow::Borrowed("\\n"),
        '\0'..='\u{1f}' | '\u{7f}' => Cow::Owned(format!("\\x{:02x}", u32::from(c))),
        c if needs_escape(c) => Cow::Owned(format!("\\u{{{:x}}}", u32::from(c))),
        c => Cow::Owned(c.to_string()),
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

    #[test]
    fn keys_are_dotted_and_quoted_only_when_they_must_be() {
        let steps = [
            Step::Key("exec".into()),
            Step::Index(1),
            Step::Key("env".into()),
            Step::Key("A B".into()),
        ];
        assert_eq!(dotted(&steps), "exec[1].env.\"A B\"");
        assert_eq!(dotted(&[Step::Key("1-a_B".into())]), "1-a_B");
        assert_eq!(dotted(&[]), "");
    }
}
