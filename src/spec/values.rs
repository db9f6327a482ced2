//! Validated value types of a spec and the rules that admit them.
//!
//! Each type admits only what smolvm accepts and what cannot be read as a
//! smolvm flag or split as `machine:path`; later stages (the wrapper's argv
//! builder included) take these types, never raw strings. Each rule is a
//! pure function from text to a value or a typed [`ValueError`]. Nothing
//! here knows about files or locations; `validate` attaches those.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

/// Why a value was refused. The message never repeats the key; `validate`
/// puts it under the value's location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("must not be empty")]
    Empty,
    #[error("is longer than {max} characters")]
    TooLong { max: usize },
    #[error("must start with a letter or digit")]
    BadStart,
    #[error("may contain only letters, digits, `-` and `_` (found {found:?})")]
    BadChar { found: char },
    #[error("must not contain `--`")]
    DoubleDash,
    #[error("must not end with `-`")]
    TrailingDash,
    #[error("must not start with `-`")]
    LeadingDash,
    #[error("must not contain spaces or control characters")]
    SpaceOrControl,
    #[error("has host bits set; did you mean {0}?")]
    HostBits(IpNet),
    #[error("`{0}` is not a CIDR (expected e.g. `10.0.0.0/8` or `192.168.50.2/32`)")]
    NotCidr(String),
    #[error(
        "`{0}` is not a valid variable name (letters, digits and `_`, not starting with a digit)"
    )]
    NotVarName(String),
    #[error("must not contain a NUL character")]
    Nul,
    #[error("`{0}` must be an absolute guest path (starting with `/`)")]
    NotAbsolute(String),
    #[error("`{text}` is not a duration like \"30s\" or \"2m\" ({detail})")]
    NotDuration { text: String, detail: String },
    #[error("must be greater than zero")]
    Zero,
    #[error("{0} is not a UTF-8 path")]
    NotUtf8(PathBuf),
    #[error("{0} contains `:`, which smolvm's `cp` reads as a machine name")]
    Colon(String),
    #[error("{0} is not an absolute path")]
    Relative(String),
    #[error("`{0}` is an address, not a host name: put it in `network.allow_cidrs`")]
    HostIsAddress(String),
    #[error(
        "`{0}` has a port: give the host name alone (smolvm allows every port of an allowed host)"
    )]
    HostPort(String),
    #[error(
        "`{0}` is not a host name (dot-separated labels of 1-63 letters, digits and `-`, \
         not starting or ending with `-`, the last not all digits; e.g. `proxy.internal`)"
    )]
    NotHostName(String),
}

/// A newtype over `String` whose `Debug` is the string's own, so that types
/// holding it print (and hash) as they did when they held a `String`.
macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

text_type!(
    /// A smolvm machine name, valid by smolvm's own rule.
    MachineName
);
text_type!(
    /// An absolute guest path (it starts with `/`, so it is never a flag).
    GuestPath
);
text_type!(
    /// An environment variable name: a POSIX name `[A-Za-z_][A-Za-z0-9_]*`.
    EnvKey
);
text_type!(
    /// An OCI image reference that cannot be read as a flag.
    ImageRef
);
text_type!(
    /// A DNS host name as smolvm's `--allow-host` takes it, lowercased
    /// (smolvm compares the names a guest asks for in lowercase).
    HostName
);
text_type!(
    /// An absolute, UTF-8 host path without `:`, as smolvm's `cp` can take
    /// it (it splits its arguments at the first `:`).
    HostPath
);

impl MachineName {
    pub const MAX_LEN: usize = 128;

