//! The copy archive: every file and link of a spec's `[[copy]]` entries in
//! one tar, streamed from disk (files are never held in memory), with their
//! modes, owned by root in the guest. Written 0600 under a temporary name,
//! renamed into place only when complete, held open and removed when
//! dropped (so the sweep of a killed bottle's leftovers, `sweep`, never
//! takes it for one).
//!
//! Always well-formed: each file entry holds exactly the bytes its header
//! declares. A file that is not the regular file resolved from the spec
//! when opened (it became a link, a fifo…), that shrinks or grows while it
//! is read, or whose size or modification time differ afterwards fails the
//! whole archive with [`ArchiveError::Changed`] naming it; nothing partial
//! is left. A link is written as a link with the target text resolved from
//! the spec; no link is ever followed.
//!
//! Must not decide what is copied (`spec::copies` does) nor run anything.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::spec::{CopyKind, FileCopy};

/// A written archive, held open and removed on drop.
#[derive(Debug)]
pub struct Archive {
    path: PathBuf,
    _open: File,
}

impl Drop for Archive {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Why the archive could not be written. Nothing is left at its path.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read {}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{} changed while bottle was archiving it ({what}); nothing was uploaded, \
         apply again once it is stable",
        file.display()
    )]
    Changed { file: PathBuf, what: Change },
    #[error(transparent)]
    Write(#[from] io::Error),
}

/// How a file was seen to change while it was archived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It is no longer the regular file it was (a link, a fifo, another file).
    Replaced,
    /// It ended before the size it had when opened.
    Shrank { size: u64 },
    /// It had more bytes than the size it had when opened.
    Grew { size: u64 },
    /// Its size or modification time differ after it was read.
    Modified,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Replaced => f.write_str("it is no longer the regular file it was"),
            Change::Shrank { size } => write!(f, "it ended before its {size} bytes"),
            Change::Grew { size } => write!(f, "it had more than its {size} bytes"),
            Change::Modified => f.write_str("its size or modification time changed"),
        }
    }
}

/// Write `files` as a tar at `path` (entries relative to `/`).
pub fn write(path: &Path, files: &[FileCopy]) -> Result<Archive, ArchiveError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = tempfile::Builder::new()
        .prefix(".upload-")
        .tempfile_in(dir)?;
    let mut builder = tar::Builder::new(BufWriter::new(tmp.as_file()));
    for f in files {
        append(&mut builder, f)?;
    }
    builder
        .into_inner()?
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?;
    let open = tmp.persist(path).map_err(|e| e.error)?;
    Ok(Archive {
        path: path.to_path_buf(),
        _open: open,
    })
}

fn append<W: Write>(builder: &mut tar::Builder<W>, f: &FileCopy) -> Result<(), ArchiveError> {
    let name = f.guest.as_str().trim_start_matches('/');
    append_entry(builder, f, name, Mtime::OfFile)
}

/// The modification time a file entry carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mtime {
    /// The file's own.
    OfFile,
    /// Zero, so that the same files always make the same archive.
    Zero,
}

/// Append `f` as entry `name`: a regular file as exactly the bytes its
/// header declares (refused if it changed or is no longer that file), a
/// link as a link. Nothing is followed.
pub fn append_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    f: &FileCopy,
    name: &str,
    mtime: Mtime,
) -> Result<(), ArchiveError> {
    match &f.kind {
        CopyKind::File { .. } => {
            let file = open_regular(f.host.as_path())?;
            append_file(builder, name, f.host.as_path(), &file, &file, mtime)
        }
        CopyKind::Link { target } => Ok(builder.append_link(&mut link_header(), name, target)?),
    }
}

