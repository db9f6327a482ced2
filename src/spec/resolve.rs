//! Resolution of what a spec names on the host: pack files and copy
//! sources are checked on disk, copy sources are walked (by `copies`) into
//! what the guest receives, and a fingerprint of everything that shapes the
//! VM is computed.
//!
//! Reads files; never writes any and never talks to smolvm.

use std::fmt;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::copies::{self, CopySummary, FileCopy, Walked, describe_io, update_file};
use super::error::{Problem, SpecError};
use super::secret::{self, Secret};
use super::{Dns, Image, Spec};

/// A spec with its host side resolved: what bottle will make the VM be.
#[derive(Debug, Clone)]
pub struct Desired {
    pub spec: Spec,
    /// Every file and link to copy, in spec order (directories walked in
    /// name order).
    pub files: Vec<FileCopy>,
    /// Each `[[copy]]` entry as `plan` shows it, in spec order.
    pub copies: Vec<CopySummary>,
    /// The secrets' values, read from the host (never hashed or stored).
    pub secrets: Vec<Secret>,
    pub fingerprint: Fingerprint,
}

/// The parts of a spec that shape a VM, each hashed on its own so a change
/// can be reported by field. The readiness timeout is not among them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub image: String,
    pub network: String,
    pub env: String,
    pub copy: String,
    pub exec: String,
    /// The secrets' names and sources, not their values.
    #[serde(default)]
    pub secrets: String,
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
    /// One hash over every field.
    pub fn hash(&self) -> String {
        let mut h = blake3::Hasher::new();
        for part in [
            &self.image,
            &self.network,
            &self.env,
            &self.copy,
            &self.exec,
            &self.secrets,
        ] {
            h.update(part.as_bytes());
            h.update(b"\n");
        }
        h.finalize().to_hex().to_string()
    }

    /// The fields in which `self` differs from `other`, in a fixed order.
    pub fn changed(&self, other: &Fingerprint) -> Vec<Field> {
        [
            (Field::Image, &self.image, &other.image),
            (Field::Network, &self.network, &other.network),
            (Field::Env, &self.env, &other.env),
            (Field::Copy, &self.copy, &other.copy),
            (Field::Exec, &self.exec, &other.exec),
            (Field::Secrets, &self.secrets, &other.secrets),
        ]
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(f, _, _)| f)
        .collect()
    }
}

/// Check the spec's host paths and compute what the VM should be.
pub fn resolve(spec: Spec) -> Result<Desired, SpecError> {
    let mut problems = Vec::new();
    let image = image_hash(&spec, &mut problems);
    let walked = copies(&spec, &mut problems);
    let mut secrets = Vec::new();
    for r in &spec.secrets {
        match secret::read(r) {
            Ok(s) => secrets.push(s),
            Err(p) => problems.push(p),
        }
    }
    if !problems.is_empty() {
        return Err(SpecError::invalid(problems));
    }
    let refs: Vec<_> = spec.secrets.iter().map(|s| (&s.name, &s.source)).collect();
    let fingerprint = Fingerprint {
        secrets: hash_debug(&refs),
        image,
        network: network_hash(&spec),
        env: hash_debug(&spec.env),
        copy: walked.hash,
        exec: hash_debug(&spec.execs),
    };
    Ok(Desired {
        spec,
        files: walked.files,
        copies: walked.summaries,
        secrets,
        fingerprint,
    })
}

/// The hash of the network. A spec without `allow_hosts` and `dns` hashes
/// as it did before those keys existed (its CIDRs alone), so a machine
/// bottle created then is not replaced by this version: it keeps the DNS it
/// was created with (open) until its spec changes. Writing either key
/// changes the hash, so `dns = "closed"` written out replaces such a
/// machine with one whose DNS is closed. Past that, the meaning is hashed:
/// `allow_hosts` without `dns` hashes as with `dns = "closed"`.
fn network_hash(spec: &Spec) -> String {
    match (spec.allow_hosts.is_empty(), spec.dns_written) {
        (true, None) => hash_debug(&spec.allow_cidrs),
        (false, _) | (true, Some(_)) => {
            let cidrs = format!("{:?}", spec.allow_cidrs);
            let hosts: Vec<&str> = spec.allow_hosts.iter().map(|h| h.as_str()).collect();
            let dns = match spec.dns() {
                Dns::Closed => "closed",
                Dns::Open => "open",
            };
            hash_parts(&["network v2", &cidrs, &hosts.join(","), dns])
        }
    }
}

/// The hash of the image: its ref, or the pack file's path and content.
fn image_hash(spec: &Spec, problems: &mut Vec<Problem>) -> String {
    match &spec.image {
        Image::Ref(r) => hash_parts(&["ref", r.as_str()]),
        Image::Pack { path, at } => hash_pack(path).unwrap_or_else(|message| {
            problems.push(Problem {
                at: at.clone(),
                key: "image.pack".into(),
                message,
            });
            String::new()
        }),
    }
}

/// Every path the copies name, each copy's summary, and the hash of what
/// they copy; a problem is located at the copy's `src`.
fn copies(spec: &Spec, problems: &mut Vec<Problem>) -> Walked {
    copies::walk_all(&spec.copies, |entry, message| {
        problems.push(Problem {
            at: entry.at.clone(),
            key: entry.key.clone(),
            message,
        })
    })
}

fn hash_parts(parts: &[&str]) -> String {
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

fn hash_pack(path: &Path) -> Result<String, String> {
    let meta = fs::metadata(path).map_err(|e| describe_io(path, &e))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    let mut h = blake3::Hasher::new();
    h.update(b"pack\n");
    h.update(path.as_os_str().as_encoded_bytes());
    update_file(&mut h, path)?;
    Ok(h.finalize().to_hex().to_string())
}
