//! A secret's host copy for smolvm 0.8's `cp`, which reads a host path: an
//! anonymous memory file (memfd) with no name on any file system, freed by
//! the kernel when its last descriptor closes, so when bottle exits,
//! however it exits (`kill -9` included).
//!
//! Owns creating, filling and sealing the memfd and the path smolvm is
//! given ([`fd_path`], also the path a single copied file is given),
//! `/proc/PID/fd/N` of bottle's own descriptor: smolvm runs as the
//! same user, so it may open it. The descriptor is close-on-exec, so no
//! child inherits it. Must not write a value to any file system.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use rustix::fs::{MemfdFlags, SealFlags};

use crate::spec::HostPath;

/// A memfd holding one secret, sealed against change; closed on drop.
#[derive(Debug)]
pub struct SecretFd {
    _fd: OwnedFd,
    path: HostPath,
}

impl SecretFd {
    /// A new memfd holding `value`.
    pub fn new(value: &[u8]) -> io::Result<Self> {
        let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
        let mut file = File::from(rustix::fs::memfd_create("bottle-secret", flags)?);
        file.write_all(value)?;
        let fd = OwnedFd::from(file);
        let seals = SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL;
        rustix::fs::fcntl_add_seals(&fd, seals)?;
        let path = fd_path(&fd)?;
        Ok(SecretFd { _fd: fd, path })
    }

    /// The path another process of this user reads the value from.
    pub fn path(&self) -> &HostPath {
        &self.path
    }
}

/// The path another process of this user opens bottle's descriptor `fd`
/// by: `/proc/PID/fd/N`.
pub fn fd_path(fd: &impl AsRawFd) -> io::Result<HostPath> {
    let path = format!("/proc/{}/fd/{}", std::process::id(), fd.as_raw_fd());
    HostPath::parse(Path::new(&path)).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn the_value_is_readable_by_path_has_no_name_on_disk_and_goes_with_the_fd() {
        let fd = SecretFd::new(b"s3cr3t-value").unwrap();
        let path = fd.path().as_path().to_path_buf();
        assert!(path.starts_with(format!("/proc/{}/fd", std::process::id())));
        assert_eq!(fs::read(&path).unwrap(), b"s3cr3t-value");
        let target = fs::read_link(&path).unwrap();
        let target = target.to_string_lossy();
        assert!(target.starts_with("/memfd:bottle-secret"), "{target}");
        let meta = fs::metadata(&path).unwrap();
        assert!(meta.is_file(), "cp wants a regular file");
        let mut again = fs::OpenOptions::new().write(true).open(&path).unwrap();
        assert!(again.write_all(b"x").is_err(), "sealed against writes");
        drop((fd, again));
        // The descriptor number may be reused by another test's file at once.
        let now = fs::metadata(&path).map(|m| (m.dev(), m.ino()));
        assert_ne!(
            now.ok(),
            Some((meta.dev(), meta.ino())),
            "the memfd outlived its fd"
        );
    }
}
