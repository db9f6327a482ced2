//! The network of a spec end to end: DNS closed by default through an
//! address already in the allow-list, `allow_hosts` and `dns = "open"`,
//! the same refusal of an unenforceable list for host names as for CIDRs,
//! and warnings for allow-lists that do not mean what they say.

use crate::support::Bottle;

/// A spec named `net` whose `[network]` table is `network`.
fn spec(b: &Bottle, network: &str) -> String {
    let text = format!("name = \"net\"\n[image]\nref = \"img:1\"\n[network]\n{network}");
    let path = b.write("net.toml", &text);
    path.to_str().expect("utf-8").to_string()
}

/// `plan` of the spec with `network` on smolvm `version`: stdout and
/// stderr, normalised.
fn plan(version: &str, network: &str) -> String {
    let b = Bottle::on(version);
    let spec = spec(&b, network);
    let run = b.run(&["plan", &spec]);
    run.status(0);
    format!(
        "stdout:\n{}stderr:\n{}",
        b.normalize(&run.stdout),
        b.normalize(&run.stderr)
    )
}

#[test]
fn dns_is_closed_by_default_through_an_address_already_allowed() {
    let b = Bottle::new();
    let spec = b.agent();
    b.run(&["apply", spec.to_str().unwrap()])
        .status(0)
        .stderr_has("agent: egress: only to 192.168.50.2/32; DNS: closed");
    let m = &b.world().machines["agent"];
    assert_eq!(m.allow_cidrs, ["192.168.50.2/32"]);
    assert_eq!(
        m.allow_hosts,
        ["192.168.50.2"],
        "the address of the first entry"
    );
    assert_eq!(m.egress, "allow-list");
}

#[test]
fn the_closing_address_is_the_first_entry_s_own() {
    let b = Bottle::new();
    let spec = spec(&b, "allow_cidrs = [\"10.0.0.0/8\", \"fd00::/64\"]\n");
    b.run(&["apply", &spec]).status(0);
    let m = &b.world().machines["net"];
    assert_eq!(m.allow_cidrs, ["10.0.0.0/8", "fd00::/64"]);
    assert_eq!(m.allow_hosts, ["10.0.0.0"]);
}

#[test]
fn allow_hosts_are_given_to_smolvm_which_resolves_them() {
    let b = Bottle::new();
    let spec = spec(&b, "allow_hosts = [\"Proxy.Internal\"]\n");
    let hosts = [("SMOLVM_SIM_HOSTS", "proxy.internal=192.168.50.2")];
    b.run_with(&hosts, &["apply", &spec])
        .status(0)
        .stderr_has("net: egress: only to proxy.internal; DNS: only proxy.internal");
    let m = &b.world().machines["net"];
    assert!(m.allow_cidrs.is_empty());
    assert_eq!(m.allow_hosts, ["proxy.internal"]);
    assert_eq!(m.egress, "allow-list");
    assert!(m.network, "--net is explicit");
}

#[test]
fn a_name_smolvm_cannot_resolve_fails_create_and_leaves_nothing() {
    let b = Bottle::new();
    let spec = spec(&b, "allow_hosts = [\"nowhere.internal\"]\n");
    b.run(&["apply", &spec])
        .status(1)
        .stderr_has("--allow-host: failed to resolve 'nowhere.internal'");
    assert!(b.world().machines.is_empty());
    assert!(b.record("net").is_none());
}

#[test]
fn dns_open_gives_smolvm_no_allow_host() {
    let b = Bottle::new();
    let spec = spec(&b, "allow_cidrs = [\"192.168.50.2/32\"]\ndns = \"open\"\n");
    b.run(&["apply", &spec])
        .status(0)
        .stderr_has("net: egress: only to 192.168.50.2/32; DNS: open");
    let m = &b.world().machines["net"];
    assert!(m.allow_hosts.is_empty());
    assert_eq!(m.egress, "allow-list");
}

#[test]
fn a_spec_without_an_allow_list_gets_no_network_and_no_allow_host() {
    let b = Bottle::new();
    let spec = b.write("q.toml", "name = \"quiet\"\n[image]\nref = \"a:1\"\n");
    b.run(&["apply", spec.to_str().unwrap()]).status(0);
    let m = &b.world().machines["quiet"];
    assert!(!m.network && m.allow_hosts.is_empty() && m.allow_cidrs.is_empty());
    let create = b.calls().into_iter().find(|c| c.contains(" create "));
    let create = create.expect("a create call");
    assert!(
        !create.contains("--net") && !create.contains("--allow"),
        "{create}"
    );
}

