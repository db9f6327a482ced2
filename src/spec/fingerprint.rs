//! The fingerprint: what a spec means for its machine, hashed field by
//! field so a change can be told apart by what it forces.
//!
//! Owns the canonical form (version [`FINGERPRINT_VERSION`]): each field
//! is a hash of a JSON document with sorted keys whose values are written
//! in a fixed textual form (CIDRs as `ip/prefix`, durations in
//! milliseconds, paths as guest path text, env as a key → value map), and
//! never of Rust `Debug` output, so the same spec hashes the same across
//! bottle versions. A change of this form is a change of
//! [`FINGERPRINT_VERSION`] and comes with a migration (see `legacy`).
//!
//! Pure: the copies' entries and the pack's content hash are read by
//! `resolve` and handed in.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Dns, ExecStep, Image, SecretSource, Spec};

/// The version of the canonical form below.
pub const FINGERPRINT_VERSION: u32 = 2;

/// What a spec means for its machine. As a record's, what was applied to
/// the machine: the copies sent and the exec steps that ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    /// The image ref, or the pack file's content.
    pub image: String,
    /// The allow-list (CIDRs and host names, sorted) and the DNS rule.
    pub network: String,
    /// The env given at create.
    pub env: String,
    /// The secrets' names and sources, never their values.
    pub secrets: String,
    /// Each `[[copy]]`, in spec order.
    pub copies: Vec<CopyPrint>,
    /// Each `[[exec]]` step's hash, in spec order (a record's: every step
    /// that ever ran successfully on the machine, in the order they ran).
    pub execs: Vec<String>,
}

/// One `[[copy]]`: its guest destination, every path it makes there with
/// what it puts at that path, and a hash of both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyPrint {
    pub dest: String,
    pub hash: String,
    /// Guest path → `file MODE SIZE CONTENT-HASH` or `link TARGET`.
    pub entries: BTreeMap<String, String>,
}

impl CopyPrint {
    /// The print of a copy to `dest` of `entries`.
    pub fn new(dest: &str, entries: BTreeMap<String, String>) -> Self {
        let hash = hash_value(&json!({ "dest": dest, "entries": entries }));
        CopyPrint {
            dest: dest.to_string(),
            hash,
            entries,
        }
    }
}

/// The entry of a regular file: its mode, size and content hash.
pub fn file_entry(mode: u32, size: u64, content: &blake3::Hash) -> String {
    let hex = content.to_hex();
    format!("file {:o} {size} {}", mode & 0o7777, &hex[..32])
}

/// The entry of a link: its target text.
pub fn link_entry(target: &str) -> String {
    format!("link {target}")
}

/// How the paths under a copy destination differ from what the guest
/// holds from bottle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyDiff {
    /// Sent, new.
    pub added: usize,
    /// Sent, replacing what was there.
    pub changed: usize,
    /// Removed from the guest: no copy makes them any more.
    pub removed: usize,
    /// No copy makes them any more, left in the guest (`--no-prune`).
    pub kept: usize,
}

/// A field of the fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Image,
    Network,
    Env,
    Copy,
    Exec,
    Secrets,
}

impl Field {
    /// Whether a change of this field needs a new machine: smolvm takes it
    /// at `create` and cannot change it afterwards.
    pub fn forces_replacement(self) -> bool {
        match self {
            Field::Image | Field::Network | Field::Env => true,
            Field::Copy | Field::Exec | Field::Secrets => false,
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Image => "image",
            Field::Network => "network",
            Field::Env => "env",
            Field::Copy => "copy",
            Field::Exec => "exec",
            Field::Secrets => "secrets",
        })
    }
}

impl Fingerprint {
    /// The fingerprint of `spec`, given its copies' prints and, for an
    /// `image.pack`, the pack file's content hash.
    pub fn of(spec: &Spec, copies: Vec<CopyPrint>, pack: Option<&blake3::Hash>) -> Self {
        Fingerprint {
            image: image(&spec.image, pack),
            network: network(spec),
            env: hash_value(&env_map(&spec.env)),
            secrets: secrets(spec),
            copies,
            execs: numbered(spec.execs.iter().map(exec_hash)),
        }
    }

    /// A fingerprint of nothing applied: what a record holds before its
    /// machine received anything (or, migrated, before it is compared).
    pub fn nothing() -> Self {
        Fingerprint {
            image: String::new(),
            network: String::new(),
            env: String::new(),
            secrets: String::new(),
            copies: Vec::new(),
            execs: Vec::new(),
        }
    }

    /// One hash over every field, with the form's version.
    pub fn hash(&self) -> String {
        hash_value(&json!({
            "version": FINGERPRINT_VERSION,
            "image": self.image,
            "network": self.network,
            "env": self.env,
            "secrets": self.secrets,
            "copies": self.copies.iter().map(|c| &c.hash).collect::<Vec<_>>(),
            "execs": self.execs,
        }))
    }

    /// The fields in which `self` (a spec's) differs from `other` (what
    /// was applied), in a fixed order. Copies are compared in order; exec
    /// steps differ when one of `self`'s has not run (a step that ran and
    /// left the spec is no difference: it is not undone).
    pub fn changed(&self, other: &Fingerprint) -> Vec<Field> {
        let copies = |f: &Fingerprint| -> Vec<(String, String)> {
            f.copies
                .iter()
                .map(|c| (c.dest.clone(), c.hash.clone()))
                .collect()
        };
        let not_run = self.execs.iter().any(|h| !other.execs.contains(h));
        [
            (Field::Image, self.image != other.image),
            (Field::Network, self.network != other.network),
            (Field::Env, self.env != other.env),
            (Field::Copy, copies(self) != copies(other)),
            (Field::Exec, not_run),
            (Field::Secrets, self.secrets != other.secrets),
        ]
        .into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(f, _)| f)
        .collect()
    }
}

