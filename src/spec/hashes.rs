//! The content hashes of copied files (and of a spec's pack) from the last
//! time they were read, so that a file that did not change is not read
//! again: hashing costs what changed, not the size of the workspace.
//!
//! A hash is reused only while the file's size, modification time, change
//! time, inode and device are all what they were when it was read (the
//! change time is set by the kernel on every write, rename or `touch`, so a
//! file rewritten with its old size and modification time is still read
//! again), and only if the file was last modified and changed before the
//! second in which it was read (a file written in that same second could
//! have changed after it was read without its times showing it, on a file
//! system that keeps whole seconds). This is the check git's index and rsync make.
//!
//! Owns the lookup and the JSON form of the cache ([`Hashes::to_json`]);
//! where the cache lives and how it is written is `state::hashes`'s. Reads
//! the files it hashes; writes nothing.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::copies::content_hash;

/// What a file was when its content was hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Known {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
    /// Seconds since the epoch when it was read.
    read_at: i64,
    /// blake3, hex.
    hash: String,
}

impl Known {
    fn of(meta: &fs::Metadata, read_at: i64, hash: &blake3::Hash) -> Self {
        Known {
            size: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
            read_at,
            hash: hash.to_hex().to_string(),
        }
    }

    /// Size, times, inode and device.
    fn identity(&self) -> (u64, i128, i128, u64, u64) {
        (self.size, self.mtime_ns, self.ctime_ns, self.ino, self.dev)
    }

    /// The hash, if the file is still what it was and was not modified in
    /// the second it was read.
    fn still(&self, meta: &fs::Metadata) -> Option<blake3::Hash> {
        let now = Known::of(meta, self.read_at, &blake3::Hash::from([0; 32]));
        let same = now.identity() == self.identity();
        let second = ns(self.read_at, 0);
        let settled = self.mtime_ns < second && self.ctime_ns < second;
        match same && settled {
            true => blake3::Hash::from_hex(&self.hash).ok(),
            false => None,
        }
    }
}

fn ns(secs: i64, nsec: i64) -> i128 {
    i128::from(secs) * 1_000_000_000 + i128::from(nsec)
}

/// The JSON form: host path → what it was.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Form {
    version: u32,
    files: BTreeMap<PathBuf, Known>,
}

/// The version of [`Form`]; a cache of another version is not used.
const FORM_VERSION: u32 = 1;

/// The hashes known from before, and the ones this run used or made.
#[derive(Debug, Default)]
pub struct Hashes {
    before: BTreeMap<PathBuf, Known>,
    used: RefCell<BTreeMap<PathBuf, Known>>,
    /// How many files were read (not taken from `before`).
    read: Cell<usize>,
}

impl Hashes {
    /// A cache that knows nothing: every file is read.
    pub fn none() -> Self {
        Hashes::default()
    }

    /// The cache written by [`Hashes::to_json`]; one that cannot be read
    /// (or is of another version) knows nothing.
    pub fn from_json(text: &str) -> Self {
        let before = match serde_json::from_str::<Form>(text) {
            Ok(f) if f.version == FORM_VERSION => f.files,
            Ok(_) | Err(_) => BTreeMap::new(),
        };
        Hashes {
            before,
            ..Hashes::default()
        }
    }

    /// The files this run hashed or reused, for the next run: files no
    /// longer copied are dropped.
    pub fn to_json(&self) -> String {
        let form = Form {
            version: FORM_VERSION,
            files: self.used.borrow().clone(),
        };
        serde_json::to_string(&form).unwrap_or_default()
    }

    /// Whether this run read any file, or dropped one it knew: the cache
    /// on disk is out of date.
    pub fn changed(&self) -> bool {
        self.read.get() > 0 || self.used.borrow().len() != self.before.len()
    }

    /// How many files this run read.
    pub fn read_count(&self) -> usize {
        self.read.get()
    }

    /// The content hash of the regular file at `path`, whose metadata is
    /// `meta`: from the cache if it still holds, else read.
    pub fn content(&self, path: &Path, meta: &fs::Metadata) -> Result<blake3::Hash, String> {
        let known = self.before.get(path);
        if let Some((k, hash)) = known.and_then(|k| k.still(meta).map(|h| (k, h))) {
            self.used.borrow_mut().insert(path.to_path_buf(), k.clone());
            return Ok(hash);
        }
        let read_at = unix_seconds(SystemTime::now());
        let hash = content_hash(path)?;
        self.read.set(self.read.get() + 1);
        let known = Known::of(meta, read_at, &hash);
        self.used.borrow_mut().insert(path.to_path_buf(), known);
        Ok(hash)
    }
}

