//! What a `create`'s network really allows, decided from its flags and the
//! release, and the resolution of `--allow-host` names.
//!
//! Owns the egress rules of the contract: `--allow-host` implies `--net`;
//! `--allow-cidr` implies it too except on the `--from` path; `create
//! --from` drops the whole list before 1.8.0 (so `--net` gives open
//! egress); the TSI backend (up to 1.1.2) enforces no list at all. Names
//! resolve only through `SMOLVM_SIM_HOSTS`; a bare IP is taken as is. It
//! must not consult the wrapper's egress table (`enforces_egress`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::cmd::Create;
use super::release::{Backend, FromEgress, Release};
use super::world::Egress;

/// The network of a machine being created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    /// What `status` shows as `network`.
    pub on: bool,
    pub egress: Egress,
}

/// Resolve one `--allow-host` value, or say why it does not resolve.
pub fn resolve(host: &str, known: &BTreeMap<String, IpAddr>) -> Result<IpAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    known
        .get(host)
        .copied()
        .ok_or_else(|| "no such host (smolvm-sim resolves only SMOLVM_SIM_HOSTS)".to_string())
}

/// The network `c` gets on `release`.
pub fn decide(c: &Create, release: &Release) -> Network {
    let dropped = c.from.is_some() && release.egress_on_from() == FromEgress::Dropped;
    let has_list = !c.cidrs.is_empty() || !c.hosts.is_empty();
    let implied = !c.hosts.is_empty() || (!c.cidrs.is_empty() && c.from.is_none());
    let on = c.net || (implied && !dropped);
    let enforced = has_list && !dropped && release.backend() == Backend::VirtioNet;
    let egress = match (on, enforced) {
        (false, _) => Egress::None,
        (true, true) => Egress::AllowList,
        (true, false) => Egress::Open,
    };
    Network { on, egress }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(from: bool, net: bool, cidrs: &[&str], hosts: &[&str]) -> Create {
        Create {
            name: "vm".into(),
            from: from.then(|| "/p.smolmachine".to_string()),
            net,
            cidrs: cidrs.iter().map(|c| c.to_string()).collect(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            ..Create::default()
        }
    }

    fn on(v: &str, c: &Create) -> (bool, Egress) {
        let n = decide(c, &Release(semver::Version::parse(v).unwrap()));
        (n.on, n.egress)
    }

    #[test]
    fn from_drops_the_list_before_1_8_0_and_net_opens_everything() {
        let c = create(true, true, &["10.0.0.0/8"], &[]);
        assert_eq!(on("1.7.9", &c), (true, Egress::Open));
        assert_eq!(on("1.8.0-rc.1", &c), (true, Egress::Open));
        assert_eq!(on("1.8.0", &c), (true, Egress::AllowList));
        let hosts = create(true, true, &[], &["proxy"]);
        assert_eq!(on("1.7.9", &hosts), (true, Egress::Open));
        assert_eq!(on("1.8.0", &hosts), (true, Egress::AllowList));
    }

    #[test]
    fn on_the_from_path_a_dropped_list_does_not_turn_networking_on() {
        assert_eq!(
            on("0.8.0", &create(true, false, &["10.0.0.0/8"], &[])),
            (false, Egress::None)
        );
        assert_eq!(
            on("1.7.9", &create(true, false, &[], &["proxy"])),
            (false, Egress::None)
        );
        assert_eq!(
            on("1.8.0", &create(true, false, &[], &["proxy"])),
            (true, Egress::AllowList)
        );
    }

    #[test]
    fn tsi_enforces_no_list_up_to_1_1_2() {
        let c = create(false, true, &["10.0.0.0/8"], &[]);
        assert_eq!(on("1.1.2", &c), (true, Egress::Open));
        assert_eq!(on("1.1.3", &c), (true, Egress::AllowList));
    }

    #[test]
    fn no_list_means_open_with_net_and_none_without() {
        assert_eq!(
            on("1.9.3", &create(false, true, &[], &[])),
            (true, Egress::Open)
        );
        assert_eq!(
            on("1.9.3", &create(false, false, &[], &[])),
            (false, Egress::None)
        );
        assert_eq!(
            on("1.9.3", &create(false, false, &["10.0.0.0/8"], &[])),
            (true, Egress::AllowList)
        );
    }

    #[test]
    fn hosts_resolve_from_the_knob_or_as_addresses() {
        let known = [("proxy".to_string(), "192.168.50.2".parse().unwrap())].into();
        assert_eq!(
            resolve("proxy", &known).unwrap().to_string(),
            "192.168.50.2"
        );
        assert_eq!(resolve("10.1.2.3", &known).unwrap().to_string(), "10.1.2.3");
        assert!(
            resolve("elsewhere", &known)
                .unwrap_err()
                .contains("SMOLVM_SIM_HOSTS")
        );
    }
}
