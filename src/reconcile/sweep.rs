//! Leftovers of a killed bottle: copy archives under `CACHE/uploads/` and
//! `$TMPDIR/bottle-secret-*` files (the temp files in which bottle used to
//! stage secrets before it kept them in memfds). Every `apply` and `gc`
//! removes them.
//!
//! Owns the rule of what a leftover is: a regular file of this user, in one
//! of those places, that no live process holds open. Whoever writes such a
//! file holds it open from the moment it has its name until it is removed
//! (the archive keeps its descriptor; a secret temp file was a `tempfile`,
//! open until removed), and the kernel closes every descriptor of a process
//! that dies, however it dies. So a file no process holds open has no live
//! writer, and one some process holds open is never touched. Open files
//! are matched by device and inode (what `/proc/PID/fd/N` resolves to), so
//! a file keeps its holder across a rename. Only processes this user may
//! inspect are seen, which covers every bottle of this user on this host
//! (another PID namespace sharing the cache directory is not seen).
//!
//! Must not remove anything else: not a directory, a symlink, another
//! user's file, or a file whose inode changed since it was found.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where leftovers may be: the cache directory and the temporary directory.
#[derive(Debug, Clone)]
pub struct Places {
    pub cache_dir: PathBuf,
    pub tmp_dir: PathBuf,
}

/// The prefix of the temp files older bottles staged secrets in.
const SECRET_TEMP_PREFIX: &str = "bottle-secret-";

/// A file's identity: device and inode.
type FileId = (u64, u64);

/// Every leftover now, in path order (nothing is removed).
pub fn find(places: &Places) -> Vec<PathBuf> {
    leftovers(places).into_iter().map(|(p, _)| p).collect()
}

/// Remove every leftover; returns those this call removed, in path order.
pub fn sweep(places: &Places) -> Vec<PathBuf> {
    leftovers(places)
        .into_iter()
        .filter(|(path, id)| same_file(path, *id) && fs::remove_file(path).is_ok())
        .map(|(p, _)| p)
        .collect()
}

/// The candidates that no process holds open.
fn leftovers(places: &Places) -> Vec<(PathBuf, FileId)> {
    let candidates = candidates(places);
    if candidates.is_empty() {
        return candidates;
    }
    let held = held_open();
    candidates
        .into_iter()
        .filter(|(_, id)| !held.contains(id))
        .collect()
}

/// This user's regular files in `CACHE/uploads/` and `$TMPDIR/bottle-secret-*`.
fn candidates(places: &Places) -> Vec<(PathBuf, FileId)> {
    let uid = rustix::process::getuid().as_raw();
    let uploads = files_in(&places.cache_dir.join("uploads"), "");
    let secrets = files_in(&places.tmp_dir, SECRET_TEMP_PREFIX);
    let mut v: Vec<(PathBuf, FileId)> = uploads
        .into_iter()
        .chain(secrets)
        .filter_map(|p| {
            let m = fs::symlink_metadata(&p).ok()?;
            (m.file_type().is_file() && m.uid() == uid).then_some((p, (m.dev(), m.ino())))
        })
        .collect();
    v.sort();
    v
}

/// The entries of `dir` whose names start with `prefix`.
fn files_in(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect()
}

/// Every file some process this user may inspect holds open.
fn held_open() -> HashSet<FileId> {
    let Ok(procs) = fs::read_dir("/proc") else {
        return HashSet::new();
    };
    procs
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| fs::read_dir(e.path().join("fd")).ok())
        .flat_map(|fds| fds.filter_map(Result::ok))
        .filter_map(|fd| fs::metadata(fd.path()).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect()
}

/// Whether `path` still names the file `id`.
fn same_file(path: &Path, id: FileId) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == id)
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;

    #[test]
    fn files_no_process_holds_open_go_and_held_ones_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        let tmp_dir = tmp.path().join("tmp");
        fs::create_dir_all(cache.join("uploads/sub")).unwrap();
        fs::create_dir_all(&tmp_dir).unwrap();
        let write = |p: PathBuf| {
            fs::write(&p, "x").unwrap();
            p
        };
        let stale_tar = write(cache.join("uploads/agent-0123456789abcdef.tar"));
        let stale_part = write(cache.join("uploads/.upload-Ab12Cd"));
        let stale_secret = write(tmp_dir.join("bottle-secret-Xy12Zw"));
        let live_tar = write(cache.join("uploads/other-fedcba9876543210.tar"));
        let live_secret = write(tmp_dir.join("bottle-secret-Live01"));
        let unrelated = write(tmp_dir.join("not-bottle-secret"));
        std::os::unix::fs::symlink(&unrelated, tmp_dir.join("bottle-secret-link")).unwrap();
        let _held = (
            File::open(&live_tar).unwrap(),
            File::open(&live_secret).unwrap(),
        );
        let places = &Places {
            cache_dir: cache.clone(),
            tmp_dir: tmp_dir.clone(),
        };
        let mut expected = vec![stale_tar, stale_part, stale_secret];
        expected.sort();
        assert_eq!(find(places), expected);
        assert!(expected.iter().all(|p| p.exists()), "find removes nothing");
        assert_eq!(sweep(places), expected);
        assert!(expected.iter().all(|p| !p.exists()));
        for kept in [
            &live_tar,
            &live_secret,
            &unrelated,
            &cache.join("uploads/sub"),
        ] {
            assert!(kept.exists(), "{}", kept.display());
        }
        assert!(
            tmp_dir
                .join("bottle-secret-link")
                .symlink_metadata()
                .is_ok()
        );
        assert_eq!(sweep(places), Vec::<PathBuf>::new());
    }

    #[test]
    fn a_file_replaced_after_it_was_found_is_not_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a");
        fs::write(&path, "old").unwrap();
        let m = fs::metadata(&path).unwrap();
        let id = (m.dev(), m.ino());
        let _keep = File::open(&path).unwrap();
        fs::remove_file(&path).unwrap();
        fs::write(&path, "new").unwrap();
        assert!(!same_file(&path, id));
        assert!(same_file(&path, {
            let m = fs::metadata(&path).unwrap();
            (m.dev(), m.ino())
        }));
    }

    #[test]
    fn nothing_to_look_at_is_nothing_found() {
        let tmp = tempfile::tempdir().unwrap();
        let places = Places {
            cache_dir: tmp.path().join("none"),
            tmp_dir: tmp.path().join("none"),
        };
        assert_eq!(sweep(&places), Vec::<PathBuf>::new());
    }
}
