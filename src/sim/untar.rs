//! `tar -x` in a guest: each entry made inside the guest root as GNU and
//! busybox tar make it when run as root — regular files with their modes,
//! directories, and symbolic links as links with their target text
//! unchanged (a link to `/etc` stays a link; it is resolved in the guest).
//!
//! Every entry's path is resolved inside the guest root (links on the way
//! followed as the guest would, see `rootfs`), and whatever is at the
//! entry's own path (a file, a link, an empty directory) is replaced,
//! never written through. So no entry — `a/x` after `a -> /`, `../../x`,
//! a link then a file of the same name — reaches outside the root. Must
//! not run a host program.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::rootfs::{self, Last};

/// Unpack the tar read from `archive` at guest directory `dir` (absolute,
/// or relative to `cwd`) of the guest whose root is `root`.
pub fn unpack(root: &Path, cwd: &str, dir: &str, archive: impl Read) -> Result<(), String> {
    let dest = rootfs::resolve(root, cwd, dir, Last::Follow)?;
    fs::create_dir_all(&dest).map_err(|e| format!("{dir}: {e}"))?;
    let mut t = tar::Archive::new(archive);
    for entry in t.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let name = entry.path().map_err(|e| e.to_string())?;
        let Some(name) = name.to_str().map(str::to_string) else {
            return Err(format!("{}: not a UTF-8 name", name.display()));
        };
        let guest = format!("{}/{name}", dir.trim_end_matches('/'));
        make(root, cwd, &guest, &mut entry).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// Make one entry at guest path `guest`.
fn make<R: Read>(
    root: &Path,
    cwd: &str,
    guest: &str,
    entry: &mut tar::Entry<R>,
) -> Result<(), String> {
    let mode = entry.header().mode().map_err(|e| e.to_string())? & 0o7777;
    match entry.header().entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            let at = place(root, cwd, guest)?;
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&at)
                .map_err(|e| e.to_string())?;
            io::copy(entry, &mut file).map_err(|e| e.to_string())?;
            fs::set_permissions(&at, fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())
        }
        tar::EntryType::Symlink => {
            let target = entry.link_name().map_err(|e| e.to_string())?;
            let target = target.ok_or("a symlink entry without a target")?;
            let at = place(root, cwd, guest)?;
            std::os::unix::fs::symlink(&target, at).map_err(|e| e.to_string())
        }
        tar::EntryType::Directory => {
            let at = rootfs::resolve(root, cwd, guest, Last::Follow)?;
            fs::create_dir_all(&at).map_err(|e| e.to_string())?;
            fs::set_permissions(&at, fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())
        }
        other => Err(format!("unsupported entry type {other:?}")),
    }
}

/// The host path where the entry at `guest` is made: its directory made
/// (inside the root), and whatever was at the path itself removed.
fn place(root: &Path, cwd: &str, guest: &str) -> Result<std::path::PathBuf, String> {
    let at = rootfs::resolve(root, cwd, guest, Last::Keep)?;
    if at == root {
        return Err("cannot replace the root directory".into());
    }
    if let Some(parent) = at.parent() {
        fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    let removed = match fs::symlink_metadata(&at) {
        Ok(m) if m.is_dir() => fs::remove_dir(&at),
        Ok(_) => fs::remove_file(&at),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    removed.map_err(|e| e.to_string())?;
    Ok(at)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// A tar of `(path, Some(content) | None for a link, target or mode)`.
    fn tar_of(entries: &[(&str, Entry)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, e) in entries {
            let mut h = tar::Header::new_gnu();
            match e {
                Entry::File(body, mode) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(body.len() as u64);
                    h.set_mode(*mode);
                    // Set raw: the builder refuses names with `..`.
                    h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
                    h.set_cksum();
                    b.append(&h, body.as_bytes()).unwrap();
                }
                Entry::Link(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    h.set_mode(0o777);
                    b.append_link(&mut h, path, target).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    enum Entry {
        File(&'static str, u32),
        Link(&'static str),
    }

    /// A guest root inside a directory that also holds `outside`, a file
    /// the guest must never reach.
    fn world() -> (tempfile::TempDir, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("guests/vm");
        fs::create_dir_all(&root).unwrap();
        (tmp, root)
    }

    #[test]
    fn symlink_entries_become_links_with_their_target_text() {
        let (_tmp, root) = world();
        let bytes = tar_of(&[
            ("w/etc", Entry::Link("/etc")),
            ("w/notes.txt", Entry::Link("../secret.txt")),
            ("w/run.sh", Entry::File("hi\n", 0o751)),
        ]);
        unpack(&root, "/", "/", &bytes[..]).unwrap();
        assert_eq!(
            fs::read_link(root.join("w/etc")).unwrap(),
            Path::new("/etc")
        );
        assert_eq!(
            fs::read_link(root.join("w/notes.txt")).unwrap(),
            Path::new("../secret.txt")
        );
        let mode = fs::metadata(root.join("w/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o751);
    }

    #[test]
    fn an_entry_under_a_link_to_the_root_stays_in_the_guest_root() {
        let (tmp, root) = world();
        let bytes = tar_of(&[
            ("a", Entry::Link("/")),
            ("a/bottle-sim-escape-check", Entry::File("in", 0o644)),
            ("up", Entry::Link("../../..")),
            ("up/y", Entry::File("in", 0o644)),
            ("../../z", Entry::File("in", 0o644)),
        ]);
        unpack(&root, "/", "/", &bytes[..]).unwrap();
        assert_eq!(
            fs::read_to_string(root.join("bottle-sim-escape-check")).unwrap(),
            "in"
        );
        assert!(
            !Path::new("/bottle-sim-escape-check").exists(),
            "written through the link on the host"
        );
        assert_eq!(fs::read_to_string(root.join("y")).unwrap(), "in");
        assert_eq!(fs::read_to_string(root.join("z")).unwrap(), "in");
        for escaped in ["y", "z", "guests/y", "guests/z"] {
            assert!(!tmp.path().join(escaped).exists(), "{escaped} escaped");
        }
    }

    #[test]
    fn a_file_entry_replaces_a_link_instead_of_writing_through_it() {
        let (tmp, root) = world();
        let outside = tmp.path().join("outside");
        fs::write(&outside, "untouched").unwrap();
        symlink(&outside, root.join("f")).unwrap();
        unpack(
            &root,
            "/",
            "/",
            &tar_of(&[("f", Entry::File("new", 0o600))])[..],
        )
        .unwrap();
        assert_eq!(fs::read_to_string(&outside).unwrap(), "untouched");
        assert_eq!(fs::read_to_string(root.join("f")).unwrap(), "new");
        assert!(
            !fs::symlink_metadata(root.join("f"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}