/// Open `path` as the regular file it was when the spec was read: if it
/// is now a link (or anything else), or was swapped between the check and
/// the open, it is refused rather than followed.
pub(super) fn open_regular(path: &Path) -> Result<File, ArchiveError> {
    let read = |source| ArchiveError::Read {
        file: path.to_path_buf(),
        source,
    };
    let changed = ArchiveError::Changed {
        file: path.to_path_buf(),
        what: Change::Replaced,
    };
    let seen = fs::symlink_metadata(path).map_err(read)?;
    if !seen.file_type().is_file() {
        return Err(changed);
    }
    let file = match crate::spec::open_file(path) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(changed);
        }
        Err(e) => return Err(read(e)),
    };
    let opened = file.metadata().map_err(read)?;
    let same = (opened.dev(), opened.ino()) == (seen.dev(), seen.ino()) && opened.is_file();
    match same && opened_at(&file, path) {
        true => Ok(file),
        false => Err(changed),
    }
}

/// Whether `file` is the file at `path` itself, reached through no link:
/// the kernel's name for the open file is `path`. (A directory above it
/// swapped for a link to elsewhere gives another name.)
fn opened_at(file: &File, path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let fd = format!("/proc/self/fd/{}", file.as_raw_fd());
    fs::read_link(fd).is_ok_and(|real| real == path)
}

/// Append the regular file `file` (named `host` in errors) as entry
/// `name`, reading its bytes from `content`: exactly the size it had when
/// opened, then checking that it neither grew nor changed.
fn append_file<W: Write, R: Read>(
    builder: &mut tar::Builder<W>,
    name: &str,
    host: &Path,
    file: &File,
    content: R,
    mtime: Mtime,
) -> Result<(), ArchiveError> {
    let read = |source| ArchiveError::Read {
        file: host.to_path_buf(),
        source,
    };
    let changed = |what| ArchiveError::Changed {
        file: host.to_path_buf(),
        what,
    };
    let before = file.metadata().map_err(read)?;
    let size = before.len();
    let mut body = Exact::new(content, size);
    let appended = builder.append_data(&mut file_header(&before, mtime), name, &mut body);
    match (appended, body.fault.take()) {
        (_, Some(Fault::Short)) => return Err(changed(Change::Shrank { size })),
        (_, Some(Fault::Read(source))) => return Err(read(source)),
        (Err(e), None) => return Err(ArchiveError::Write(e)),
        (Ok(()), None) => {}
    }
    if body.has_more().map_err(read)? {
        return Err(changed(Change::Grew { size }));
    }
    let after = file.metadata().map_err(read)?;
    match same_state(&before, &after) {
        true => Ok(()),
        false => Err(changed(Change::Modified)),
    }
}

fn same_state(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    (a.len(), a.mtime(), a.mtime_nsec()) == (b.len(), b.mtime(), b.mtime_nsec())
}

fn file_header(meta: &fs::Metadata, mtime: Mtime) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(meta.len());
    header.set_mode(meta.mode() & 0o7777);
    header.set_mtime(match mtime {
        Mtime::OfFile => u64::try_from(meta.mtime()).unwrap_or(0),
        Mtime::Zero => 0,
    });
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn link_header() -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Why an [`Exact`] reader stopped.
#[derive(Debug)]
enum Fault {
    /// The source ended before the declared size.
    Short,
    /// Reading the source failed.
    Read(io::Error),
}

/// A reader of exactly `left` bytes of `inner`: it stops there, and fails
/// (recording why) if `inner` ends first or cannot be read.
struct Exact<R> {
    inner: R,
    left: u64,
    fault: Option<Fault>,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, left: u64) -> Self {
        Exact {
            inner,
            left,
            fault: None,
        }
    }

    /// Whether `inner` has bytes beyond the declared size.
    fn has_more(&mut self) -> io::Result<bool> {
        let mut one = [0u8; 1];
        loop {
            match self.inner.read(&mut one) {
                Ok(n) => return Ok(n > 0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = usize::try_from(self.left).map_or(buf.len(), |l| l.min(buf.len()));
        match self.inner.read(&mut buf[..max]) {
            Ok(0) => {
                self.fault = Some(Fault::Short);
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank"))
            }
            Ok(n) => {
                self.left -= n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let shown = io::Error::new(e.kind(), e.to_string());
                self.fault = Some(Fault::Read(e));
                Err(shown)
            }
        }
    }
}

#[cfg(test)]
mod tests;
