//! Guest paths on the host: where a path a guest names is inside its
//! machine's root directory, resolved as the guest's kernel would resolve
//! it — symbolic links followed, an absolute link target read from the
//! guest root, `..` stopping at the root — so that neither a path nor a
//! link a guest holds (`a -> /`, `etc -> /etc`) ever reaches outside its
//! root on the host.
//!
//! Owns path resolution only: it reads metadata and link targets, and must
//! not create, read or write files. Every guest command and `cp` goes
//! through it.

use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// How many links one resolution may follow (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Whether the last component of a path is followed if it is a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Last {
    /// Follow it (`cat`, `test -f`, `>`): the path names what it points to.
    Follow,
    /// Keep it (`rm`, `ln`, `test -L`, an entry `tar` makes, the file `cp`
    /// renames into place): the path names the link itself.
    Keep,
}

/// One component still to resolve.
enum Part {
    Name(OsString),
    Up,
}

/// The components of `path` (`.` and `/` dropped), to be popped from the
/// end: the first component is last.
fn parts(path: &Path) -> Vec<Part> {
    let mut v: Vec<Part> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(Part::Name(n.to_os_string())),
            Component::ParentDir => Some(Part::Up),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    v.reverse();
    v
}

/// Map guest path `p` (absolute, or relative to the guest directory
/// `cwd`) to a host path inside `root`, following the guest's links inside
/// `root` (the last one as `last` says). The result has no link on the way
/// to its last component.
pub fn resolve(root: &Path, cwd: &str, p: &str, last: Last) -> Result<PathBuf, String> {
    let full = match p.starts_with('/') {
        true => PathBuf::from(p),
        false => Path::new("/").join(cwd).join(p),
    };
    let mut todo = parts(&full);
    let mut done: Vec<OsString> = Vec::new();
    let mut followed = 0;
    while let Some(part) = todo.pop() {
        let name = match part {
            Part::Up => {
                done.pop();
                continue;
            }
            Part::Name(name) => name,
        };
        let here = joined(root, &done).join(&name);
        let keep = todo.is_empty() && last == Last::Keep;
        match fs::symlink_metadata(&here) {
            Ok(m) if m.file_type().is_symlink() && !keep => {
                followed += 1;
                if followed > MAX_LINKS {
                    return Err(format!("{p}: too many levels of symbolic links"));
                }
                let target = fs::read_link(&here).map_err(|e| format!("{p}: {e}"))?;
                if target.is_absolute() {
                    done.clear();
                }
                todo.extend(parts(&target));
            }
            _ => done.push(name),
        }
    }
    Ok(joined(root, &done))
}

fn joined(root: &Path, names: &[OsString]) -> PathBuf {
    let mut out = root.to_path_buf();
    out.extend(names);
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn follow(root: &Path, p: &str) -> PathBuf {
        resolve(root, "/", p, Last::Follow).unwrap()
    }

    #[test]
    fn paths_never_leave_the_root() {
        let root = Path::new("/sim/g");
        assert_eq!(
            follow(root, "/../../etc/passwd"),
            Path::new("/sim/g/etc/passwd")
        );
        assert_eq!(
            resolve(root, "/w", "a/b", Last::Follow).unwrap(),
            Path::new("/sim/g/w/a/b")
        );
        assert_eq!(
            resolve(root, "/w", "../../x", Last::Keep).unwrap(),
            Path::new("/sim/g/x")
        );
    }

    #[test]
    fn links_are_followed_inside_the_root_only() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("w/d")).unwrap();
        symlink("/", root.join("w/up")).unwrap();
        symlink("/etc", root.join("w/etc")).unwrap();
        symlink("../../../../..", root.join("w/d/far")).unwrap();
        symlink("d", root.join("w/here")).unwrap();
        assert_eq!(follow(root, "/w/up/x"), root.join("x"));
        assert_eq!(follow(root, "/w/up/etc/passwd"), root.join("etc/passwd"));
        assert_eq!(follow(root, "/w/etc/passwd"), root.join("etc/passwd"));
        assert_eq!(follow(root, "/w/d/far/x"), root.join("x"));
        assert_eq!(follow(root, "/w/here/f"), root.join("w/d/f"));
        assert_eq!(follow(root, "/w/etc"), root.join("etc"));
        assert_eq!(
            resolve(root, "/", "/w/etc", Last::Keep).unwrap(),
            root.join("w/etc"),
            "the link itself"
        );
        assert_eq!(
            resolve(root, "/", "/w/up/w/etc", Last::Keep).unwrap(),
            root.join("w/etc"),
            "links on the way are followed"
        );
    }

    #[test]
    fn a_link_loop_is_an_error_not_a_hang() {
        let tmp = tempfile::tempdir().unwrap();
        symlink("b", tmp.path().join("a")).unwrap();
        symlink("a", tmp.path().join("b")).unwrap();
        let err = resolve(tmp.path(), "/", "/a/x", Last::Follow).unwrap_err();
        assert_eq!(err, "/a/x: too many levels of symbolic links");
    }
}
