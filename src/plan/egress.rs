//! The egress rule: an allow-list is the sandbox, so a VM's network is never
//! wider than its spec says without the user saying so, and an allow-list
//! that does not mean what it says is called out.
//!
//! Pure: from a spec (and a smolvm version) to what the VM's network will
//! be. [`Egress`] says whether smolvm enforces the allow-list; [`DnsRule`] what
//! the guest's name queries get, and the `--allow-host` values that make it
//! so; [`Finding`] the allow-list entries that do not mean what they say;
//! [`line`] the `egress:` line that `plan` and `apply` print. Refusing an
//! unenforced allow-list is the apply's decision, from [`Egress`]. Must not
//! print, and must not take smolvm release knowledge from anywhere but
//! `smolvm::version`.
//!
//! # DNS
//!
//! smolvm forwards a guest's DNS queries to the host's resolver, without
//! applying the allow-list, unless `create` was given `--allow-host`; with
//! it, only those names (and names under them) are answered, every other
//! query gets NXDOMAIN. So DNS is part of the allow-list:
//!
//! - `allow_hosts`: those names are passed as `--allow-host` ([`DnsRule::Only`]).
//! - Otherwise, DNS is closed ([`DnsRule::Closed`]): bottle passes
//!   `--allow-host` the address of the first `allow_cidrs` entry (its
//!   network address: `192.168.50.2` for `192.168.50.2/32`, `10.0.0.0` for
//!   `10.0.0.0/8`). smolvm adds an address as its own /32 or /128, already
//!   inside that entry, so egress does not grow; and no name a guest asks
//!   for is that address, so every query gets NXDOMAIN.
//! - `dns = "open"`: no `--allow-host`, every query is answered
//!   ([`DnsRule::Open`]).
//!
//! # Findings
//!
//! An entry wider than /[`WIDEST_V4`] (IPv4) or /[`WIDEST_V6`] (IPv6),
//! `0.0.0.0/0` and `::/0` included, makes egress effectively unrestricted.
//! An entry inside `127.0.0.0/8`, or `::1`, lets the guest reach nothing on
//! the host: loopback is the guest's own. smolvm's virtio-net guest reaches
//! the host through its gateway address ([`GATEWAY`]), which smolvm relays
//! to the host's loopback after checking the allow-list against the gateway
//! address (read in smolvm's sources, `crates/smolvm-network`, not verified
//! on a VM).

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

use crate::smolvm::Version;
use crate::smolvm::argv::AllowHost;
use crate::smolvm::version::EGRESS_FIXED;
use crate::spec::{self, HostName, Spec};

/// An IPv4 entry with a shorter prefix reaches so much of the address space
/// that egress is effectively unrestricted (a /8 is 1/256 of it).
pub const WIDEST_V4: u8 = 8;
/// An IPv6 entry with a shorter prefix is effectively unrestricted (a /32
/// is a whole provider's allocation).
pub const WIDEST_V6: u8 = 32;
/// The address a smolvm 1.x virtio-net guest reaches the host at: its
/// gateway (`100.96.0.1/30`, the guest being `100.96.0.2`, in smolvm 1.9's
/// sources).
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(100, 96, 0, 1);
/// IPv4 loopback (IPv6's is the one address `::1`).
const LOOPBACK_V4: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8);

/// What the VM's network will be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// No allow-list (neither `allow_cidrs` nor `allow_hosts`): no network
    /// at all.
    None,
    /// The allow-list is enforced by this smolvm.
    Enforced,
    /// This smolvm drops the allow-list (`--allow-cidr` and `--allow-host`)
    /// on `create --from`: egress would be unrestricted.
    Unenforced,
}

/// The egress of `spec` on smolvm `version`.
pub fn egress(spec: &Spec, version: &Version) -> Egress {
    match (spec.has_allow_list(), version.enforces_egress()) {
        (false, _) => Egress::None,
        (true, true) => Egress::Enforced,
        (true, false) => Egress::Unenforced,
    }
}

