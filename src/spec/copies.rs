//! Copy sources on the host, walked into what the guest receives.
//!
//! Owns the walk of each `[[copy]]` source into [`FileCopy`] entries
//! (regular files, and symbolic links copied as links with their target
//! text unchanged, as `tar` and `rsync -a` copy them), the resolution of a
//! `src` that is itself a symlink (once, here), the per-copy summary that
//! `plan` shows ([`CopySummary`]: files, links, bytes, and the links whose
//! target leaves the copied tree), and the copy part of the fingerprint.
//!
//! File contents are hashed through [`Hashes`], which reads only what
//! changed since the last run.
//!
//! Must not follow a link inside a copied tree (a link to a host secret
//! must reach the guest as a link, never as the secret), write anything,
//! or talk to smolvm.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::CopyEntry;
use super::fingerprint::{CopyPrint, file_entry, link_entry};
use super::hashes::Hashes;
use super::values::{GuestPath, HostPath};

/// One path to make in the guest, from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCopy {
    /// Where it is on the host (for a link: the link itself).
    pub host: HostPath,
    pub guest: GuestPath,
    pub kind: CopyKind,
}

/// What a copied path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyKind {
    /// A regular file with these permission bits (its content is read
    /// when it is copied).
    File { mode: u32 },
    /// A symbolic link, made as a link with this target text in the guest
    /// (where it is resolved). Never followed on the host.
    Link { target: String },
}

/// One `[[copy]]` entry as `plan` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySummary {
    /// The `src` as the spec names it (absolute).
    pub src: PathBuf,
    /// Where `src` points when it is itself a symlink (resolved once, when
    /// the spec is read); what is copied is read from there.
    pub resolved: Option<PathBuf>,
    pub dest: GuestPath,
    pub files: usize,
    pub links: usize,
    /// The size of the regular files, when the spec was read.
    pub bytes: u64,
    /// The links whose target, resolved in the guest from where the link
    /// is, names a path outside `dest`: a reviewer must see them.
    pub leaving: Vec<Leaving>,
}

/// A copied link whose target leaves its copied tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaving {
    pub link: GuestPath,
    pub target: String,
}

/// Every copy walked: the paths to make, and one summary and one print
/// per entry.
pub(super) struct Walked {
    pub files: Vec<FileCopy>,
    pub summaries: Vec<CopySummary>,
    pub prints: Vec<CopyPrint>,
}

/// The entries of the copy being walked: guest path → what is put there.
type Entries = BTreeMap<String, String>;

/// Walk every entry; a problem with one is reported as its message (the
/// caller locates it at the entry's `src`) and the others still walked.
pub(super) fn walk_all(
    entries: &[CopyEntry],
    hashes: &Hashes,
    mut problem: impl FnMut(&CopyEntry, String),
) -> Walked {
    let mut files = Vec::new();
    let mut summaries = Vec::new();
    let mut prints = Vec::new();
    for entry in entries {
        let mut walked = Entries::new();
        match walk_entry(entry, hashes, &mut files, &mut walked) {
            Ok(summary) => summaries.push(summary),
            Err(message) => problem(entry, message),
        }
        prints.push(CopyPrint::new(entry.dest.as_str(), walked));
    }
    Walked {
        files,
        summaries,
        prints,
    }
}

/// Walk one entry into `files`, hashing what it copies.
fn walk_entry(
    entry: &CopyEntry,
    hashes: &Hashes,
    files: &mut Vec<FileCopy>,
    entries: &mut Entries,
) -> Result<CopySummary, String> {
    host_string(&entry.src)?;
    let resolved = resolve_src(&entry.src)?;
    // Walked from its real path, so that every host path below holds no
    // link: the copy checks that what it opens is at that very path.
    let real = match &resolved {
        Some(r) => r.clone(),
        None => fs::canonicalize(&entry.src).map_err(|e| describe_io(&entry.src, &e))?,
    };
    host_string(&real)?;
    let src = real.as_path();
    let start = files.len();
    let mut bytes = 0;
    let mut into = Gather {
        hashes,
        files,
        entries,
        bytes: &mut bytes,
    };
    walk(src, &entry.dest, &mut into)?;
    Ok(summarize(entry, resolved, &files[start..], bytes))
}

/// Where `src` points if it is a symlink (followed to the end), or `None`.
fn resolve_src(src: &Path) -> Result<Option<PathBuf>, String> {
    let meta = fs::symlink_metadata(src).map_err(|e| describe_io(src, &e))?;
    if !meta.file_type().is_symlink() {
        return Ok(None);
    }
    let real = fs::canonicalize(src).map_err(|e| match e.kind() {
        _ if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            format!("{} is a symlink loop", src.display())
        }
        io::ErrorKind::NotFound => format!(
            "{} is a symlink to nothing (its target does not exist)",
            src.display()
        ),
        _ => describe_io(src, &e),
    })?;
    host_string(&real)?;
    Ok(Some(real))
}

