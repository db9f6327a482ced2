//! The strict reading of one rendered manifest, independent of the
//! renderer: its known kind, every field known to its type and kept by a
//! round trip (k8s-openapi ignores unknown fields, so what it drops shows
//! as a difference), the Sandbox against a `deny_unknown_fields` mirror of
//! agent-sandbox's CRD, and the API server's name rules.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodSpec, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// `doc` is a known kind, every field of it known and kept by a round
/// trip through its type, and its names valid for the API server.
pub fn check(doc: &Value) -> Result<(), String> {
    let api = doc["apiVersion"].as_str().unwrap_or_default();
    let kind = doc["kind"].as_str().unwrap_or_default();
    let pod_spec = match (api, kind) {
        ("v1", "Pod") => Some(round_trip::<Pod>(doc, "")?.spec.ok_or("no spec")?),
        ("v1", "Secret") => round_trip::<Secret>(doc, "").map(|_| None)?,
        ("v1", "ConfigMap") => round_trip::<ConfigMap>(doc, "").map(|_| None)?,
        ("networking.k8s.io/v1", "NetworkPolicy") => {
            let p = round_trip::<NetworkPolicy>(doc, "")?;
            cidrs(&p)?;
            None
        }
        ("agents.x-k8s.io/v1alpha1", "Sandbox") => Some(sandbox(doc)?),
        other => return Err(format!("unknown kind {other:?}")),
    };
    names::object(&doc["metadata"])?;
    pod_spec.as_ref().map_or(Ok(()), names::pod)
}

/// `doc` read as a `T` (the path of the first bad field named) and
/// written back unchanged.
fn round_trip<T: DeserializeOwned + serde::Serialize>(doc: &Value, at: &str) -> Result<T, String> {
    let t: T = serde_path_to_error::deserialize(doc.clone())
        .map_err(|e| format!("{at}{}: {}", e.path(), e.inner()))?;
    let back = serde_json::to_value(&t).map_err(|e| e.to_string())?;
    match difference(doc, &back, at.trim_end_matches('.')) {
        Some(path) => Err(format!(
            "{path}: not a field of its type, or changed by a round trip"
        )),
        None => Ok(t),
    }
}

/// The first path where `a` and `b` differ.
fn difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let (l, r) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                difference(l, r, &format!("{path}.{k}"))
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (l, r))| difference(l, r, &format!("{path}[{i}]"))),
        _ => (a != b).then(|| path.to_string()),
    }
}

