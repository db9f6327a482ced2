//! Resolution of what a spec names on the host: pack files and copy
//! sources are checked on disk, copy sources are walked (by `copies`) into
//! what the guest receives, and a fingerprint of everything that shapes the
//! VM is computed.
//!
//! Reads files; never writes any and never talks to smolvm.

use std::fs;
use std::path::{Path, PathBuf};

use super::copies::{self, CopySummary, FileCopy, Walked, describe_io};
use super::error::{Problem, SpecError};
use super::fingerprint::Fingerprint;
use super::hashes::Hashes;
use super::legacy::LegacyPrint;
use super::secret::{self, Secret};
use super::{Image, Spec};

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
    /// The spec file's canonical absolute path: the owner of its machine.
    pub owner: PathBuf,
}

impl Desired {
    /// The files and links of the i-th `[[copy]]`, in the order they are
    /// sent.
    pub fn files_of(&self, i: usize) -> &[FileCopy] {
        let len = |c: &CopySummary| c.files + c.links;
        let start: usize = self.copies[..i].iter().map(len).sum();
        &self.files[start..start + len(&self.copies[i])]
    }

    /// The fingerprint in its first form, to compare with a record an
    /// older bottle wrote; it reads the copied files and the pack again
    /// (`None` if one can no longer be read: then nothing matches).
    pub fn legacy(&self) -> Option<LegacyPrint> {
        LegacyPrint::of(self).ok()
    }
}

/// Check the spec's host paths and compute what the VM should be,
/// reading every file it hashes.
pub fn resolve(spec: Spec) -> Result<Desired, SpecError> {
    let owner = owner(&spec.file);
    resolve_with(spec, owner, &Hashes::none())
}

/// [`resolve`] of the spec whose file's canonical path is `owner` (see
/// [`owner`]), taking from `hashes` the content hash of each file that did
/// not change since it was last read.
pub fn resolve_with(spec: Spec, owner: PathBuf, hashes: &Hashes) -> Result<Desired, SpecError> {
    let mut problems = Vec::new();
    let image = image_hash(&spec, hashes, &mut problems);
    let walked = copies(&spec, hashes, &mut problems);
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
    let fingerprint = Fingerprint::of(&spec, walked.prints, image.as_ref());
    Ok(Desired {
        spec,
        files: walked.files,
        copies: walked.summaries,
        secrets,
        fingerprint,
        owner,
    })
}

/// The spec file's canonical path (its absolute path if it cannot be
/// resolved, as for a spec given as text in a test): the owner of its
/// machine.
pub fn owner(file: &Path) -> PathBuf {
    fs::canonicalize(file)
        .or_else(|_| std::path::absolute(file))
        .unwrap_or_else(|_| file.to_path_buf())
}

/// The pack file's content hash (none for an image ref).
fn image_hash(spec: &Spec, hashes: &Hashes, problems: &mut Vec<Problem>) -> Option<blake3::Hash> {
    let Image::Pack { path, at } = &spec.image else {
        return None;
    };
    hash_pack(path, hashes)
        .map_err(|message| {
            problems.push(Problem {
                at: at.clone(),
                key: "image.pack".into(),
                message,
            })
        })
        .ok()
}

/// Every path the copies name, each copy's summary, and the hash of what
/// they copy; a problem is located at the copy's `src`.
fn copies(spec: &Spec, hashes: &Hashes, problems: &mut Vec<Problem>) -> Walked {
    copies::walk_all(&spec.copies, hashes, |entry, message| {
        problems.push(Problem {
            at: entry.at.clone(),
            key: entry.key.clone(),
            message,
        })
    })
}

fn hash_pack(path: &Path, hashes: &Hashes) -> Result<blake3::Hash, String> {
    let meta = fs::metadata(path).map_err(|e| describe_io(path, &e))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    // A pack may be a link to a build's output: hashed at its real path.
    let real = fs::canonicalize(path).map_err(|e| describe_io(path, &e))?;
    hashes.content(&real, &meta)
}