/// Where a walk puts what it finds.
struct Gather<'w> {
    hashes: &'w Hashes,
    files: &'w mut Vec<FileCopy>,
    entries: &'w mut Entries,
    bytes: &'w mut u64,
}

fn walk(src: &Path, dest: &GuestPath, into: &mut Gather<'_>) -> Result<(), String> {
    let meta = fs::symlink_metadata(src).map_err(|e| describe_io(src, &e))?;
    let kind = meta.file_type();
    if kind.is_file() {
        *into.bytes += meta.len();
        let file = add_file(src, dest, &meta, into.hashes, into.entries)?;
        into.files.push(file);
        return Ok(());
    }
    if kind.is_symlink() {
        into.files.push(add_link(src, dest, into.entries)?);
        return Ok(());
    }
    if !kind.is_dir() {
        return Err(format!(
            "{} is {} (devices, fifos and sockets are not copied)",
            src.display(),
            Special::of(kind)
        ));
    }
    for name in sorted_names(src)? {
        let Some(n) = name.to_str() else {
            return Err(format!(
                "{} has a name that is not UTF-8",
                src.join(&name).display()
            ));
        };
        let child_dest = dest.join(n).map_err(|e| e.to_string())?;
        walk(&src.join(&name), &child_dest, into)?;
    }
    Ok(())
}

/// A kind of file that is never copied.
enum Special {
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl Special {
    fn of(t: fs::FileType) -> Self {
        match (
            t.is_fifo(),
            t.is_socket(),
            t.is_char_device(),
            t.is_block_device(),
        ) {
            (true, _, _, _) => Special::Fifo,
            (_, true, _, _) => Special::Socket,
            (_, _, true, _) => Special::CharDevice,
            (_, _, _, true) => Special::BlockDevice,
            _ => Special::Unknown,
        }
    }
}

impl fmt::Display for Special {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Special::Fifo => "a fifo",
            Special::Socket => "a socket",
            Special::CharDevice => "a character device",
            Special::BlockDevice => "a block device",
            Special::Unknown => "neither a file, a directory nor a symlink",
        })
    }
}

/// One file to copy, entered with its mode, size and content hash.
fn add_file(
    src: &Path,
    dest: &GuestPath,
    meta: &fs::Metadata,
    hashes: &Hashes,
    entries: &mut Entries,
) -> Result<FileCopy, String> {
    let host = host_string(src)?;
    let mode = meta.permissions().mode();
    let entry = file_entry(mode, meta.len(), &hashes.content(src, meta)?);
    entries.insert(dest.as_str().to_string(), entry);
    Ok(FileCopy {
        host,
        guest: dest.clone(),
        kind: CopyKind::File {
            mode: mode & 0o7777,
        },
    })
}

/// One link to copy as a link, entered with its target text.
fn add_link(src: &Path, dest: &GuestPath, entries: &mut Entries) -> Result<FileCopy, String> {
    let host = host_string(src)?;
    let target = fs::read_link(src).map_err(|e| describe_io(src, &e))?;
    let Some(target) = target.to_str() else {
        return Err(format!(
            "{} is a symlink whose target is not UTF-8",
            src.display()
        ));
    };
    entries.insert(dest.as_str().to_string(), link_entry(target));
    Ok(FileCopy {
        host,
        guest: dest.clone(),
        kind: CopyKind::Link {
            target: target.to_string(),
        },
    })
}

fn summarize(
    entry: &CopyEntry,
    resolved: Option<PathBuf>,
    files: &[FileCopy],
    bytes: u64,
) -> CopySummary {
    let leaving = files
        .iter()
        .filter_map(|f| match &f.kind {
            CopyKind::Link { target } if leaves(&entry.dest, &f.guest, target) => Some(Leaving {
                link: f.guest.clone(),
                target: target.clone(),
            }),
            CopyKind::Link { .. } | CopyKind::File { .. } => None,
        })
        .collect();
    let links = files
        .iter()
        .filter(|f| matches!(f.kind, CopyKind::Link { .. }))
        .count();
    CopySummary {
        src: entry.src.clone(),
        resolved,
        dest: entry.dest.clone(),
        files: files.len() - links,
        links,
        bytes,
        leaving,
    }
}