impl Egress {
    /// The warning every run prints when egress is not enforced.
    pub fn warning(self, name: &str, version: &Version) -> Option<String> {
        match self {
            Egress::None | Egress::Enforced => None,
            Egress::Unenforced => Some(format!(
                "warning: egress of `{name}` is UNRESTRICTED: smolvm {version} drops \
                 the allow-list (--allow-cidr, --allow-host) on `create --from` (fixed in \
                 {EGRESS_FIXED})"
            )),
        }
    }
}

/// What the guest's DNS queries get, when smolvm enforces the allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsRule<'a> {
    /// No allow-list: no network, nothing to resolve.
    None,
    /// Every query gets NXDOMAIN: `--allow-host` is given `via`, an address
    /// inside the first `allow_cidrs` entry.
    Closed { via: IpAddr },
    /// Only these names and the names under them resolve (`allow_hosts`).
    Only(&'a [HostName]),
    /// Every query is answered by the host's resolver (`dns = "open"`).
    Open,
}

/// The DNS rule of `spec` (see the module doc).
pub fn dns(spec: &Spec) -> DnsRule<'_> {
    match (
        spec.allow_cidrs.first(),
        spec.allow_hosts.is_empty(),
        spec.dns(),
    ) {
        (None, true, _) => DnsRule::None,
        (_, false, _) => DnsRule::Only(&spec.allow_hosts),
        (Some(first), true, spec::Dns::Closed) => DnsRule::Closed {
            via: first.network(),
        },
        (Some(_), true, spec::Dns::Open) => DnsRule::Open,
    }
}

impl<'a> DnsRule<'a> {
    /// What `create` is given as `--allow-host`.
    pub fn allow_hosts(&self) -> Vec<AllowHost<'a>> {
        match *self {
            DnsRule::None | DnsRule::Open => Vec::new(),
            DnsRule::Closed { via } => vec![AllowHost::Addr(via)],
            DnsRule::Only(names) => names.iter().map(AllowHost::Name).collect(),
        }
    }

    /// The rule in words, for the `egress:` line.
    fn describe(&self) -> String {
        match self {
            DnsRule::None => "none".into(),
            DnsRule::Closed { .. } => "closed".into(),
            DnsRule::Only(names) => format!("only {}", join(names.iter())),
            DnsRule::Open => "open".into(),
        }
    }
}

/// The `egress:` line of `plan` and `apply`: where the VM may connect, and
/// what its DNS answers.
pub fn line(spec: &Spec, egress: Egress) -> String {
    let list = join(
        spec.allow_cidrs
            .iter()
            .map(ToString::to_string)
            .chain(spec.allow_hosts.iter().map(ToString::to_string)),
    );
    match egress {
        Egress::None => "none (no network)".into(),
        Egress::Enforced => format!("only to {list}; DNS: {}", dns(spec).describe()),
        Egress::Unenforced => {
            format!("UNRESTRICTED (allow-list {list} is not enforced); DNS: open")
        }
    }
}

fn join<T: ToString>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

/// An allow-list entry that does not mean what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// `network.allow_cidrs[index]` is wider than /[`WIDEST_V4`] or
    /// /[`WIDEST_V6`]: egress is effectively unrestricted.
    TooWide { index: usize, net: IpNet },
    /// `network.allow_cidrs[index]` is loopback, the guest's own: it lets
    /// the VM reach nothing on the host.
    Loopback { index: usize, net: IpNet },
}

/// Every finding of `spec`'s allow-list, in list order.
pub fn findings(spec: &Spec) -> Vec<Finding> {
    let entries = spec.allow_cidrs.iter().enumerate();
    entries.filter_map(|(i, net)| finding(i, *net)).collect()
}

