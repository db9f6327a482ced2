//! The egress allow-list as a NetworkPolicy: the pod may reach exactly the
//! spec's CIDRs (every port, as smolvm's `--allow-cidr`), nothing else, and
//! nothing may reach it. No allow-list means no egress at all, as a spec
//! without `allow_cidrs` gets no network on a host. Pure.

use ipnet::IpNet;
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyPeer, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::spec::Desired;

use super::meta;

/// The NetworkPolicy of `d`'s pod.
pub fn network_policy(d: &Desired) -> NetworkPolicy {
    NetworkPolicy {
        metadata: meta::object_meta(d),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(meta::labels(d.spec.name.as_str())),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Egress".into(), "Ingress".into()]),
            egress: Some(egress_rules(&d.spec.allow_cidrs)),
            ingress: Some(Vec::new()),
        }),
    }
}

/// One rule whose peers are one `ipBlock` per CIDR, or no rule at all for
/// an empty allow-list: a rule with an empty `to` would allow every
/// destination.
fn egress_rules(cidrs: &[IpNet]) -> Vec<NetworkPolicyEgressRule> {
    if cidrs.is_empty() {
        return Vec::new();
    }
    let to = cidrs.iter().map(ip_block).collect();
    vec![NetworkPolicyEgressRule {
        to: Some(to),
        ports: None,
    }]
}

fn ip_block(cidr: &IpNet) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        ip_block: Some(IPBlock {
            cidr: cidr.to_string(),
            except: None,
        }),
        ..NetworkPolicyPeer::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(cidrs: &[&str]) -> Vec<IpNet> {
        cidrs.iter().map(|c| c.parse().unwrap()).collect()
    }

    #[test]
    fn no_allow_list_is_no_rule_not_an_empty_one() {
        assert!(egress_rules(&[]).is_empty());
    }

    #[test]
    fn one_peer_per_cidr_every_port_nothing_else() {
        let rules = egress_rules(&nets(&["192.168.50.2/32", "10.0.0.0/8", "fd00::/8"]));
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].ports, None);
        let cidrs: Vec<_> = rules[0]
            .to
            .iter()
            .flatten()
            .map(|p| {
                assert_eq!((&p.namespace_selector, &p.pod_selector), (&None, &None));
                p.ip_block.as_ref().unwrap().cidr.as_str()
            })
            .collect();
        assert_eq!(cidrs, ["192.168.50.2/32", "10.0.0.0/8", "fd00::/8"]);
    }
}
