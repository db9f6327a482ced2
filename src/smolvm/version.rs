//! smolvm versions, the argv dialect each speaks, and what each enforces.
//!
//! Owns the version thresholds of the contract (`../shared/smolvm-cli.md`):
//! dialects and feature queries (egress enforcement, `--secret-env`), and
//! nothing else. Versions are semver: a pre-release orders before its
//! release, so `1.8.0-rc.1` does not count as having the 1.8.0 egress fix.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A smolvm release.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(semver::Version);

/// The two argv dialects of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// 0.8.0 – 1.0.1: `create … NAME` and `delete -f NAME` take the name
    /// positionally.
    Positional,
    /// 1.0.2 – 1.9.x: `create --name NAME …` and `delete -f --name NAME`.
    NameFlag,
}

/// The first release whose `create --from` enforces its allow-list:
/// `--allow-cidr` and `--allow-host`, which earlier releases parse and then
/// drop alike (smolvm PR #892). `--allow-host` itself exists at `create` in
/// every release bottle speaks to (checked on 0.8.0 and 1.9.3), so no
/// threshold of its own is needed.
pub const EGRESS_FIXED: Version = Version::new(1, 8, 0);
/// The oldest release bottle speaks to.
pub const OLDEST: Version = Version::new(0, 8, 0);
/// The first release of the `--name` dialect.
pub const NAME_FLAG_SINCE: Version = Version::new(1, 0, 2);
/// The first release whose `exec` takes `--secret-env GUEST_VAR=HOST_VAR`.
pub const SECRET_ENV_SINCE: Version = Version::new(1, 0, 0);
/// The first release whose `cp` takes `--mode OCTAL` for an upload.
pub const CP_MODE_SINCE: Version = Version::new(1, 9, 0);
/// The first minor release bottle does not know (with its pre-releases).
pub const BEYOND: (u64, u64) = (1, 10);
pub const SUPPORTED: &str = "0.8.0 to 1.9.x";

impl Version {
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Version(semver::Version::new(major, minor, patch))
    }

    /// Parse `X.Y.Z[-pre][+build]`.
    pub fn parse(s: &str) -> Option<Self> {
        semver::Version::parse(s).ok().map(Version)
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
    pub fn dialect(&self) -> Option<Dialect> {
        let beyond = (self.0.major, self.0.minor) >= BEYOND;
        if *self < OLDEST || beyond {
            None
        } else if *self < NAME_FLAG_SINCE {
            Some(Dialect::Positional)
        } else {
            Some(Dialect::NameFlag)
        }
    }

    /// Whether `create --from` with `--allow-cidr` or `--allow-host` really
    /// restricts egress (and, through `--allow-host`, DNS).
    pub fn enforces_egress(&self) -> bool {
        *self >= EGRESS_FIXED
    }

    /// Whether `cp --mode OCTAL` sets an uploaded file's permission bits.
    pub fn has_cp_mode(&self) -> bool {
        *self >= CP_MODE_SINCE
    }

    /// Whether `exec --secret-env GUEST_VAR=HOST_VAR` exists: smolvm reads
    /// the value from its own environment, so it is on no command line and
    /// in no file.
    pub fn has_secret_env(&self) -> bool {
        *self >= SECRET_ENV_SINCE
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Version::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a version")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn reads_version_output() {
        assert_eq!(Version::from_output("smolvm 0.8.0\n"), Some(v("0.8.0")));
        assert_eq!(
            Version::from_output("\nsmolvm 1.9.3 (simulated)\n"),
            Some(v("1.9.3"))
        );
        assert_eq!(Version::from_output("smolvm v1.2.3"), Some(v("1.2.3")));
        assert_eq!(
            Version::from_output("smolvm 1.2.3-rc.1"),
            Some(v("1.2.3-rc.1"))
        );
        assert_eq!(Version::from_output("other 1.0.0"), None);
        assert_eq!(Version::from_output("smolvm one"), None);
        assert_eq!(Version::from_output("smolvm 1.2.3.4"), None);
        assert_eq!(Version::from_output(""), None);
    }

    #[test]
    fn dialects_follow_the_contract_table() {
        let d = |s| v(s).dialect();
        assert_eq!(d("0.7.9"), None);
        assert_eq!(d("0.8.0-rc.1"), None);
        assert_eq!(d("0.8.0"), Some(Dialect::Positional));
        assert_eq!(d("1.0.1"), Some(Dialect::Positional));
        assert_eq!(d("1.0.2-rc.1"), Some(Dialect::Positional));
        assert_eq!(d("1.0.2"), Some(Dialect::NameFlag));
        assert_eq!(d("1.9.99"), Some(Dialect::NameFlag));
        assert_eq!(d("1.10.0-rc.1"), None);
        assert_eq!(d("1.10.0"), None);
        assert_eq!(d("2.0.0"), None);
    }

    #[test]
    fn egress_is_enforced_from_1_8_0_and_not_by_its_pre_releases() {
        assert!(!v("1.7.7").enforces_egress());
        assert!(!v("0.8.0").enforces_egress());
        assert!(!v("1.8.0-rc.1").enforces_egress());
        assert!(v("1.8.0").enforces_egress());
        assert!(v("1.8.0+build.5").enforces_egress());
        assert!(v("1.9.3").enforces_egress());
    }

    #[test]
    fn secret_env_exists_from_1_0_0_and_not_in_its_pre_releases() {
        assert!(!v("0.8.0").has_secret_env());
        assert!(!v("0.9.9").has_secret_env());
        assert!(!v("1.0.0-rc.1").has_secret_env());
        assert!(v("1.0.0").has_secret_env());
        assert!(v("1.0.1").has_secret_env());
        assert!(v("1.9.3").has_secret_env());
    }

    #[test]
    fn versions_round_trip_through_json() {
        let json = serde_json::to_string(&v("1.8.0-rc.1")).unwrap();
        assert_eq!(json, "\"1.8.0-rc.1\"");
        assert_eq!(
            serde_json::from_str::<Version>(&json).unwrap(),
            v("1.8.0-rc.1")
        );
        assert!(serde_json::from_str::<Version>("\"1.8\"").is_err());
    }
}
