//! The spec's copies on Kubernetes. Every copy destination that is not
//! inside another becomes a volume (an `emptyDir`) mounted at that path in
//! the exec steps' init containers and the main container; a copied file
//! is mounted alone (`subPath`), so its directory stays the image's.
//!
//! The files travel as one tar in a ConfigMap (`binaryData`), unpacked by
//! the first init container (`copy`, the spec's image, which needs `tar`,
//! as on a host) into those volumes. Entries keep their file modes, are
//! owned by root and dated 1970, so an unchanged spec renders the same
//! bytes. A ConfigMap holds at most 1 MiB: a bigger archive is refused.
//!
//! Reads the files to copy; writes nothing.

use std::collections::BTreeMap;
use std::io;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, Volume, VolumeMount,
};

use crate::spec::{
    Desired, FileCopy, GuestPath, ImageRef, Location, Problem, SECRETS_DIR, SpecError,
};

use super::super::RenderError;
use super::meta;
use crate::reconcile::archive::{Mtime, append_entry};

/// The most a ConfigMap may hold (its keys and values together).
pub const CONFIG_MAP_LIMIT: u64 = 1024 * 1024;
/// The ConfigMap key holding the archive.
pub const ARCHIVE_KEY: &str = "copy.tar";
/// The volume of the ConfigMap, seen only by the `copy` container.
const ARCHIVE_VOLUME: &str = "copy-archive";
const ARCHIVE_DIR: &str = "/bottle/archive";
/// Where the `copy` container sees the destination volumes.
const STAGING_DIR: &str = "/bottle/copies";

/// One destination volume: a copy destination not inside another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub volume: String,
    pub dest: GuestPath,
    pub kind: RootKind,
}

/// What a destination volume holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootKind {
    /// A directory's files: the volume is mounted at the destination.
    Dir,
    /// One file, named `name` in the volume and mounted alone.
    File { name: String },
}

/// The destination volumes of `d`, in the order their copies come, or the
/// problems that make some destination impossible as a volume.
pub fn roots(d: &Desired) -> Result<Vec<Root>, Vec<Problem>> {
    let mut roots = Vec::new();
    let mut problems = Vec::new();
    for dest in outermost(d) {
        match root_kind(d, dest) {
            Ok(Some(kind)) => roots.push(Root {
                volume: format!("copy-{}", roots.len()),
                dest: dest.clone(),
                kind,
            }),
            Ok(None) => {}
            Err(message) => problems.push(problem_at(d, dest, message)),
        }
    }
    match problems.is_empty() {
        true => Ok(roots),
        false => Err(problems),
    }
}

/// The copy destinations that are not inside another one, first seen
/// first.
fn outermost(d: &Desired) -> Vec<&GuestPath> {
    let dests: Vec<&GuestPath> = d.spec.copies.iter().map(|c| &c.dest).collect();
    let mut out: Vec<&GuestPath> = Vec::new();
    for (i, dest) in dests.iter().enumerate() {
        let covered = dests.iter().enumerate().any(|(j, other)| {
            inside(dest.as_str(), other.as_str()) || (j < i && other.as_str() == dest.as_str())
        });
        if !covered {
            out.push(dest);
        }
    }
    out
}