/// Whole seconds since the epoch (before it: negative).
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(p: &Path) -> fs::Metadata {
        fs::symlink_metadata(p).unwrap()
    }

    /// `h` as a cache written `secs` after it was: when every file it
    /// holds had settled.
    fn read_at(h: &Hashes, secs: impl Fn(i64) -> i64) -> String {
        let mut v: serde_json::Value = serde_json::from_str(&h.to_json()).unwrap();
        for k in v["files"].as_object_mut().unwrap().values_mut() {
            let at = secs(k["read_at"].as_i64().unwrap());
            k["read_at"] = at.into();
        }
        v.to_string()
    }

    fn read_later(h: &Hashes) -> String {
        read_at(h, |at| at + 2)
    }

    fn set_mtime(p: &Path, t: SystemTime) {
        let file = fs::File::options().write(true).open(p).unwrap();
        file.set_modified(t).unwrap();
    }

    /// A file last modified an hour ago, so a hash of it can be reused.
    fn settled(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        let hour_ago = SystemTime::now() - std::time::Duration::from_secs(3600);
        set_mtime(&p, hour_ago);
        p
    }

    #[test]
    fn an_unchanged_file_is_not_read_again() {
        let tmp = tempfile::tempdir().unwrap();
        let p = settled(tmp.path(), "a", "one");
        let first = Hashes::none();
        let h = first.content(&p, &meta(&p)).unwrap();
        assert_eq!(h, blake3::hash(b"one"));
        assert_eq!(first.read_count(), 1);
        assert!(first.changed());
        let again = Hashes::from_json(&read_later(&first));
        assert_eq!(again.content(&p, &meta(&p)).unwrap(), h);
        assert_eq!(again.read_count(), 0, "taken from the cache");
        assert!(!again.changed(), "nothing to write back");
    }

    /// The cache is believed while the file's identity holds: a wrong hash
    /// planted for the file's exact identity is what comes back, which is
    /// how a test can see that the file was not read.
    #[test]
    fn the_cached_hash_is_used_without_reading_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = settled(tmp.path(), "a", "one");
        let first = Hashes::none();
        first.content(&p, &meta(&p)).unwrap();
        let planted = blake3::hash(b"planted").to_hex().to_string();
        let real = blake3::hash(b"one").to_hex().to_string();
        let json = read_later(&first).replace(&real, &planted);
        let cached = Hashes::from_json(&json);
        assert_eq!(
            cached.content(&p, &meta(&p)).unwrap(),
            blake3::hash(b"planted")
        );
    }

    #[test]
    fn a_rewrite_with_the_same_size_and_mtime_is_read_again() {
        let tmp = tempfile::tempdir().unwrap();
        let p = settled(tmp.path(), "a", "one");
        let first = Hashes::none();
        first.content(&p, &meta(&p)).unwrap();
        let mtime = meta(&p).modified().unwrap();
        fs::write(&p, "two").unwrap();
        set_mtime(&p, mtime);
        assert_eq!(meta(&p).len(), 3);
        let again = Hashes::from_json(&read_later(&first));
        assert_eq!(again.content(&p, &meta(&p)).unwrap(), blake3::hash(b"two"));
        assert_eq!(again.read_count(), 1, "its change time moved");
        assert!(again.changed(), "one file read, as many known: still new");
    }

    #[test]
    fn a_file_modified_in_the_second_it_was_read_is_read_again() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("fresh");
        fs::write(&p, "now").unwrap();
        let first = Hashes::none();
        first.content(&p, &meta(&p)).unwrap();
        let again = Hashes::from_json(&first.to_json());
        again.content(&p, &meta(&p)).unwrap();
        assert_eq!(again.read_count(), 1, "written too recently to trust");
    }

    /// The second a file was read is not settled: a file last modified, or
    /// changed, at its very start (a file system keeping whole seconds) is
    /// read again.
    #[test]
    fn a_file_modified_at_the_start_of_the_second_it_was_read_is_read_again() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("a");
        fs::write(&p, "x").unwrap();
        let whole = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        set_mtime(&p, whole);
        let first = Hashes::none();
        first.content(&p, &meta(&p)).unwrap();
        let ctime = meta(&p).ctime();
        for (at, read) in [(1_700_000_000, 1), (ctime, 1), (ctime + 1, 0)] {
            let h = Hashes::from_json(&read_at(&first, |_| at));
            h.content(&p, &meta(&p)).unwrap();
            assert_eq!(h.read_count(), read, "read at second {at}");
        }
    }

    #[test]
    fn seconds_before_the_epoch_are_negative() {
        let before = SystemTime::UNIX_EPOCH - std::time::Duration::from_secs(5);
        assert_eq!(unix_seconds(before), -5);
        assert_eq!(unix_seconds(SystemTime::UNIX_EPOCH), 0);
    }

    #[test]
    fn files_no_longer_hashed_are_dropped_and_a_bad_cache_knows_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (settled(tmp.path(), "a", "a"), settled(tmp.path(), "b", "b"));
        let first = Hashes::none();
        first.content(&a, &meta(&a)).unwrap();
        first.content(&b, &meta(&b)).unwrap();
        let second = Hashes::from_json(&first.to_json());
        second.content(&a, &meta(&a)).unwrap();
        assert!(second.changed(), "b was dropped");
        assert!(!second.to_json().contains(b.to_str().unwrap()));
        assert!(second.to_json().contains(a.to_str().unwrap()));
        let planted = first.to_json().replace(
            blake3::hash(b"a").to_hex().as_str(),
            blake3::hash(b"planted").to_hex().as_str(),
        );
        let other_version = planted.replace("\"version\":1", "\"version\":99");
        assert_ne!(other_version, planted);
        for bad in ["", "{", other_version.as_str()] {
            let h = Hashes::from_json(bad);
            h.content(&a, &meta(&a)).unwrap();
            assert_eq!(h.read_count(), 1, "{bad:?}");
        }
    }
}
