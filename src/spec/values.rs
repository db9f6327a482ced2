//! Validated value types of a spec and the rules that admit them.
//!
//! Each rule is a pure function from text to a value or a message. Nothing
//! here knows about files or locations; `validate` attaches those.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

/// A smolvm machine name, valid by smolvm's own rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MachineName(String);

impl MachineName {
    pub const MAX_LEN: usize = 128;

    /// Admit `s` if smolvm would: 1–128 chars, first a letter or digit, then
    /// letters, digits, `-` and `_`, no `--`, no trailing `-`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let Some(first) = s.chars().next() else {
            return Err("must not be empty".into());
        };
        if s.chars().count() > Self::MAX_LEN {
            return Err(format!("is longer than {} characters", Self::MAX_LEN));
        }
        if !first.is_ascii_alphanumeric() {
            return Err("must start with a letter or digit".into());
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "may contain only letters, digits, `-` and `_` (found {bad:?})"
            ));
        }
        if s.contains("--") {
            return Err("must not contain `--`".into());
        }
        if s.ends_with('-') {
            return Err("must not end with `-`".into());
        }
        Ok(MachineName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MachineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Admit an OCI image reference: non-empty, no whitespace or control
/// characters, and not starting with `-` (it is passed as a flag's value).
pub fn image_ref(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.starts_with('-') {
        return Err("must not start with `-`".into());
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    Ok(s.to_string())
}

/// Admit a CIDR: `IP/prefix` without host bits set, or a bare IP (a single
/// host, as smolvm reads it: `/32` or `/128`).
pub fn cidr(s: &str) -> Result<IpNet, String> {
    if let Ok(net) = s.parse::<IpNet>() {
        let trunc = net.trunc();
        if trunc != net {
            return Err(format!("has host bits set; did you mean {trunc}?"));
        }
        return Ok(net);
    }
    match s.parse::<IpAddr>() {
        Ok(ip) => Ok(IpNet::from(ip)),
        Err(_) => Err(format!(
            "`{s}` is not a CIDR (expected e.g. `10.0.0.0/8` or `192.168.50.2/32`)"
        )),
    }
}

/// Admit an environment variable name: a POSIX name `[A-Za-z_][A-Za-z0-9_]*`.
pub fn env_key(s: &str) -> Result<String, String> {
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "`{s}` is not a valid variable name (letters, digits and `_`, not starting with a digit)"
        ));
    }
    Ok(s.to_string())
}

/// Admit an environment value: anything but NUL.
pub fn env_value(s: &str) -> Result<String, String> {
    if s.contains('\0') {
        return Err("must not contain a NUL character".into());
    }
    Ok(s.to_string())
}

/// Admit an absolute guest path.
pub fn guest_path(s: &str) -> Result<String, String> {
    if !s.starts_with('/') {
        return Err(format!(
            "`{s}` must be an absolute guest path (starting with `/`)"
        ));
    }
    if s.contains('\0') {
        return Err("must not contain a NUL character".into());
    }
    Ok(s.to_string())
}

/// Admit a duration such as `30s`, `2m` or `1h30m`, greater than zero.
pub fn duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration like \"30s\" or \"2m\" ({e})"))?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
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
            let err = MachineName::parse(bad).unwrap_err();
            assert!(err.contains(msg), "{bad}: {err}");
        }
        let long = MachineName::parse(&"a".repeat(129)).unwrap_err();
        assert_eq!(long, "is longer than 128 characters");
    }

    #[test]
    fn cidrs_parse_and_refuse_host_bits() {
        assert_eq!(cidr("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(cidr("192.168.50.2").unwrap().to_string(), "192.168.50.2/32");
        assert_eq!(cidr("fd00::1").unwrap().to_string(), "fd00::1/128");
        assert_eq!(
            cidr("10.0.0.1/8").unwrap_err(),
            "has host bits set; did you mean 10.0.0.0/8?"
        );
        assert!(cidr("10.0.0.0/33").unwrap_err().contains("is not a CIDR"));
        assert!(cidr("--net").unwrap_err().contains("is not a CIDR"));
    }

    #[test]
    fn env_keys_are_posix_names() {
        assert!(env_key("HTTPS_PROXY").is_ok());
        assert!(env_key("_x1").is_ok());
        for bad in ["", "1A", "A-B", "A=B", "-e"] {
            assert!(env_key(bad).is_err(), "{bad}");
        }
        assert_eq!(
            env_value("a\0b").unwrap_err(),
            "must not contain a NUL character"
        );
    }

    #[test]
    fn durations_need_a_unit_and_must_be_positive() {
        assert_eq!(duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(duration("0s").unwrap_err(), "must be greater than zero");
        assert!(duration("30").unwrap_err().contains("is not a duration"));
        assert!(duration("soon").unwrap_err().contains("is not a duration"));
    }

    #[test]
    fn image_refs_and_guest_paths_cannot_be_flags() {
        assert!(image_ref("bot-bottle-claude:latest").is_ok());
        assert_eq!(image_ref("--help").unwrap_err(), "must not start with `-`");
        assert!(image_ref("a b").is_err());
        assert!(guest_path("/workspace").is_ok());
        assert!(guest_path("workspace").unwrap_err().contains("absolute"));
    }
}