fn image(image: &Image, pack: Option<&blake3::Hash>) -> String {
    match (image, pack) {
        (Image::Ref(r), _) => hash_value(&json!({ "ref": r.as_str() })),
        (Image::Pack { .. }, Some(content)) => {
            hash_value(&json!({ "pack": content.to_hex().as_str() }))
        }
        (Image::Pack { .. }, None) => hash_value(&json!({ "pack": null })),
    }
}

/// The allow-list as a set (order does not change what is allowed) and
/// the DNS rule as it applies.
fn network(spec: &Spec) -> String {
    let mut cidrs: Vec<String> = spec.allow_cidrs.iter().map(|c| c.to_string()).collect();
    cidrs.sort();
    cidrs.dedup();
    let mut hosts: Vec<&str> = spec.allow_hosts.iter().map(|h| h.as_str()).collect();
    hosts.sort();
    hosts.dedup();
    let dns = match spec.dns() {
        Dns::Closed => "closed",
        Dns::Open => "open",
    };
    hash_value(&json!({ "allow_cidrs": cidrs, "allow_hosts": hosts, "dns": dns }))
}

fn env_map(env: &[super::EnvVar]) -> Value {
    let map: BTreeMap<&str, &str> = env
        .iter()
        .map(|v| (v.key.as_str(), v.value.as_str()))
        .collect();
    json!(map)
}

fn secrets(spec: &Spec) -> String {
    let map: BTreeMap<&str, Value> = spec
        .secrets
        .iter()
        .map(|s| {
            let source = match &s.source {
                SecretSource::Env(k) => json!({ "from_env": k.as_str() }),
                SecretSource::File(p) => json!({ "from_file": p.to_string_lossy() }),
            };
            (s.name.as_str(), source)
        })
        .collect();
    hash_value(&json!(map))
}

/// The hash of one exec step: its command, workdir, env, timeout and
/// secret names. A step runs once per machine for each such content.
pub fn exec_hash(e: &ExecStep) -> String {
    let secrets: Vec<&str> = e.secrets.iter().map(|s| s.as_str()).collect();
    hash_value(&json!({
        "run": e.run,
        "workdir": e.workdir.as_ref().map(|w| w.as_str()),
        "env": env_map(&e.env),
        "timeout_ms": e.timeout.map(|t| t.as_millis().to_string()),
        "secrets": secrets,
    }))
}

/// Step hashes told apart by occurrence: the second step with the same
/// content as an earlier one is a step of its own (`[b, b]` runs `b`
/// twice, on a new machine and when the second `b` is added later). The
/// first occurrence keeps its plain hash.
fn numbered(hashes: impl Iterator<Item = String>) -> Vec<String> {
    let plain: Vec<String> = hashes.collect();
    plain
        .iter()
        .enumerate()
        .map(
            |(i, h)| match plain[..i].iter().filter(|e| *e == h).count() {
                0 => h.clone(),
                n => hash_value(&json!({ "step": h, "occurrence": n + 1 })),
            },
        )
        .collect()
}

/// The blake3 of `v` written as JSON. `serde_json`'s maps are sorted by
/// key (bottle does not enable `preserve_order`; a test checks the order),
/// so the text is canonical.
fn hash_value(v: &Value) -> String {
    let text = v.to_string();
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_maps_are_written_in_key_order() {
        let v = json!({ "b": 1, "a": { "d": 2, "c": 3 } });
        assert_eq!(v.to_string(), r#"{"a":{"c":3,"d":2},"b":1}"#);
    }

    #[test]
    fn a_copy_hash_covers_its_entries_and_its_destination() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let before = CopyPrint::new("/w", map(&[("/w/a", "1"), ("/w/b", "2"), ("/w/c", "3")]));
        let after = CopyPrint::new("/w", map(&[("/w/a", "1"), ("/w/b", "9"), ("/w/d", "4")]));
        assert_ne!(before.hash, after.hash);
        assert_ne!(
            before.hash,
            CopyPrint::new("/x", before.entries.clone()).hash,
            "the destination is part of the hash"
        );
    }

    const ALL: [Field; 6] = [
        Field::Image,
        Field::Network,
        Field::Env,
        Field::Copy,
        Field::Exec,
        Field::Secrets,
    ];

    #[test]
    fn fields_are_named_as_the_spec_names_them() {
        let names = ALL.map(|f| f.to_string());
        assert_eq!(
            names,
            ["image", "network", "env", "copy", "exec", "secrets"]
        );
    }

    #[test]
    fn only_create_time_fields_force_replacement() {
        let forcing: Vec<Field> = ALL.into_iter().filter(|f| f.forces_replacement()).collect();
        assert_eq!(forcing, [Field::Image, Field::Network, Field::Env]);
    }

    #[test]
    fn a_repeated_step_is_a_step_of_its_own() {
        let h = |s: &str| s.to_string();
        let got = numbered(["a", "b", "a", "a"].map(h).into_iter());
        assert_eq!(got[0], "a");
        assert_eq!(got[1], "b");
        assert_ne!(got[2], "a");
        assert_ne!(got[3], got[2]);
        assert_eq!(numbered(["a", "a"].map(h).into_iter())[1], got[2]);
    }

    #[test]
    fn entries_are_written_in_a_fixed_form() {
        let h = blake3::hash(b"x");
        let e = file_entry(0o100755, 1, &h);
        assert_eq!(e, format!("file 755 1 {}", &h.to_hex()[..32]));
        assert_eq!(link_entry("../a b"), "link ../a b");
    }
}
