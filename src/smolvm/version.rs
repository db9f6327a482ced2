//! smolvm versions, the argv dialect each speaks, and what each enforces.

use std::fmt;

/// A smolvm release, `X.Y.Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

/// The two argv dialects of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// 0.8.0 – 1.0.1: `create … NAME` and `delete -f NAME` take the name
    /// positionally.
    Positional,
    /// 1.0.2 – 1.9.x: `create --name NAME …` and `delete -f --name NAME`.
    NameFlag,
}

/// The first release whose `create --from` enforces `--allow-cidr`.
pub const EGRESS_FIXED: Version = Version::new(1, 8, 0);
/// The oldest and newest releases bottle speaks to.
pub const OLDEST: Version = Version::new(0, 8, 0);
pub const NAME_FLAG_SINCE: Version = Version::new(1, 0, 2);
pub const BEYOND: Version = Version::new(1, 10, 0);
pub const SUPPORTED: &str = "0.8.0 to 1.9.x";

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// Parse `X.Y.Z`, ignoring a `-pre` or `+build` suffix.
    pub fn parse(s: &str) -> Option<Self> {
        let core = s.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
        let v = Version::new(parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(v)
    }

    /// Read `smolvm --version` stdout: `smolvm X.Y.Z[ anything]` on the
    /// first non-empty line.
    pub fn from_output(stdout: &str) -> Option<Self> {
        let line = stdout.lines().find(|l| !l.trim().is_empty())?;
        let mut words = line.split_whitespace();
        (words.next()? == "smolvm").then_some(())?;
        Version::parse(words.next()?.trim_start_matches('v'))
    }

    /// The argv dialect of this release, or `None` if bottle does not know it.
    pub fn dialect(self) -> Option<Dialect> {
        if self < OLDEST || self >= BEYOND {
            None
        } else if self < NAME_FLAG_SINCE {
            Some(Dialect::Positional)
        } else {
            Some(Dialect::NameFlag)
        }
    }

    /// Whether `create --from` with `--allow-cidr` really restricts egress.
    pub fn enforces_egress(self) -> bool {
        self >= EGRESS_FIXED
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_version_output() {
        assert_eq!(
            Version::from_output("smolvm 0.8.0\n"),
            Some(Version::new(0, 8, 0))
        );
        assert_eq!(
            Version::from_output("\nsmolvm 1.9.3 (simulated)\n"),
            Some(Version::new(1, 9, 3))
        );
        assert_eq!(
            Version::from_output("smolvm 1.2.3-rc.1"),
            Some(Version::new(1, 2, 3))
        );
        assert_eq!(Version::from_output("other 1.0.0"), None);
        assert_eq!(Version::from_output("smolvm one"), None);
        assert_eq!(Version::from_output("smolvm 1.2.3.4"), None);
        assert_eq!(Version::from_output(""), None);
    }

    #[test]
    fn dialects_follow_the_contract_table() {
        let d = |a, b, c| Version::new(a, b, c).dialect();
        assert_eq!(d(0, 7, 9), None);
        assert_eq!(d(0, 8, 0), Some(Dialect::Positional));
        assert_eq!(d(1, 0, 1), Some(Dialect::Positional));
        assert_eq!(d(1, 0, 2), Some(Dialect::NameFlag));
        assert_eq!(d(1, 9, 99), Some(Dialect::NameFlag));
        assert_eq!(d(1, 10, 0), None);
        assert_eq!(d(2, 0, 0), None);
    }

    #[test]
    fn egress_is_enforced_from_1_8_0() {
        assert!(!Version::new(1, 7, 7).enforces_egress());
        assert!(!Version::new(0, 8, 0).enforces_egress());
        assert!(Version::new(1, 8, 0).enforces_egress());
        assert!(Version::new(1, 9, 3).enforces_egress());
    }
}
