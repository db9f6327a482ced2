//! The first fingerprint form (records of schema 1), kept only to migrate
//! those records: a machine recorded by an older bottle is recognised as
//! matching its spec field by field, so upgrading bottle replaces nothing.
//!
//! Frozen: it hashes `Debug` output of the spec types as bottle 0.1 did,
//! which is why it was replaced; `fingerprints_are_pinned` in the spec
//! tests pins it. Must not be used for anything but comparing a spec with
//! a schema-1 record.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Spec;

/// A schema-1 record's fingerprint: one hash per field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyPrint {
    pub image: String,
    pub network: String,
    pub env: String,
    pub copy: String,
    pub exec: String,
    #[serde(default)]
    pub secrets: String,
}

impl LegacyPrint {
    /// The first form's fingerprint of `spec`, given its image hash and
    /// copy hash (computed while the files are read, in that form).
    pub fn of(spec: &Spec, image: String, copy: String) -> Self {
        let refs: Vec<_> = spec.secrets.iter().map(|s| (&s.name, &s.source)).collect();
        LegacyPrint {
            image,
            network: network_hash(spec),
            env: hash_debug(&spec.env),
            copy,
            exec: exec_hash(&spec.execs),
            secrets: hash_debug(&refs),
        }
    }
}

/// The first form's hash of a list of exec steps.
pub fn exec_hash(steps: &[super::ExecStep]) -> String {
    hash_debug(&steps)
}

/// How many of `spec`'s first exec steps the first form's exec hash `old`
/// covers: the longest prefix of them that hashes to it. A schema-1
/// machine ran all the steps of the spec it was applied with; a spec that
/// since gained steps at its end still begins with them.
pub fn ran_prefix(spec: &Spec, old: &str) -> Option<usize> {
    (0..=spec.execs.len())
        .rev()
        .find(|&k| exec_hash(&spec.execs[..k]) == old)
}

/// The first form's network hash: a spec without `allow_hosts` and `dns`
/// hashed its CIDRs alone.
fn network_hash(spec: &Spec) -> String {
    match (spec.allow_hosts.is_empty(), spec.dns_written) {
        (true, None) => hash_debug(&spec.allow_cidrs),
        (false, _) | (true, Some(_)) => {
            let cidrs = format!("{:?}", spec.allow_cidrs);
            let hosts: Vec<&str> = spec.allow_hosts.iter().map(|h| h.as_str()).collect();
            let dns = match spec.dns() {
                super::Dns::Closed => "closed",
                super::Dns::Open => "open",
            };
            hash_parts(&["network v2", &cidrs, &hosts.join(","), dns])
        }
    }
}

/// The first form's hash of an image ref.
pub fn ref_hash(image: &str) -> String {
    hash_parts(&["ref", image])
}

pub(super) fn hash_parts(parts: &[&str]) -> String {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

pub(super) fn hash_debug<T: fmt::Debug>(v: &T) -> String {
    hash_parts(&[&format!("{v:?}")])
}
