//! Secret values: read from the host when bottle runs, held only in memory,
//! and never printed (their `Debug` is masked and they have no `Display`).
//!
//! Owns how a value is read and what a value may be. A `from_file` source
//! must be a regular file of at most [`MAX_SECRET_FILE`] bytes, and this is
//! checked before a byte is read: a FIFO would block `plan` forever,
//! `/dev/zero` would fill memory, a directory has no value. A file's value
//! is its contents without trailing newlines (what `$(cat FILE)` gives), so
//! both ways bottle delivers a secret give a step the same value. No value
//! may contain a NUL byte (it travels as an environment variable) or be
//! shorter than [`MIN_SECRET_LEN`]. Must not write a value anywhere.

use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use super::copies::describe_io;
use super::error::Problem;
use super::values::EnvKey;
use super::{SecretRef, SecretSource};

/// The shortest secret bottle accepts: shorter values cannot be masked in
/// output without garbling it.
pub const MIN_SECRET_LEN: usize = 4;

/// The largest secret file bottle reads (64 KiB): a secret is a token or a
/// key, and an environment variable, not a payload.
pub const MAX_SECRET_FILE: u64 = 64 * 1024;

/// A secret's value.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    /// A value as it is (the checks are [`read`]'s).
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretValue(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(********)")
    }
}

/// A secret with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub name: EnvKey,
    pub value: SecretValue,
}

/// What to mask in output for `secrets`: each value trimmed, and each of
/// its lines long enough to mask; longest first, without repeats.
pub fn mask_words<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for s in secrets {
        let text = String::from_utf8_lossy(s.value.expose()).into_owned();
        let lines = text.lines().map(str::trim);
        words.extend(
            lines
                .filter(|l| l.chars().count() >= MIN_SECRET_LEN)
                .map(str::to_string),
        );
        words.push(text.trim().to_string());
    }
    words.retain(|w| !w.is_empty());
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    words.dedup();
    words
}

/// Read a secret's value from the host.
pub fn read(r: &SecretRef) -> Result<Secret, Problem> {
    let problem = |message: String| Problem {
        at: r.at.clone(),
        key: format!("secrets.{}", r.name),
        message,
    };
    let bytes = match &r.source {
        SecretSource::Env(var) => std::env::var_os(var.as_str())
            .map(|v| v.into_encoded_bytes())
            .ok_or_else(|| format!("host variable `{var}` is not set")),
        SecretSource::File(path) => from_file(path),
    }
    .and_then(checked)
    .map_err(problem)?;
    Ok(Secret {
        name: r.name.clone(),
        value: SecretValue(bytes),
    })
}

/// The value of a secret file: checked to be a regular file of at most
/// [`MAX_SECRET_FILE`] bytes before it is opened, opened without blocking
/// (in case it was swapped for a FIFO meanwhile) and checked again, then
/// read up to the limit; trailing newlines dropped.
fn from_file(path: &Path) -> Result<Vec<u8>, String> {
    let meta = fs::metadata(path).map_err(|e| describe_io(path, &e))?;
    check_file(path, &meta)?;
    let file = open_nonblocking(path).map_err(|e| describe_io(path, &e))?;
    let meta = file.metadata().map_err(|e| describe_io(path, &e))?;
    check_file(path, &meta)?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| describe_io(path, &e))?;
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(too_big(path, bytes.len() as u64));
    }
    while bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    Ok(bytes)
}

/// Open `path` for reading with `O_NONBLOCK`: opening a FIFO then returns
/// at once instead of waiting for a writer.
fn open_nonblocking(path: &Path) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    Ok(File::from(rustix::fs::open(path, flags, Mode::empty())?))
}

/// A secret file must be a regular file of at most [`MAX_SECRET_FILE`].
fn check_file(path: &Path, meta: &Metadata) -> Result<(), String> {
    if let Some(kind) = not_regular(meta) {
        return Err(format!(
            "{} is {kind}; a secret file must be a regular file",
            path.display()
        ));
    }
    match meta.len() {
        len if len > MAX_SECRET_FILE => Err(too_big(path, len)),
        _ => Ok(()),
    }
}

