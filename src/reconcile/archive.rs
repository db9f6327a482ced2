//! The copy archive: every file of a spec's `[[copy]]` entries in one tar,
//! streamed from disk (files are never held in memory), with their modes,
//! owned by root in the guest. Written 0600 under a temporary name and
//! removed when dropped; held open until then, so the sweep of a killed
//! bottle's leftovers (`sweep`) never takes it for one.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::spec::FileCopy;

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

/// Write `files` as a tar at `path` (entries relative to `/`).
pub fn write(path: &Path, files: &[FileCopy]) -> io::Result<Archive> {
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

fn append<W: io::Write>(builder: &mut tar::Builder<W>, f: &FileCopy) -> io::Result<()> {
    let file = File::open(f.host.as_path())?;
    let meta = file.metadata()?;
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(meta.len());
    header.set_mode(meta.mode() & 0o7777);
    header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    header.set_uid(0);
    header.set_gid(0);
    builder.append_data(&mut header, f.guest.as_str().trim_start_matches('/'), file)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn entries_keep_content_and_mode_and_the_archive_goes_away() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("run.sh");
        fs::write(&src, "echo hi\n").unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o750)).unwrap();
        let files = [FileCopy {
            host: crate::spec::HostPath::parse(&src).unwrap(),
            guest: crate::spec::GuestPath::parse("/w/bin/run.sh").unwrap(),
        }];
        let path = tmp.path().join("up/a.tar");
        let archive = write(&path, &files).unwrap();
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
}