    /// Admit `s` if smolvm would: 1–128 chars, first a letter or digit, then
    /// letters, digits, `-` and `_`, no `--`, no trailing `-`.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let Some(first) = s.chars().next() else {
            return Err(ValueError::Empty);
        };
        if s.chars().count() > Self::MAX_LEN {
            return Err(ValueError::TooLong { max: Self::MAX_LEN });
        }
        if !first.is_ascii_alphanumeric() {
            return Err(ValueError::BadStart);
        }
        if let Some(found) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(ValueError::BadChar { found });
        }
        if s.contains("--") {
            return Err(ValueError::DoubleDash);
        }
        if s.ends_with('-') {
            return Err(ValueError::TrailingDash);
        }
        Ok(MachineName(s.to_string()))
    }
}

impl ImageRef {
    /// Admit an OCI image reference: non-empty, no whitespace or control
    /// characters, and not starting with `-` (it is passed as a flag's value).
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if s.is_empty() {
            return Err(ValueError::Empty);
        }
        if s.starts_with('-') {
            return Err(ValueError::LeadingDash);
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ValueError::SpaceOrControl);
        }
        Ok(ImageRef(s.to_string()))
    }
}

impl EnvKey {
    /// Admit a POSIX variable name.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let mut chars = s.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ValueError::NotVarName(s.to_string()));
        }
        Ok(EnvKey(s.to_string()))
    }
}

impl GuestPath {
    /// Admit an absolute guest path without NUL.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if !s.starts_with('/') {
            return Err(ValueError::NotAbsolute(s.to_string()));
        }
        if s.contains('\0') {
            return Err(ValueError::Nul);
        }
        Ok(GuestPath(s.to_string()))
    }

    /// `self/name` (a child entry; `name` must not contain NUL).
    pub fn join(&self, name: &str) -> Result<Self, ValueError> {
        GuestPath::parse(&format!("{}/{name}", self.0.trim_end_matches('/')))
    }

    /// `self/KEY`: a variable name is always a valid file name.
    pub fn child(&self, key: &EnvKey) -> Self {
        GuestPath(format!("{}/{key}", self.0.trim_end_matches('/')))
    }

    /// A guest path bottle itself chose (absolute, no NUL, by construction).
    pub(crate) fn internal(s: String) -> Self {
        debug_assert!(s.starts_with('/') && !s.contains('\0'), "{s}");
        GuestPath(s)
    }
}

impl HostName {
    /// The longest DNS name (RFC 1035), without a trailing dot.
    pub const MAX_LEN: usize = 253;

    /// Admit a host name (RFC 1123 labels), lowercased. An IP address, a
    /// `host:port` and a trailing dot are refused: an address belongs in
    /// `allow_cidrs`, smolvm refuses ports, and smolvm matches names
    /// without their trailing dot.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if s.is_empty() {
            return Err(ValueError::Empty);
        }
        if s.parse::<IpAddr>().is_ok() {
            return Err(ValueError::HostIsAddress(s.to_string()));
        }
        if let Some((_, port)) = s.rsplit_once(':')
            && !port.is_empty()
            && port.chars().all(|c| c.is_ascii_digit())
        {
            return Err(ValueError::HostPort(s.to_string()));
        }
        if s.len() > Self::MAX_LEN {
            return Err(ValueError::TooLong { max: Self::MAX_LEN });
        }
        let labels: Vec<&str> = s.split('.').collect();
        let last_numeric = labels
            .last()
            .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()));
        if last_numeric || !labels.iter().all(|l| host_label(l)) {
            return Err(ValueError::NotHostName(s.to_string()));
        }
        Ok(HostName(s.to_ascii_lowercase()))
    }
}

/// One label of a host name: 1-63 letters, digits and `-`, not starting or
/// ending with `-`.
fn host_label(l: &str) -> bool {
    let chars_ok = l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    (1..=63).contains(&l.len()) && chars_ok && !l.starts_with('-') && !l.ends_with('-')
}