/// What a file that is not a regular file is, in words.
fn not_regular(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    let kind = if t.is_file() {
        return None;
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Some(kind)
}

fn too_big(path: &Path, len: u64) -> String {
    format!(
        "{} holds {len} bytes; a secret file may hold at most {MAX_SECRET_FILE} (64 KiB)",
        path.display()
    )
}

/// A value bottle can deliver and mask: no NUL byte, at least
/// [`MIN_SECRET_LEN`] characters besides surrounding whitespace.
fn checked(bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    if bytes.contains(&0) {
        return Err(
            "the value contains a NUL byte, which an environment variable cannot hold".into(),
        );
    }
    let text = String::from_utf8_lossy(&bytes);
    if text.trim().chars().count() < MIN_SECRET_LEN {
        return Err(format!(
            "the value is shorter than {MIN_SECRET_LEN} characters, too short to be masked in output"
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::spec::Location;

    fn file_ref(path: PathBuf) -> SecretRef {
        let spec = Path::new("/s/spec.toml");
        SecretRef {
            name: EnvKey::parse("TOKEN").unwrap(),
            source: SecretSource::File(path),
            at: Location::at(spec, "[secrets]\nTOKEN = { from_file = \"t\" }\n", 10),
        }
    }

    fn problem(path: PathBuf) -> String {
        let p = read(&file_ref(path)).unwrap_err();
        assert_eq!(
            (p.at.line, p.at.column, p.key.as_str()),
            (2, 1, "secrets.TOKEN")
        );
        p.message
    }

    #[test]
    fn a_file_value_drops_trailing_newlines_only() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t");
        fs::write(&path, "  s3cr3t\nline two\n\n").unwrap();
        let s = read(&file_ref(path)).unwrap();
        assert_eq!(s.value.expose(), b"  s3cr3t\nline two");
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        use rustix::fs::{CWD, FileType, Mode};
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("fifo");
        rustix::fs::mknodat(CWD, &path, FileType::Fifo, Mode::RUSR | Mode::WUSR, 0).unwrap();
        let msg = problem(path.clone());
        assert_eq!(
            msg,
            format!(
                "{} is a FIFO; a secret file must be a regular file",
                path.display()
            )
        );
    }

    #[test]
    fn devices_and_directories_are_refused() {
        let msg = problem(PathBuf::from("/dev/zero"));
        assert_eq!(
            msg,
            "/dev/zero is a character device; a secret file must be a regular file"
        );
        let tmp = tempfile::tempdir().unwrap();
        let msg = problem(tmp.path().to_path_buf());
        assert!(msg.ends_with(" is a directory; a secret file must be a regular file"));
    }

    #[test]
    fn a_file_over_64_kib_is_refused_and_one_at_the_limit_is_read() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("big");
        fs::write(&path, vec![b'x'; 64 * 1024 + 1]).unwrap();
        assert_eq!(
            problem(path.clone()),
            format!(
                "{} holds 65537 bytes; a secret file may hold at most 65536 (64 KiB)",
                path.display()
            )
        );
        fs::write(&path, vec![b'x'; 64 * 1024]).unwrap();
        assert_eq!(read(&file_ref(path)).unwrap().value.expose().len(), 65536);
    }

    #[test]
    fn nul_bytes_and_short_values_are_refused() {
        assert!(
            checked(b"abcd\0efg".to_vec())
                .unwrap_err()
                .contains("NUL byte")
        );
        assert!(
            checked(b" abc \n".to_vec())
                .unwrap_err()
                .contains("too short")
        );
        assert_eq!(checked(b"abcd".to_vec()).unwrap(), b"abcd");
        let tmp = tempfile::tempdir().unwrap();
        assert!(problem(tmp.path().join("none")).ends_with("/none does not exist"));
    }
}
