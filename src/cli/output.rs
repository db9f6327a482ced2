//! Progress lines on stderr during a run, with every secret value of the
//! run masked (smolvm echoes guest stderr, which may contain one) and
//! control characters escaped.

use crate::reconcile::Report;
use crate::spec::{Desired, MIN_SECRET_LEN};

/// Replaces secret values with `********`.
#[derive(Debug, Default)]
pub struct Mask(Vec<String>);

impl Mask {
    /// A mask of every secret of `desired`: each value, and each of its
    /// lines long enough to mask.
    pub fn of(desired: &[Desired]) -> Self {
        let mut words: Vec<String> = Vec::new();
        for s in desired.iter().flat_map(|d| &d.secrets) {
            let text = String::from_utf8_lossy(s.value.expose()).into_owned();
            words.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| l.chars().count() >= MIN_SECRET_LEN)
                    .map(str::to_string),
            );
            words.push(text.trim().to_string());
        }
        words.retain(|w| !w.is_empty());
        words.sort_by_key(|w| std::cmp::Reverse(w.len()));
        words.dedup();
        Mask(words)
    }

    pub fn apply(&self, text: &str) -> String {
        self.0
            .iter()
            .fold(text.to_string(), |t, w| t.replace(w.as_str(), "********"))
    }
}

/// Progress lines and errors on stderr, masked.
#[derive(Debug, Default)]
pub struct Out {
    pub mask: Mask,
}

impl Report for Out {
    fn line(&self, machine: &str, text: &str) {
        let line = format!("{machine}: {}\n", self.mask.apply(text));
        super::term::err(&super::term::escape_controls(&line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longer_values_are_masked_first_and_every_line_too() {
        let m = Mask(vec!["abcdefgh".into(), "abcd".into()]);
        assert_eq!(m.apply("x abcdefgh y abcd"), "x ******** y ********");
        assert_eq!(Mask::default().apply("plain"), "plain");
    }
}
