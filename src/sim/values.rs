//! Value parsers of the simulated grammar: what smolvm's own parsers
//! accept for a flag's value. A refusal here is a clap value error (exit
//! 2, `error: invalid value 'X' for '--flag <V>': …`).
//!
//! Owns the value rules of the contract (CIDRs, `KEY=VALUE`, humantime
//! durations, octal modes, allow-host names, machine names). It must not
//! reuse the wrapper's validators (bottle's `spec` module): bottle is
//! checked against these, not the other way round.

use std::net::IpAddr;
use std::time::Duration;

/// `--allow-cidr`: `IP/prefix`, or a bare IP widened to `/32` (IPv4) or
/// `/128` (IPv6). The value kept is the widened form.
pub fn cidr(s: &str) -> Result<String, String> {
    let bad = || "expected IP/prefix (e.g. 10.0.0.0/8) or an IP address".to_string();
    match s.split_once('/') {
        Some((ip, prefix)) => {
            let max = match ip.parse::<IpAddr>().map_err(|_| bad())? {
                IpAddr::V4(_) => 32,
                IpAddr::V6(_) => 128,
            };
            match prefix.parse::<u8>() {
                Ok(p) if p <= max => Ok(s.to_string()),
                _ => Err(bad()),
            }
        }
        None => match s.parse::<IpAddr>().map_err(|_| bad())? {
            IpAddr::V4(ip) => Ok(format!("{ip}/32")),
            IpAddr::V6(ip) => Ok(format!("{ip}/128")),
        },
    }
}

/// `-e/--env`: `KEY=VALUE` with a non-empty key.
pub fn env(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((k, _)) if !k.is_empty() => Ok(s.to_string()),
        _ => Err("expected KEY=VALUE".into()),
    }
}

/// `--timeout`: a humantime duration (`30s`, `5m`, `500ms`), not zero.
pub fn timeout(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("the timeout must not be zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// `cp --mode`: permission bits in octal (`644`, `0755`).
pub fn octal_mode(s: &str) -> Result<u32, String> {
    match u32::from_str_radix(s, 8) {
        Ok(m) if m <= 0o7777 => Ok(m),
        _ => Err("expected an octal mode such as 644".into()),
    }
}

/// `--allow-host`: a host name or an IP address; `host:port` is refused.
pub fn allow_host(s: &str) -> Result<String, String> {
    if s.parse::<IpAddr>().is_ok() {
        return Ok(s.to_string());
    }
    let label = |l: &str| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    match s.split('.').all(label) {
        true => Ok(s.to_string()),
        false => Err("expected a host name or an IP address (no port)".into()),
    }
}

/// A machine name as smolvm allows it: 1–128 characters, a letter or digit
/// first, then letters, digits, `-` and `_`; no `--`, no trailing `-`.
pub fn machine_name(s: &str) -> Result<String, String> {
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let ok = first_ok && rest_ok && s.len() <= 128 && !s.contains("--") && !s.ends_with('-');
    match ok {
        true => Ok(s.to_string()),
        false => Err("a machine name is 1-128 letters, digits, '-' and '_', starting with a letter or digit, without '--' or a trailing '-'".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cidr_is_ip_slash_prefix_or_a_bare_ip_widened() {
        assert_eq!(cidr("10.0.0.0/8").unwrap(), "10.0.0.0/8");
        assert_eq!(cidr("192.168.50.2").unwrap(), "192.168.50.2/32");
        assert_eq!(cidr("fd00::1").unwrap(), "fd00::1/128");
        assert_eq!(cidr("fd00::/64").unwrap(), "fd00::/64");
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "example.com",
            "10.0.0.0/",
            "/8",
            "",
        ] {
            assert!(cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_needs_a_key_and_an_equals_sign() {
        assert_eq!(env("K=").unwrap(), "K=");
        assert_eq!(env("K=a=b").unwrap(), "K=a=b");
        assert!(env("K").is_err());
        assert!(env("=v").is_err());
    }

    #[test]
    fn timeouts_are_humantime_and_never_zero() {
        assert_eq!(timeout("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(timeout("1m30s").unwrap(), Duration::from_secs(90));
        assert!(timeout("0s").is_err());
        assert!(timeout("soon").is_err());
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(octal_mode("644").unwrap(), 0o644);
        assert_eq!(octal_mode("0400").unwrap(), 0o400);
        assert!(octal_mode("999").is_err());
        assert!(octal_mode("rwx").is_err());
    }

    #[test]
    fn allow_hosts_are_names_or_addresses_without_ports() {
        assert!(allow_host("proxy.internal").is_ok());
        assert!(allow_host("10.1.2.3").is_ok());
        assert!(allow_host("fd00::1").is_ok());
        assert!(allow_host("proxy:8080").is_err());
        assert!(allow_host("a..b").is_err());
    }

    #[test]
    fn machine_names_follow_smolvm_s_rule() {
        for good in ["a", "agent-1", "A_b-c", "9lives", &"x".repeat(128)] {
            assert!(machine_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "_a", "a--b", "a-", "a.b", "a b", &"x".repeat(129)] {
            assert!(machine_name(bad).is_err(), "{bad}");
        }
    }
}