#[test]
fn host_names_on_a_smolvm_that_drops_them_are_refused_like_cidrs() {
    for v in ["0.8.0", "1.7.7"] {
        let b = Bottle::on(v);
        let spec = spec(&b, "allow_hosts = [\"proxy.internal\"]\n");
        b.run(&["apply", &spec]).status(3).stderr_has(&format!(
            "refusing to create a machine with network.allow_hosts on smolvm {v}: smolvm \
             before 1.8.0 silently drops --allow-cidr and --allow-host"
        ));
        assert_eq!(b.calls(), ["smolvm --version"], "smolvm {v}");
    }
    let b = Bottle::on("1.7.7");
    let both = spec(
        &b,
        "allow_cidrs = [\"10.0.0.0/8\"]\nallow_hosts = [\"p\"]\n",
    );
    b.run(&["apply", &both]).status(3).stderr_has(
        "refusing to create a machine with network.allow_cidrs and network.allow_hosts",
    );
    let hosts = [("SMOLVM_SIM_HOSTS", "p=10.0.0.1")];
    b.run_with(&hosts, &["apply", "--allow-unenforced-egress", &both])
        .status(0)
        .stderr_has("warning: egress of `net` is UNRESTRICTED: smolvm 1.7.7 drops the allow-list")
        .stderr_has(
            "net: egress: UNRESTRICTED (allow-list 10.0.0.0/8, p is not enforced); DNS: open",
        );
    assert_eq!(
        b.world().machines["net"].egress,
        "open",
        "the hazard is real"
    );
}

#[test]
fn allow_lists_that_do_not_mean_what_they_say_are_called_out_by_apply() {
    let b = Bottle::new();
    let spec = spec(
        &b,
        "allow_cidrs = [\"0.0.0.0/0\", \"127.0.0.1\", \"::/0\"]\n",
    );
    let run = b.run(&["apply", &spec]);
    run.status(0)
        .stderr_has(
            "net: warning: egress of `net` is effectively UNRESTRICTED: \
             network.allow_cidrs[0] = 0.0.0.0/0 is wider than /8 (IPv4)",
        )
        .stderr_has("net: warning: network.allow_cidrs[1] = 127.0.0.1/32 lets `net` reach nothing")
        .stderr_has("network.allow_cidrs[2] = ::/0 is wider than /32 (IPv6)");
    let again = b.run(&["apply", &spec]);
    again
        .status(0)
        .stderr_has("unchanged")
        .stderr_has("effectively UNRESTRICTED");
    assert!(!again.stderr.contains("egress: only"), "{}", again.stderr);
}

/// `plan` of each DNS rule and of allow-lists that warn, on the current
/// smolvm and on one that drops the list.
#[test]
fn plan_states_the_dns_rule_and_the_warnings() {
    let cases = [
        ("1.9.3", "allow_cidrs = [\"192.168.50.2/32\"]\n"),
        (
            "1.9.3",
            "allow_cidrs = [\"192.168.50.2/32\"]\nallow_hosts = [\"proxy.internal\", \"pypi.org\"]\n",
        ),
        ("1.9.3", "allow_cidrs = [\"10.0.0.0/8\"]\ndns = \"open\"\n"),
        (
            "1.9.3",
            "allow_cidrs = [\"0.0.0.0/0\", \"127.0.0.0/8\", \"::1\"]\n",
        ),
        ("0.8.0", "allow_hosts = [\"proxy.internal\"]\n"),
    ];
    let mut text = String::new();
    for (version, network) in cases {
        text.push_str(&format!(
            "# smolvm {version}\n{network}{}\n",
            plan(version, network)
        ));
    }
    insta::assert_snapshot!(text);
}

/// The network's meaning is what counts: writing out the default
/// `dns = "closed"` changes nothing, opening DNS replaces the machine
/// (with consent: the network is fixed at create).
#[test]
fn writing_the_default_dns_changes_nothing_opening_it_replaces_the_machine() {
    let b = Bottle::new();
    let keyless = spec(&b, "allow_cidrs = [\"10.0.0.0/8\"]\n");
    b.run(&["apply", &keyless]).status(0);
    let closed = spec(&b, "allow_cidrs = [\"10.0.0.0/8\"]\ndns = \"closed\"\n");
    b.run(&["apply", &closed])
        .status(0)
        .stderr_has("net: unchanged");
    assert_eq!(b.world().machines["net"].allow_hosts, ["10.0.0.0"]);
    let open = spec(&b, "allow_cidrs = [\"10.0.0.0/8\"]\ndns = \"open\"\n");
    b.run(&["apply", &open])
        .status(3)
        .stderr_has("(changed: network [forces replacement])");
    b.run(&["apply", "--replace", &open])
        .status(0)
        .stderr_has("replacing (changed: network [forces replacement])");
    assert!(b.world().machines["net"].allow_hosts.is_empty());
}
