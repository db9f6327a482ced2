//! Progress lines on stderr during a run, with every secret value of the
//! run masked (smolvm echoes guest stderr, which may contain one) and
//! control characters escaped.

use crate::reconcile::Report;
use crate::spec::{Desired, mask_words};

/// Replaces secret values with `********`.
#[derive(Debug, Default)]
pub struct Mask(Vec<String>);

impl Mask {
    /// A mask of every secret of `desired`: each value, and each of its
    /// lines long enough to mask.
    pub fn of(desired: &[Desired]) -> Self {
        Mask(mask_words(desired.iter().flat_map(|d| &d.secrets)))
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