/// Whether `path` is strictly inside directory `dir`.
fn inside(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path.len() > dir.len() + 1 && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

/// What the volume at `dest` holds, `None` if no file lands there (an
/// empty directory is not copied, as on a host).
fn root_kind(d: &Desired, dest: &GuestPath) -> Result<Option<RootKind>, String> {
    let path = dest.as_str();
    if path.trim_end_matches('/').is_empty() {
        return Err("a copy to `/` cannot be a volume on Kubernetes".into());
    }
    if !d.spec.secrets.is_empty() && (path == SECRETS_DIR || inside(path, SECRETS_DIR)) {
        return Err(format!("{SECRETS_DIR} is where the secrets are mounted"));
    }
    let exact = d.files.iter().any(|f| f.guest.as_str() == path);
    let below = d.files.iter().any(|f| inside(f.guest.as_str(), path));
    match (exact, below) {
        (true, true) => Err(format!("`{path}` would be both a file and a directory")),
        (true, false) => Ok(Some(RootKind::File {
            name: file_name(path).to_string(),
        })),
        (false, true) => Ok(Some(RootKind::Dir)),
        (false, false) => Ok(None),
    }
}

fn file_name(path: &str) -> &str {
    let path = path.trim_end_matches('/');
    path.rsplit('/').next().unwrap_or(path)
}

/// A problem located at the first copy whose destination is `dest`.
fn problem_at(d: &Desired, dest: &GuestPath, message: String) -> Problem {
    let found = d
        .spec
        .copies
        .iter()
        .enumerate()
        .find(|(_, c)| &c.dest == dest);
    let (key, at) = match found {
        Some((i, c)) => (format!("copy[{i}]"), c.at.clone()),
        None => ("copy".to_string(), Location::at(&d.spec.file, "", 0)),
    };
    Problem { at, key, message }
}

/// The archive of every file of `d`, each under its volume's directory, or
/// a refusal if it would not fit a ConfigMap. File sizes are checked before
/// any file is read.
pub fn archive(d: &Desired, roots: &[Root]) -> Result<Vec<u8>, RenderError> {
    let sizes: u64 = d.copies.iter().map(|c| c.bytes).sum();
    too_big(d, sizes, "hold")?;
    let mut builder = tar::Builder::new(Vec::new());
    for f in &d.files {
        if let Some(entry) = entry_path(f, roots) {
            append_entry(&mut builder, f, &entry, Mtime::Zero).map_err(|e| RenderError::Read {
                path: f.host.as_path().to_path_buf(),
                source: io::Error::other(e),
            })?;
        }
    }
    let bytes = builder.into_inner().map_err(|source| RenderError::Read {
        path: d.spec.file.clone(),
        source,
    })?;
    too_big(
        d,
        bytes.len() as u64 + ARCHIVE_KEY.len() as u64,
        "make an archive of",
    )?;
    Ok(bytes)
}

/// Refuse `bytes` over the ConfigMap limit, located at the first copy.
fn too_big(d: &Desired, bytes: u64, what: &str) -> Result<(), RenderError> {
    if bytes <= CONFIG_MAP_LIMIT {
        return Ok(());
    }
    let Some(first) = d.spec.copies.first() else {
        return Ok(());
    };
    let message = format!(
        "the files to copy {what} {} ({bytes} bytes); a ConfigMap holds at most 1 MiB \
         ({CONFIG_MAP_LIMIT} bytes)",
        mib(bytes)
    );
    Err(RenderError::Refused(SpecError::invalid(vec![Problem {
        at: first.at.clone(),
        key: "copy".into(),
        message,
    }])))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Where file `f` goes in the archive: `VOLUME/PATH-IN-VOLUME`.
fn entry_path(f: &FileCopy, roots: &[Root]) -> Option<String> {
    let guest = f.guest.as_str();
    roots.iter().find_map(|r| match &r.kind {
        RootKind::File { name } if guest == r.dest.as_str() => Some(format!("{}/{name}", r.volume)),
        RootKind::Dir if inside(guest, r.dest.as_str()) => {
            let rel = &guest[r.dest.as_str().trim_end_matches('/').len() + 1..];
            Some(format!("{}/{rel}", r.volume))
        }
        RootKind::File { .. } | RootKind::Dir => None,
    })
}

/// The ConfigMap holding the archive.
pub fn config_map(d: &Desired, archive: Vec<u8>) -> ConfigMap {
    ConfigMap {
        metadata: meta::object_meta(d),
        binary_data: Some(BTreeMap::from([(
            ARCHIVE_KEY.to_string(),
            ByteString(archive),
        )])),
        ..ConfigMap::default()
    }
}

/// The pod volumes: the archive and one `emptyDir` per destination.
pub fn volumes(d: &Desired, roots: &[Root]) -> Vec<Volume> {
    if roots.is_empty() {
        return Vec::new();
    }
    let archive = Volume {
        name: ARCHIVE_VOLUME.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: d.spec.name.to_string(),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    };
    let dests = roots.iter().map(|r| Volume {
        name: r.volume.clone(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    });
    std::iter::once(archive).chain(dests).collect()
}

/// The destination volumes where the exec steps and the main container see
/// them: at each destination.
pub fn mounts(roots: &[Root]) -> Vec<VolumeMount> {
    roots
        .iter()
        .map(|r| VolumeMount {
            name: r.volume.clone(),
            mount_path: r.dest.as_str().to_string(),
            sub_path: match &r.kind {
                RootKind::File { name } => Some(name.clone()),
                RootKind::Dir => None,
            },
            ..VolumeMount::default()
        })
        .collect()
}

/// The init container that unpacks the archive into the volumes, if there
/// is anything to copy.
pub fn unpack_container(image: &ImageRef, roots: &[Root]) -> Option<Container> {
    if roots.is_empty() {
        return None;
    }
    let archive = VolumeMount {
        name: ARCHIVE_VOLUME.into(),
        mount_path: ARCHIVE_DIR.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    };
    let staging = roots.iter().map(|r| VolumeMount {
        name: r.volume.clone(),
        mount_path: format!("{STAGING_DIR}/{}", r.volume),
        ..VolumeMount::default()
    });
    let command = [
        "tar",
        "-xf",
        &format!("{ARCHIVE_DIR}/{ARCHIVE_KEY}"),
        "-C",
        STAGING_DIR,
    ];
    Some(Container {
        name: "copy".into(),
        image: Some(image.to_string()),
        command: Some(command.map(str::to_string).to_vec()),
        volume_mounts: Some(std::iter::once(archive).chain(staging).collect()),
        ..Container::default()
    })
}