impl HostPath {
    /// Admit an absolute host path that is UTF-8 and free of `:`.
    pub fn parse(path: &Path) -> Result<Self, ValueError> {
        let Some(s) = path.to_str() else {
            return Err(ValueError::NotUtf8(path.to_path_buf()));
        };
        if !path.is_absolute() {
            return Err(ValueError::Relative(s.to_string()));
        }
        if s.contains(':') {
            return Err(ValueError::Colon(s.to_string()));
        }
        Ok(HostPath(s.to_string()))
    }

    pub fn as_path(&self) -> &Path {
        Path::new(&self.0)
    }
}

/// One `KEY=VALUE` pair of a guest environment. Its `Debug` is that of the
/// `(key, value)` tuple it replaced.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnvVar {
    pub key: EnvKey,
    pub value: String,
}

impl EnvVar {
    /// Admit a value: anything but NUL.
    pub fn new(key: EnvKey, value: &str) -> Result<Self, ValueError> {
        if value.contains('\0') {
            return Err(ValueError::Nul);
        }
        Ok(EnvVar {
            key,
            value: value.to_string(),
        })
    }
}

impl fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("")
            .field(&self.key.as_str())
            .field(&self.value)
            .finish()
    }
}

impl fmt::Display for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// Admit an environment value: anything but NUL.
pub fn env_value(s: &str) -> Result<String, ValueError> {
    if s.contains('\0') {
        return Err(ValueError::Nul);
    }
    Ok(s.to_string())
}

/// Admit a CIDR: `IP/prefix` without host bits set, or a bare IP (a single
/// host, as smolvm reads it: `/32` or `/128`).
pub fn cidr(s: &str) -> Result<IpNet, ValueError> {
    if let Ok(net) = s.parse::<IpNet>() {
        let trunc = net.trunc();
        if trunc != net {
            return Err(ValueError::HostBits(trunc));
        }
        return Ok(net);
    }
    match s.parse::<IpAddr>() {
        Ok(ip) => Ok(IpNet::from(ip)),
        Err(_) => Err(ValueError::NotCidr(s.to_string())),
    }
}

