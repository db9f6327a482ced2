//! Where the content-hash cache of a spec's copied files lives: one file
//! per spec file, `CACHE/hashes/KEY.json` (KEY: a hash of the spec file's
//! canonical path), 0600 in a 0700 directory, written whole under a
//! temporary name and renamed into place.
//!
//! It is a cache: a missing or unreadable one only costs reading every
//! file again, and a failure to write it is not an error of the command.
//! What is in it, and when it is believed, is `spec::Hashes`'s.

use std::fs;
use std::path::{Path, PathBuf};

use crate::spec::Hashes;

use super::store::{Durable, make_private_dir, replace_file};

/// The cache file of the spec file `owner` (its canonical path).
pub fn path(cache_dir: &Path, owner: &Path) -> PathBuf {
    let key = blake3::hash(owner.as_os_str().as_encoded_bytes()).to_hex();
    cache_dir
        .join("hashes")
        .join(format!("{}.json", &key[..32]))
}

/// The hashes last saved for `owner` (none if there are none).
pub fn load(cache_dir: &Path, owner: &Path) -> Hashes {
    match fs::read_to_string(path(cache_dir, owner)) {
        Ok(text) => Hashes::from_json(&text),
        Err(_) => Hashes::none(),
    }
}

/// Save `hashes` for `owner` if they differ from what was loaded.
pub fn save(cache_dir: &Path, owner: &Path, hashes: &Hashes) -> std::io::Result<()> {
    if !hashes.changed() {
        return Ok(());
    }
    let path = path(cache_dir, owner);
    let dir = path.parent().unwrap_or(cache_dir);
    make_private_dir(dir)?;
    let tmp = dir.join(format!(".hashes.{}.tmp", std::process::id()));
    replace_file(&tmp, &path, hashes.to_json().as_bytes(), Durable::No)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_cache_is_private_per_spec_and_written_only_when_it_changed() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, "x").unwrap();
        let (a, b) = (Path::new("/p/a.toml"), Path::new("/p/b.toml"));
        assert_ne!(path(tmp.path(), a), path(tmp.path(), b));
        let h = load(tmp.path(), a);
        h.content(&file, &fs::metadata(&file).unwrap()).unwrap();
        save(tmp.path(), a, &h).unwrap();
        let written = path(tmp.path(), a);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&written), 0o600);
        assert_eq!(mode(written.parent().unwrap()), 0o700);
        assert!(fs::read_to_string(&written).unwrap().contains("/f"));
        let unchanged = Hashes::none();
        fs::remove_file(&written).unwrap();
        save(tmp.path(), a, &unchanged).unwrap();
        assert!(
            !written.exists(),
            "nothing read, nothing known: not written"
        );
        assert!(!path(tmp.path(), b).exists());
    }
}