/// Whether `target`, the text of a link at guest path `link`, names a
/// path outside the tree copied to `tree`, read as the guest reads it
/// (relative to the link's directory; `..` stops at `/`). Lexical: a link
/// on the way is judged on its own, and every link is judged.
pub fn leaves(tree: &GuestPath, link: &GuestPath, target: &str) -> bool {
    let mut at = match target.starts_with('/') {
        true => Vec::new(),
        false => {
            let mut parent = normal(Vec::new(), link.as_str());
            parent.pop();
            parent
        }
    };
    at = normal(at, target);
    !at.starts_with(&normal(Vec::new(), tree.as_str()))
}

/// `base` extended by the components of `path`, with `.` dropped and `..`
/// taking one off (never past `/`).
fn normal<'a>(mut base: Vec<&'a str>, path: &'a str) -> Vec<&'a str> {
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                base.pop();
            }
            name => base.push(name),
        }
    }
    base
}

/// Feed the content of the file at `path` to `h`.
pub(super) fn update_file(h: &mut blake3::Hasher, path: &Path) -> Result<(), String> {
    let file = fs::File::open(path).map_err(|e| describe_io(path, &e))?;
    h.update_reader(file).map_err(|e| describe_io(path, &e))?;
    Ok(())
}

/// The hash of the content of the regular file at `path`, opened without
/// following a link and without blocking (a fifo put in its place is
/// refused, never waited on).
pub(super) fn content_hash(path: &Path) -> Result<blake3::Hash, String> {
    let file = open_file(path).map_err(|e| describe_io(path, &e))?;
    let meta = file.metadata().map_err(|e| describe_io(path, &e))?;
    if !meta.is_file() {
        return Err(format!("{} is no longer a regular file", path.display()));
    }
    let mut h = blake3::Hasher::new();
    h.update_reader(file).map_err(|e| describe_io(path, &e))?;
    Ok(h.finalize())
}

/// Open `path` to read: its last component never followed if it is a
/// link, and never waiting (for a fifo's writer).
pub fn open_file(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
}

pub(super) fn describe_io(path: &Path, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => format!("{} does not exist", path.display()),
        _ => format!("cannot read {}: {e}", path.display()),
    }
}

/// The entries of directory `dir`, in name order.
fn sorted_names(dir: &Path) -> Result<Vec<std::ffi::OsString>, String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(|e| describe_io(dir, &e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(|e| describe_io(dir, &e))?;
    names.sort();
    Ok(names)
}

/// The host path as smolvm's `cp` can take it: UTF-8 and without `:`.
fn host_string(path: &Path) -> Result<HostPath, String> {
    HostPath::parse(path).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves_from(link: &str, target: &str) -> bool {
        let tree = GuestPath::parse("/workspace").unwrap();
        leaves(&tree, &GuestPath::parse(link).unwrap(), target)
    }

    #[test]
    fn a_device_is_named_as_one() {
        let null = fs::symlink_metadata("/dev/null").unwrap().file_type();
        assert_eq!(Special::of(null).to_string(), "a character device");
        let block = fs::read_dir("/dev")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_type().ok())
            .find(|t| t.is_block_device());
        if let Some(t) = block {
            assert_eq!(Special::of(t).to_string(), "a block device");
        }
    }

    #[test]
    fn a_link_leaves_its_tree_when_its_target_resolves_outside_it() {
        assert!(leaves_from("/workspace/notes.txt", "../secret.txt"));
        assert!(leaves_from(
            "/workspace/a/notes.txt",
            "../../../.aws/credentials"
        ));
        assert!(leaves_from("/workspace/a", "/etc/passwd"));
        assert!(leaves_from("/workspace/a", "../workspace2/x"));
        assert!(leaves_from("/workspace/a", ".."));
        assert!(leaves_from("/workspace/a", "/../../etc"));
    }

    #[test]
    fn a_link_stays_when_its_target_resolves_inside_it() {
        assert!(!leaves_from("/workspace/a/l", "../b"));
        assert!(!leaves_from("/workspace/l", "."));
        assert!(!leaves_from("/workspace/a/l", "./x/../../y"));
        assert!(!leaves_from("/workspace/l", "/workspace/x"));
        assert!(!leaves_from("/workspace/l", "/workspace"));
        let root = GuestPath::parse("/").unwrap();
        let l = GuestPath::parse("/a/l").unwrap();
        assert!(!leaves(&root, &l, "../../../../etc"), "nothing leaves /");
        let slashed = GuestPath::parse("/workspace/").unwrap();
        let l = GuestPath::parse("/workspace/l").unwrap();
        assert!(!leaves(&slashed, &l, "x"));
    }
}