/// Admit a duration such as `30s`, `2m` or `1h30m`, greater than zero.
pub fn duration(s: &str) -> Result<Duration, ValueError> {
    let d = humantime::parse_duration(s).map_err(|e| ValueError::NotDuration {
        text: s.to_string(),
        detail: e.to_string(),
    })?;
    if d.is_zero() {
        return Err(ValueError::Zero);
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names_follow_smolvm_rule() {
        for ok in ["a", "agent-xyz", "A_1", "9lives", &"a".repeat(128)] {
            assert!(MachineName::parse(ok).is_ok(), "{ok}");
        }
        let cases = [
            ("", "must not be empty"),
            ("-a", "must start with a letter or digit"),
            ("_a", "must start with a letter or digit"),
            ("a--b", "must not contain `--`"),
            ("a-", "must not end with `-`"),
            (
                "a/b",
                "may contain only letters, digits, `-` and `_` (found '/')",
            ),
            ("a b", "may contain only"),
        ];
        for (bad, msg) in cases {
            let err = MachineName::parse(bad).unwrap_err().to_string();
            assert!(err.contains(msg), "{bad}: {err}");
        }
        let long = MachineName::parse(&"a".repeat(129))
            .unwrap_err()
            .to_string();
        assert_eq!(long, "is longer than 128 characters");
    }

    #[test]
    fn cidrs_parse_and_refuse_host_bits() {
        assert_eq!(cidr("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(cidr("192.168.50.2").unwrap().to_string(), "192.168.50.2/32");
        assert_eq!(cidr("fd00::1").unwrap().to_string(), "fd00::1/128");
        assert_eq!(
            cidr("10.0.0.1/8").unwrap_err().to_string(),
            "has host bits set; did you mean 10.0.0.0/8?"
        );
        assert_eq!(
            cidr("10.0.0.0/33").unwrap_err(),
            ValueError::NotCidr("10.0.0.0/33".into())
        );
        assert_eq!(
            cidr("--net").unwrap_err(),
            ValueError::NotCidr("--net".into())
        );
    }

    #[test]
    fn env_keys_are_posix_names() {
        assert!(EnvKey::parse("HTTPS_PROXY").is_ok());
        assert!(EnvKey::parse("_x1").is_ok());
        for bad in ["", "1A", "A-B", "A=B", "-e"] {
            assert_eq!(EnvKey::parse(bad), Err(ValueError::NotVarName(bad.into())));
        }
        assert_eq!(env_value("a\0b").unwrap_err(), ValueError::Nul);
        let var = EnvVar::new(EnvKey::parse("A").unwrap(), "b=c").unwrap();
        assert_eq!(var.to_string(), "A=b=c");
        assert_eq!(format!("{var:?}"), format!("{:?}", ("A", "b=c")));
    }

    #[test]
    fn durations_need_a_unit_and_must_be_positive() {
        assert_eq!(duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(duration("0s").unwrap_err(), ValueError::Zero);
        assert!(matches!(
            duration("30"),
            Err(ValueError::NotDuration { .. })
        ));
        assert!(matches!(
            duration("soon"),
            Err(ValueError::NotDuration { .. })
        ));
    }

    #[test]
    fn image_refs_and_guest_paths_cannot_be_flags() {
        assert!(ImageRef::parse("bot-bottle-claude:latest").is_ok());
        assert_eq!(ImageRef::parse("--help"), Err(ValueError::LeadingDash));
        assert_eq!(ImageRef::parse("a b"), Err(ValueError::SpaceOrControl));
        assert!(GuestPath::parse("/workspace").is_ok());
        assert_eq!(
            GuestPath::parse("workspace"),
            Err(ValueError::NotAbsolute("workspace".into()))
        );
        assert_eq!(
            GuestPath::parse("/w/").unwrap().join("a").unwrap().as_str(),
            "/w/a"
        );
    }

    #[test]
    fn host_names_are_rfc_1123_names_lowercased() {
        for (ok, as_given) in [
            ("proxy", "proxy"),
            ("Proxy.Internal", "proxy.internal"),
            ("a-1.example.com", "a-1.example.com"),
            ("9lives.example", "9lives.example"),
        ] {
            assert_eq!(HostName::parse(ok).unwrap().as_str(), as_given);
        }
        let long = format!("{}.com", vec!["a".repeat(63); 4].join("."));
        assert_eq!(
            HostName::parse(&long),
            Err(ValueError::TooLong { max: 253 })
        );
        assert!(HostName::parse(&"a".repeat(63)).is_ok());
        assert!(HostName::parse(&"a".repeat(64)).is_err());
        assert_eq!(HostName::parse(""), Err(ValueError::Empty));
        for addr in ["10.0.0.1", "fd00::1", "::1"] {
            assert_eq!(
                HostName::parse(addr),
                Err(ValueError::HostIsAddress(addr.into()))
            );
        }
        for port in ["proxy:8080", "proxy.internal:3128", "[::1]:80"] {
            assert_eq!(
                HostName::parse(port),
                Err(ValueError::HostPort(port.into()))
            );
        }
        for bad in [
            "proxy.",
            ".proxy",
            "a..b",
            "-a.b",
            "a-.b",
            "a_b",
            "a b",
            "--net",
            "10.0.0",
            "a.1",
            "proxy:",
            "ex\u{e4}mple.com",
        ] {
            assert_eq!(
                HostName::parse(bad),
                Err(ValueError::NotHostName(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn host_paths_are_absolute_utf8_and_colon_free() {
        assert_eq!(HostPath::parse(Path::new("/a/b")).unwrap().as_str(), "/a/b");
        assert_eq!(
            HostPath::parse(Path::new("/a:b")),
            Err(ValueError::Colon("/a:b".into()))
        );
        assert_eq!(
            HostPath::parse(Path::new("a")),
            Err(ValueError::Relative("a".into()))
        );
    }
}