/// The finding of one entry, if any; too wide wins over loopback.
fn finding(index: usize, net: IpNet) -> Option<Finding> {
    match net {
        IpNet::V4(n) if n.prefix_len() < WIDEST_V4 => Some(Finding::TooWide { index, net }),
        IpNet::V6(n) if n.prefix_len() < WIDEST_V6 => Some(Finding::TooWide { index, net }),
        IpNet::V4(n) if LOOPBACK_V4.contains(&n) => Some(Finding::Loopback { index, net }),
        IpNet::V6(n) if n.prefix_len() == 128 && n.addr().is_loopback() => {
            Some(Finding::Loopback { index, net })
        }
        IpNet::V4(_) | IpNet::V6(_) => None,
    }
}

impl Finding {
    /// The warning `plan` and `apply` print for it.
    pub fn warning(&self, name: &str) -> String {
        match *self {
            Finding::TooWide { index, net } => {
                let (limit, family) = match net {
                    IpNet::V4(_) => (WIDEST_V4, "IPv4"),
                    IpNet::V6(_) => (WIDEST_V6, "IPv6"),
                };
                format!(
                    "warning: egress of `{name}` is effectively UNRESTRICTED: \
                     network.allow_cidrs[{index}] = {net} is wider than /{limit} ({family})"
                )
            }
            Finding::Loopback { index, net } => format!(
                "warning: network.allow_cidrs[{index}] = {net} lets `{name}` reach nothing on \
                 the host: loopback is the guest's own. smolvm's guest reaches the host at its \
                 gateway ({GATEWAY} in smolvm 1.9); allow {GATEWAY}/32 to reach a proxy \
                 listening on the host's loopback"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn spec(network: &str) -> Spec {
        let text = format!("name = \"a\"\n[image]\nref = \"i\"\n[network]\n{network}");
        crate::spec::parse(Path::new("/s.toml"), &text).unwrap()
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn only_an_unenforced_allow_list_warns_and_the_warning_says_why() {
        let v = Version::new(1, 7, 7);
        assert_eq!(Egress::None.warning("a", &v), None);
        assert_eq!(Egress::Enforced.warning("a", &v), None);
        assert_eq!(
            Egress::Unenforced.warning("a", &v).as_deref(),
            Some(
                "warning: egress of `a` is UNRESTRICTED: smolvm 1.7.7 drops \
                 the allow-list (--allow-cidr, --allow-host) on `create --from` (fixed in \
                 1.8.0)"
            )
        );
    }

    #[test]
    fn allow_hosts_alone_are_an_allow_list_with_the_same_enforcement() {
        let hosts = spec("allow_hosts = [\"proxy\"]\n");
        assert_eq!(egress(&hosts, &v("1.7.7")), Egress::Unenforced);
        assert_eq!(egress(&hosts, &v("1.8.0")), Egress::Enforced);
        let none = spec("");
        assert_eq!(egress(&none, &v("0.8.0")), Egress::None);
    }

    #[test]
    fn dns_is_closed_through_an_address_already_in_the_allow_list() {
        let closed = spec("allow_cidrs = [\"10.0.0.0/8\", \"192.168.50.2/32\"]\n");
        let via = "10.0.0.0".parse().unwrap();
        assert_eq!(dns(&closed), DnsRule::Closed { via });
        assert_eq!(dns(&closed).allow_hosts(), [AllowHost::Addr(via)]);
        assert!(closed.allow_cidrs[0].contains(&via));
        let host = spec("allow_cidrs = [\"192.168.50.2\"]\n");
        let one = dns(&host).allow_hosts();
        assert_eq!(one, [AllowHost::Addr("192.168.50.2".parse().unwrap())]);
        let v6 = spec("allow_cidrs = [\"fd00::/64\"]\n");
        assert_eq!(dns(&v6).allow_hosts()[0].to_string(), "fd00::");
    }

    #[test]
    fn allow_hosts_open_dns_for_those_names_and_open_opens_it_all() {
        let hosts = spec("allow_cidrs = [\"10.0.0.0/8\"]\nallow_hosts = [\"p.example\"]\n");
        assert_eq!(dns(&hosts), DnsRule::Only(&hosts.allow_hosts));
        assert_eq!(dns(&hosts).allow_hosts()[0].to_string(), "p.example");
        let open = spec("allow_cidrs = [\"10.0.0.0/8\"]\ndns = \"open\"\n");
        assert_eq!(dns(&open), DnsRule::Open);
        assert!(dns(&open).allow_hosts().is_empty());
        assert_eq!(dns(&spec("")), DnsRule::None);
        assert!(dns(&spec("")).allow_hosts().is_empty());
    }

    #[test]
    fn the_egress_line_states_the_list_and_the_dns_rule() {
        let closed = spec("allow_cidrs = [\"192.168.50.2/32\"]\n");
        assert_eq!(
            line(&closed, Egress::Enforced),
            "only to 192.168.50.2/32; DNS: closed"
        );
        let hosts = spec("allow_cidrs = [\"10.0.0.0/8\"]\nallow_hosts = [\"a.b\", \"c\"]\n");
        assert_eq!(
            line(&hosts, Egress::Enforced),
            "only to 10.0.0.0/8, a.b, c; DNS: only a.b, c"
        );
        let open = spec("allow_cidrs = [\"10.0.0.0/8\"]\ndns = \"open\"\n");
        assert_eq!(
            line(&open, Egress::Enforced),
            "only to 10.0.0.0/8; DNS: open"
        );
        assert_eq!(
            line(&closed, Egress::Unenforced),
            "UNRESTRICTED (allow-list 192.168.50.2/32 is not enforced); DNS: open"
        );
        assert_eq!(line(&spec(""), Egress::None), "none (no network)");
    }

    #[test]
    fn entries_wider_than_the_thresholds_are_too_wide() {
        let found = |c: &str| finding(0, c.parse().unwrap());
        for wide in [
            "0.0.0.0/0",
            "128.0.0.0/1",
            "126.0.0.0/7",
            "::/0",
            "2000::/3",
            "fd00::/31",
        ] {
            assert!(
                matches!(found(wide), Some(Finding::TooWide { .. })),
                "{wide}"
            );
        }
        for narrow in [
            "10.0.0.0/8",
            "192.168.50.2/32",
            "fd00::/32",
            "2001:db8::/48",
        ] {
            assert_eq!(found(narrow), None, "{narrow}");
        }
    }

    #[test]
    fn loopback_entries_are_found() {
        let found = |c: &str| finding(3, c.parse().unwrap());
        for lo in ["127.0.0.0/8", "127.0.0.1/32", "127.1.0.0/16", "::1/128"] {
            assert!(
                matches!(found(lo), Some(Finding::Loopback { index: 3, .. })),
                "{lo}"
            );
        }
        for not in [
            "128.0.0.0/8",
            "126.255.255.255/32",
            "::2/128",
            "100.96.0.1/32",
        ] {
            assert_eq!(found(not), None, "{not}");
        }
        let s = spec("allow_cidrs = [\"10.0.0.0/8\", \"0.0.0.0/0\", \"127.0.0.1\"]\n");
        let all = findings(&s);
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[0].warning("agent"),
            "warning: egress of `agent` is effectively UNRESTRICTED: \
             network.allow_cidrs[1] = 0.0.0.0/0 is wider than /8 (IPv4)"
        );
        assert_eq!(
            all[1].warning("agent"),
            "warning: network.allow_cidrs[2] = 127.0.0.1/32 lets `agent` reach nothing on \
             the host: loopback is the guest's own. smolvm's guest reaches the host at its \
             gateway (100.96.0.1 in smolvm 1.9); allow 100.96.0.1/32 to reach a proxy \
             listening on the host's loopback"
        );
    }
}
