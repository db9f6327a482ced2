//! The first fingerprint form (records of schema 1), kept only to migrate
//! those records: a machine recorded by an older bottle is recognised as
//! matching its spec field by field, so upgrading bottle replaces nothing.
//!
//! Frozen: it hashes `Debug` output of the spec types as bottle 0.1 did,
//! which is why it was replaced; `fingerprints_are_pinned` in the spec
//! tests pins it. Must not be used for anything but comparing a spec with
//! a schema-1 record, and is computed only then: it reads the copied files
//! and the pack again, so resolving a spec never pays for it.

use std::fmt;
use std::os::unix::fs::PermissionsExt;

use serde::{Deserialize, Serialize};

use super::copies::{describe_io, update_file};
use super::{CopyKind, Desired, FileCopy, Image, Spec};

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
    /// The first form's fingerprint of `desired`, its files and pack read
    /// again from the host (an error if one can no longer be read).
    pub fn of(desired: &Desired) -> Result<Self, String> {
        let spec = &desired.spec;
        let refs: Vec<_> = spec.secrets.iter().map(|s| (&s.name, &s.source)).collect();
        Ok(LegacyPrint {
            image: image_hash(&spec.image)?,
            network: network_hash(spec),
            env: hash_debug(&spec.env),
            copy: copy_hash(&desired.files)?,
            exec: exec_hash(&spec.execs),
            secrets: hash_debug(&refs),
        })
    }
}

/// The first form's image hash: of the ref, or of the pack's path and
/// content.
fn image_hash(image: &Image) -> Result<String, String> {
    match image {
        Image::Ref(r) => Ok(hash_parts(&["ref", r.as_str()])),
        Image::Pack { path, .. } => {
            let mut h = blake3::Hasher::new();
            h.update(b"pack\n");
            h.update(path.as_os_str().as_encoded_bytes());
            update_file(&mut h, path)?;
            Ok(h.finalize().to_hex().to_string())
        }
    }
}

/// The first form's copy hash: one hash over every file (guest path,
/// mode, size, content) and link (framed guest path and target text), in
/// the order they are copied.
fn copy_hash(files: &[FileCopy]) -> Result<String, String> {
    let mut h = blake3::Hasher::new();
    for f in files {
        let dest = f.guest.as_str().as_bytes();
        match &f.kind {
            CopyKind::File { .. } => {
                let path = f.host.as_path();
                let meta = std::fs::symlink_metadata(path).map_err(|e| describe_io(path, &e))?;
                h.update(dest);
                h.update(&meta.permissions().mode().to_le_bytes());
                h.update(&meta.len().to_le_bytes());
                update_file(&mut h, path)?;
            }
            CopyKind::Link { target } => {
                for part in [b"\0symlink\0".as_slice(), dest, target.as_bytes()] {
                    h.update(&(part.len() as u64).to_le_bytes());
                    h.update(part);
                }
            }
        }
    }
    Ok(h.finalize().to_hex().to_string())
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
