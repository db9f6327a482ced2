//! The simulator's settings, read from `SMOLVM_SIM_*` environment variables.
//!
//! Owns the knobs and their syntax. It must not read bottle's settings or
//! version tables; the version it claims is parsed here with `semver`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use semver::Version;

/// When a fault fires: on every call of a step, or on its n-th call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    Nth(u32),
}

impl When {
    pub fn fires(self, count: u32) -> bool {
        match self {
            When::Always => true,
            When::Nth(n) => n == count,
        }
    }
}

/// Settings of one simulated smolvm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knobs {
    pub home: PathBuf,
    /// `SMOLVM_SIM_VERSION`: the smolvm release it plays (semver; a
    /// pre-release orders before its release).
    pub version: Version,
    /// `SMOLVM_SIM_FAIL=step[@n],…`: exit 1 on those calls.
    pub fail: BTreeMap<String, When>,
    /// `SMOLVM_SIM_HANG=step[@n],…`: never return from those calls.
    pub hang: BTreeMap<String, When>,
    /// `SMOLVM_SIM_READY_AFTER=k`: the first k probes after a start fail.
    pub ready_after: u32,
    /// `SMOLVM_SIM_READY_MS`: how long after `start` returns the guest
    /// agent starts answering.
    pub ready_in: Duration,
    /// `SMOLVM_SIM_BOOT_MS`: how long `start` takes.
    pub boot: Duration,
    /// `SMOLVM_SIM_LATENCY_MS`: how long every call takes.
    pub latency: Duration,
    /// `SMOLVM_SIM_HOSTS=name=ip,…`: the host names `--allow-host` can
    /// resolve (the simulator never asks a real resolver).
    pub hosts: BTreeMap<String, IpAddr>,
}

/// The version the simulator claims by default.
pub const DEFAULT_VERSION: Version = Version::new(1, 9, 3);

/// The step names fault injection knows.
pub const STEPS: [&str; 10] = [
    "pack", "create", "start", "stop", "delete", "probe", "exec", "cp", "status", "ls",
];

/// Parse `step[@n],…`.
pub fn parse_faults(s: &str) -> Result<BTreeMap<String, When>, String> {
    let mut out = BTreeMap::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (step, when) = match item.split_once('@') {
            Some((step, n)) => {
                let n = n
                    .parse::<u32>()
                    .map_err(|_| format!("bad call number in `{item}`"))?;
                (step, When::Nth(n))
            }
            None => (item, When::Always),
        };
        if !STEPS.contains(&step) {
            return Err(format!(
                "unknown step `{step}` (known: {})",
                STEPS.join(", ")
            ));
        }
        out.insert(step.to_string(), when);
    }
    Ok(out)
}

/// Parse `name=ip,…`.
pub fn parse_hosts(s: &str) -> Result<BTreeMap<String, IpAddr>, String> {
    let mut out = BTreeMap::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let parsed = item
            .split_once('=')
            .and_then(|(name, ip)| Some((name.trim(), ip.trim().parse::<IpAddr>().ok()?)));
        match parsed {
            Some((name, ip)) if !name.is_empty() => out.insert(name.to_string(), ip),
            _ => return Err(format!("expected name=ip, got `{item}`")),
        };
    }
    Ok(out)
}

fn millis(var: &str) -> Result<Duration, String> {
    match std::env::var(var) {
        Ok(v) => v
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| format!("{var}: expected milliseconds, got `{v}`")),
        Err(_) => Ok(Duration::ZERO),
    }
}

fn default_home() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    state.join("smolvm-sim")
}

impl Knobs {
    /// Settings for an in-process simulator rooted at `home`, playing
    /// smolvm `version`, with no faults, delays or host names.
    pub fn new(home: PathBuf, version: Version) -> Self {
        Knobs {
            home,
            version,
            fail: BTreeMap::new(),
            hang: BTreeMap::new(),
            ready_after: 0,
            ready_in: Duration::ZERO,
            boot: Duration::ZERO,
            latency: Duration::ZERO,
            hosts: BTreeMap::new(),
        }
    }

    /// Settings from the environment.
    pub fn from_env() -> Result<Self, String> {
        let home = std::env::var_os("SMOLVM_SIM_HOME").map_or_else(default_home, PathBuf::from);
        let version = match std::env::var("SMOLVM_SIM_VERSION") {
            Ok(v) => Version::parse(&v)
                .map_err(|e| format!("SMOLVM_SIM_VERSION: bad version `{v}`: {e}"))?,
            Err(_) => DEFAULT_VERSION,
        };
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        let ready_after = match std::env::var("SMOLVM_SIM_READY_AFTER") {
            Ok(v) => v
                .parse()
                .map_err(|_| format!("SMOLVM_SIM_READY_AFTER: bad count `{v}`"))?,
            Err(_) => 0,
        };
        Ok(Knobs {
            home,
            version,
            fail: parse_faults(&var("SMOLVM_SIM_FAIL"))
                .map_err(|e| format!("SMOLVM_SIM_FAIL: {e}"))?,
            hang: parse_faults(&var("SMOLVM_SIM_HANG"))
                .map_err(|e| format!("SMOLVM_SIM_HANG: {e}"))?,
            ready_after,
            ready_in: millis("SMOLVM_SIM_READY_MS")?,
            boot: millis("SMOLVM_SIM_BOOT_MS")?,
            latency: millis("SMOLVM_SIM_LATENCY_MS")?,
            hosts: parse_hosts(&var("SMOLVM_SIM_HOSTS"))
                .map_err(|e| format!("SMOLVM_SIM_HOSTS: {e}"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_lists_parse() {
        let f = parse_faults("create, exec@2").unwrap();
        assert_eq!(f["create"], When::Always);
        assert_eq!(f["exec"], When::Nth(2));
        assert!(parse_faults("bogus").unwrap_err().contains("unknown step"));
        assert!(
            parse_faults("exec@x")
                .unwrap_err()
                .contains("bad call number")
        );
        assert!(parse_faults("").unwrap().is_empty());
    }

    #[test]
    fn host_lists_parse() {
        let h = parse_hosts("proxy.internal=192.168.50.2, v6=fd00::1").unwrap();
        assert_eq!(h["proxy.internal"].to_string(), "192.168.50.2");
        assert_eq!(h["v6"].to_string(), "fd00::1");
        assert!(parse_hosts("").unwrap().is_empty());
        assert!(parse_hosts("proxy").unwrap_err().contains("name=ip"));
        assert!(parse_hosts("proxy=nowhere").is_err());
        assert!(parse_hosts("=1.2.3.4").is_err());
    }
}