/// agent-sandbox's `Sandbox`, v1alpha1, as its CRD
/// (k8s/crds/agents.x-k8s.io_sandboxes.yaml) declares it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Sandbox {
    api_version: String,
    kind: String,
    metadata: Value,
    spec: SandboxSpec,
    status: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct SandboxSpec {
    pod_template: PodTemplate,
    volume_claim_templates: Option<Vec<Value>>,
    shutdown_time: Option<String>,
    shutdown_policy: Option<ShutdownPolicy>,
    replicas: Option<u8>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
enum ShutdownPolicy {
    Delete,
    Retain,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PodTemplate {
    metadata: Option<PodMetadata>,
    spec: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PodMetadata {
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

fn sandbox(doc: &Value) -> Result<PodSpec, String> {
    let s: Sandbox = serde_path_to_error::deserialize(doc.clone())
        .map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
    round_trip::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>(
        &s.metadata,
        "metadata.",
    )?;
    if let Some(m) = &s.spec.pod_template.metadata {
        names::labels(m.labels.iter().flatten())?;
        names::annotations(m.annotations.iter().flatten())?;
    }
    round_trip::<PodSpec>(&s.spec.pod_template.spec, "spec.podTemplate.spec.")
}

fn cidrs(p: &NetworkPolicy) -> Result<(), String> {
    let rules = p.spec.iter().flat_map(|s| s.egress.iter().flatten());
    for peer in rules.flat_map(|r| r.to.iter().flatten()) {
        let Some(block) = &peer.ip_block else {
            continue;
        };
        let net: ipnet::IpNet = block
            .cidr
            .parse()
            .map_err(|e| format!("{}: {e}", block.cidr))?;
        if net != net.trunc() {
            return Err(format!("{}: has host bits set", block.cidr));
        }
    }
    Ok(())
}

/// The API server's name rules, written from its validation, not from
/// the renderer's.
mod names {
    use std::collections::BTreeSet;

    use super::*;

    fn dns_label(s: &str) -> bool {
        let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        !s.is_empty()
            && s.len() <= 63
            && s.chars().all(ok)
            && !s.starts_with('-')
            && !s.ends_with('-')
    }

    fn dns_subdomain(s: &str) -> bool {
        s.len() <= 253 && s.split('.').all(dns_label)
    }

    /// A qualified name: `[prefix/]name`, the name 1–63 of
    /// alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
    fn qualified(key: &str) -> bool {
        let (prefix, name) = key
            .rsplit_once('/')
            .map_or((None, key), |(p, n)| (Some(p), n));
        prefix.is_none_or(dns_subdomain) && label_value(name) && !name.is_empty()
    }

    fn label_value(v: &str) -> bool {
        let ok = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        let edge = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
        v.len() <= 63 && v.chars().all(ok) && edge(v.chars().next()) && edge(v.chars().last())
    }

    pub fn labels<'a>(l: impl Iterator<Item = (&'a String, &'a String)>) -> Result<(), String> {
        for (k, v) in l {
            if !qualified(k) || !label_value(v) {
                return Err(format!("label {k}: {v} is not a valid label"));
            }
        }
        Ok(())
    }

    pub fn annotations<'a>(
        a: impl Iterator<Item = (&'a String, &'a String)>,
    ) -> Result<(), String> {
        for (k, _) in a {
            if !qualified(k) {
                return Err(format!("annotation key {k} is not a qualified name"));
            }
        }
        Ok(())
    }

    pub fn object(meta: &Value) -> Result<(), String> {
        let name = meta["name"].as_str().unwrap_or_default();
        if !dns_subdomain(name) {
            return Err(format!(
                "metadata.name {name:?} is not a DNS-1123 subdomain"
            ));
        }
        let strings = |v: &Value| -> BTreeMap<String, String> {
            serde_json::from_value(v.clone()).unwrap_or_default()
        };
        labels(strings(&meta["labels"]).iter())?;
        annotations(strings(&meta["annotations"]).iter())
    }

    pub fn pod(spec: &PodSpec) -> Result<(), String> {
        let volumes: Vec<&str> = spec
            .volumes
            .iter()
            .flatten()
            .map(|v| v.name.as_str())
            .collect();
        unique(&volumes, "volume")?;
        if let Some(rc) = spec
            .runtime_class_name
            .as_deref()
            .filter(|rc| !dns_subdomain(rc))
        {
            return Err(format!("runtimeClassName {rc:?}"));
        }
        let containers: Vec<_> = spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
            .collect();
        let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
        unique(&names, "container")?;
        for c in containers {
            let mounts = c.volume_mounts.iter().flatten();
            let paths: Vec<&str> = mounts.clone().map(|m| m.mount_path.as_str()).collect();
            unique(&paths, &format!("{}: mountPath", c.name))?;
            if let Some(m) = mounts.clone().find(|m| !volumes.contains(&m.name.as_str())) {
                return Err(format!("{}: mounts no volume `{}`", c.name, m.name));
            }
        }
        Ok(())
    }

    fn unique(names: &[&str], what: &str) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        for n in names {
            if !dns_label(n) && !what.contains("mountPath") {
                return Err(format!("{what} `{n}` is not a DNS-1123 label"));
            }
            if !seen.insert(n) {
                return Err(format!("{what} `{n}` twice"));
            }
        }
        Ok(())
    }
}
