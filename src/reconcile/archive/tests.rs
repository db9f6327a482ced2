use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::spec::{GuestPath, HostPath};

fn file(host: &Path, guest: &str) -> FileCopy {
    FileCopy {
        host: HostPath::parse(host).unwrap(),
        guest: GuestPath::parse(guest).unwrap(),
        kind: CopyKind::File { mode: 0o644 },
    }
}

fn link(host: &Path, guest: &str, target: &str) -> FileCopy {
    FileCopy {
        kind: CopyKind::Link {
            target: target.into(),
        },
        ..file(host, guest)
    }
}

/// The entries of a tar: path, type, link target and body.
fn entries(bytes: &[u8]) -> Vec<(String, tar::EntryType, Option<String>, Vec<u8>)> {
    let mut reader = tar::Archive::new(bytes);
    reader
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let kind = e.header().entry_type();
            let target = e.link_name().unwrap().map(|t| t.display().to_string());
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            (path, kind, target, body)
        })
        .collect()
}

/// Files in `dir` (the archive's directory): nothing partial may stay.
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn entries_keep_content_and_mode_and_the_archive_goes_away() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("run.sh");
    fs::write(&src, "echo hi\n").unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o750)).unwrap();
    let path = tmp.path().join("up/a.tar");
    let archive = write(&path, &[file(&src, "/w/bin/run.sh")]).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mut reader = tar::Archive::new(File::open(&path).unwrap());
    let mut entries = reader.entries().unwrap();
    let mut e = entries.next().unwrap().unwrap();
    assert_eq!(e.path().unwrap(), Path::new("w/bin/run.sh"));
    assert_eq!(e.header().mode().unwrap(), 0o750);
    assert_eq!(e.header().uid().unwrap(), 0);
    let mut body = String::new();
    io::Read::read_to_string(&mut e, &mut body).unwrap();
    assert_eq!(body, "echo hi\n");
    drop(archive);
    assert!(!path.exists());
}

#[test]
fn a_link_is_archived_as_a_link_and_its_target_is_never_read() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("secret.txt"), "CANARY-7f3a").unwrap();
    fs::create_dir(tmp.path().join("ws")).unwrap();
    let notes = tmp.path().join("ws/notes.txt");
    std::os::unix::fs::symlink("../secret.txt", &notes).unwrap();
    let path = tmp.path().join("up/a.tar");
    let _archive = write(&path, &[link(&notes, "/w/notes.txt", "../secret.txt")]).unwrap();
    let bytes = fs::read(&path).unwrap();
    assert_eq!(
        entries(&bytes),
        [(
            "w/notes.txt".to_string(),
            tar::EntryType::Symlink,
            Some("../secret.txt".to_string()),
            Vec::new()
        )]
    );
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("CANARY"), "the link's target was read");
}

#[test]
fn a_file_that_became_a_link_is_refused_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("secret.txt"), "CANARY-7f3a").unwrap();
    let src = tmp.path().join("notes.txt");
    std::os::unix::fs::symlink("secret.txt", &src).unwrap();
    let path = tmp.path().join("up/a.tar");
    let err = write(&path, &[file(&src, "/w/notes.txt")]).unwrap_err();
    assert!(
        matches!(&err, ArchiveError::Changed { file, what: Change::Replaced } if *file == src),
        "{err:?}"
    );
    assert!(names_in(&tmp.path().join("up")).is_empty());
}

/// A file's reader that runs `during` on the file once, after its first
/// read: the file changes while it is being archived.
struct Meddling<'a, F: FnMut()> {
    file: &'a File,
    during: Option<F>,
}

impl<F: FnMut()> Read for Meddling<'_, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let max = buf.len().min(4);
        let n = (&*self.file).read(&mut buf[..max])?;
        if let Some(mut f) = self.during.take() {
            f();
        }
        Ok(n)
    }
}

/// Archive `src` (holding `before`) with `during` run while it is read;
/// the archive's bytes so far, or the error.
fn archive_meddled(src: &Path, during: impl FnMut()) -> Result<Vec<u8>, ArchiveError> {
    let file = File::open(src).unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    let content = Meddling {
        file: &file,
        during: Some(during),
    };
    append_file(&mut builder, "w/f", src, &file, content, Mtime::OfFile)?;
    Ok(builder.into_inner().unwrap())
}

#[test]
fn a_file_read_whole_and_unchanged_is_archived() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("f");
    fs::write(&src, "0123456789").unwrap();
    let bytes = archive_meddled(&src, || {}).unwrap();
    let got = entries(&bytes);
    assert_eq!(got[0].3, b"0123456789");
}

#[test]
fn a_file_that_grows_while_archived_fails_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("f");
    fs::write(&src, "0123456789").unwrap();
    let grow = || {
        let mut f = fs::OpenOptions::new().append(true).open(&src).unwrap();
        f.write_all(b"ustar\0 injected entry").unwrap();
    };
    let err = archive_meddled(&src, grow).unwrap_err();
    assert!(
        matches!(&err, ArchiveError::Changed { file, what: Change::Grew { size: 10 } } if *file == src),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{} changed while bottle was archiving it (it had more than its 10 bytes); \
             nothing was uploaded, apply again once it is stable",
            src.display()
        )
    );
}

#[test]
fn a_file_that_shrinks_while_archived_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("f");
    fs::write(&src, "0123456789").unwrap();
    let shrink = || {
        let f = fs::OpenOptions::new().write(true).open(&src).unwrap();
        f.set_len(6).unwrap();
    };
    let err = archive_meddled(&src, shrink).unwrap_err();
    assert!(
        matches!(
            &err,
            ArchiveError::Changed {
                what: Change::Shrank { size: 10 },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_file_rewritten_in_place_while_archived_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("f");
    fs::write(&src, "0123456789").unwrap();
    let old = fs::metadata(&src).unwrap().modified().unwrap();
    let rewrite = || {
        let f = fs::OpenOptions::new().write(true).open(&src).unwrap();
        (&f).write_all(b"9876543210").unwrap();
        f.set_modified(old + std::time::Duration::from_secs(1))
            .unwrap();
    };
    let err = archive_meddled(&src, rewrite).unwrap_err();
    assert!(
        matches!(
            &err,
            ArchiveError::Changed {
                what: Change::Modified,
                ..
            }
        ),
        "{err:?}"
    );
}

/// A file whose size says 0 but which reads more (as `/proc` files do)
/// fails the whole archive, and nothing is left where it was written.
#[test]
fn a_file_with_more_bytes_than_its_size_leaves_no_archive() {
    let proc_file = Path::new("/proc/version");
    assert_eq!(fs::metadata(proc_file).unwrap().len(), 0, "its size says 0");
    let tmp = tempfile::tempdir().unwrap();
    let ok = tmp.path().join("ok");
    fs::write(&ok, "fine").unwrap();
    let path = tmp.path().join("up/a.tar");
    let files = [file(&ok, "/w/ok"), file(proc_file, "/w/version")];
    let err = write(&path, &files).unwrap_err();
    assert!(
        matches!(
            &err,
            ArchiveError::Changed {
                what: Change::Grew { size: 0 },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(names_in(&tmp.path().join("up")).is_empty());
}
