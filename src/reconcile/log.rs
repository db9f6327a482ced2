//! The per-machine log of exec steps: `STATE_DIR/logs/NAME.log`.
//!
//! Owns that file: the directory 0700 and the file 0600, started afresh by
//! the first exec step of a run; each step's output (stdout and stderr
//! interleaved as they arrive) between a `==> STEP` and a `<== exit code N`
//! line; a cap of [`LOG_CAP`] bytes, after which a line says the log was
//! cut and nothing more is written; and the run's secret values masked as
//! `********`, even when one arrives split across chunks. It receives
//! output through smolvm's [`Sink`] and never runs or decides anything.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::smolvm::{Sink, Stream};
use crate::spec::{Desired, mask_words};

/// The most a log holds: 16 MiB (plus the line saying it was cut).
pub const LOG_CAP: u64 = 16 * 1024 * 1024;

const MASKED: &[u8] = b"********";

/// An open exec log.
#[derive(Debug)]
pub struct ExecLog {
    path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    written: u64,
    /// Whether the last byte written ends no line.
    mid_line: bool,
    cut: bool,
    /// The first write error; nothing is written after it.
    error: Option<io::Error>,
    mask: Mask,
    /// Per stream, output not yet written because it may be the start of
    /// a secret value.
    held: [Vec<u8>; 2],
}

impl ExecLog {
    /// Start the log at `path` afresh (its directory made 0700, the file
    /// 0600), masking `secrets` (see [`secret_words`]).
    pub fn create(path: PathBuf, secrets: Vec<Vec<u8>>) -> io::Result<ExecLog> {
        if let Some(dir) = path.parent() {
            crate::state::make_private_dir(dir)?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        let inner = Inner {
            file,
            written: 0,
            mid_line: false,
            cut: false,
            error: None,
            mask: Mask::new(secrets),
            held: [Vec::new(), Vec::new()],
        };
        Ok(ExecLog {
            path,
            inner: Mutex::new(inner),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Mark the start of a step's output.
    pub fn begin(&self, what: &str) {
        self.with(|i| i.line(&format!("==> {what}")));
    }

    /// Mark the end of a step's output; the first error writing the log,
    /// if any.
    pub fn end(&self, how: &str) -> Option<String> {
        let mut error = None;
        self.with(|i| {
            i.release_all();
            i.line(&format!("<== {how}"));
            error = i.error.as_ref().map(ToString::to_string);
        });
        error
    }

    fn with(&self, f: impl FnOnce(&mut Inner)) {
        if let Ok(mut inner) = self.inner.lock() {
            f(&mut inner);
        }
    }
}

impl Sink for ExecLog {
    fn write(&self, stream: Stream, bytes: &[u8]) {
        self.with(|i| i.take(stream, bytes));
    }
}

impl Inner {
    /// Hold `bytes` of `stream`, mask, and write what can no longer be
    /// part of a secret value.
    fn take(&mut self, stream: Stream, bytes: &[u8]) {
        if self.cut || self.error.is_some() {
            return;
        }
        let i = index(stream);
        let mut held = std::mem::take(&mut self.held[i]);
        held.extend_from_slice(bytes);
        let mut held = self.mask.apply(held);
        let keep = self.mask.unfinished(&held);
        let rest = held.split_off(held.len() - keep);
        self.append(&held);
        self.held[i] = rest;
    }

    /// Write whatever is held of both streams.
    fn release_all(&mut self) {
        for i in 0..2 {
            let held = std::mem::take(&mut self.held[i]);
            self.append(&held);
        }
    }

    /// Write `text` as a line of its own.
    fn line(&mut self, text: &str) {
        let sep = if self.mid_line { "\n" } else { "" };
        self.append(format!("{sep}{text}\n").as_bytes());
    }

    /// Write `bytes` up to the cap; at the cap, say so and stop.
    fn append(&mut self, bytes: &[u8]) {
        if self.cut || self.error.is_some() || bytes.is_empty() {
            return;
        }
        let room = LOG_CAP.saturating_sub(self.written);
        let fits = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let mut r = self.file.write_all(&bytes[..fits]);
        self.written += fits as u64;
        self.mid_line = bytes[..fits].last().is_some_and(|b| *b != b'\n');
        if fits < bytes.len() {
            self.cut = true;
            let line = format!(
                "\n[bottle: log cut here at its cap of {} MiB; the rest of this run's exec \
                 output is not kept]\n",
                LOG_CAP / (1024 * 1024)
            );
            r = r.and_then(|()| self.file.write_all(line.as_bytes()));
        }
        if let Err(e) = r {
            self.error = Some(e);
        }
    }
}

fn index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

/// What the log masks of `desired`'s secrets: each value, trimmed, and
/// each of its lines long enough to mask (as bottle masks its own output).
pub fn secret_words(desired: &Desired) -> Vec<Vec<u8>> {
    mask_words(&desired.secrets)
        .into_iter()
        .map(String::into_bytes)
        .collect()
}

/// The byte strings masked in the log, longest first.
#[derive(Debug)]
struct Mask {
    words: Vec<Vec<u8>>,
    longest: usize,
}

impl Mask {
    fn new(mut words: Vec<Vec<u8>>) -> Mask {
        words.retain(|w| !w.is_empty());
        words.sort_by_key(|w| std::cmp::Reverse(w.len()));
        words.dedup();
        let longest = words.first().map_or(0, Vec::len);
        Mask { words, longest }
    }

    /// How many of the last bytes of `bytes` may begin a word: they must
    /// wait for what follows before being written.
    fn unfinished(&self, bytes: &[u8]) -> usize {
        let most = self.longest.saturating_sub(1).min(bytes.len());
        (1..=most)
            .rev()
            .find(|k| {
                let tail = &bytes[bytes.len() - k..];
                self.words.iter().any(|w| w.starts_with(tail))
            })
            .unwrap_or(0)
    }

    /// `bytes` with every word replaced, longest words first.
    fn apply(&self, bytes: Vec<u8>) -> Vec<u8> {
        self.words.iter().fold(bytes, |b, w| replace(&b, w))
    }
}

fn replace(hay: &[u8], word: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(word) {
            out.extend_from_slice(MASKED);
            i += word.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_in(dir: &Path, words: &[&str]) -> ExecLog {
        let words = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        ExecLog::create(dir.join("state/logs/m.log"), words).unwrap()
    }

    fn read(log: &ExecLog) -> String {
        String::from_utf8_lossy(&std::fs::read(log.path()).unwrap()).into_owned()
    }

    #[test]
    fn a_step_is_framed_and_both_streams_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let log = log_in(tmp.path(), &[]);
        log.begin("exec 1: `smolvm machine exec -- make`");
        log.write(Stream::Stdout, b"built\n");
        log.write(Stream::Stderr, b"warning\n");
        assert_eq!(log.end("exit code 0"), None);
        log.begin("exec 2");
        log.write(Stream::Stdout, b"no newline");
        log.end("exit code 1");
        assert_eq!(
            read(&log),
            "==> exec 1: `smolvm machine exec -- make`\nbuilt\nwarning\n<== exit code 0\n\
             ==> exec 2\nno newline\n<== exit code 1\n"
        );
    }

    #[test]
    fn secrets_are_masked_even_split_across_chunks() {
        let tmp = tempfile::tempdir().unwrap();
        let log = log_in(tmp.path(), &["s3cr3t-value", "tok9"]);
        for chunk in ["key=s3c", "r3t-", "value; t", "ok9 done\n"] {
            log.write(Stream::Stdout, chunk.as_bytes());
        }
        log.write(Stream::Stderr, b"err s3cr3t-value\n");
        log.end("exit code 1");
        assert_eq!(
            read(&log),
            "key=********; ******** done\nerr ********\n<== exit code 1\n"
        );
    }

    #[test]
    fn the_log_stops_at_its_cap_and_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let log = log_in(tmp.path(), &[]);
        let chunk = vec![b'x'; 1024 * 1024];
        for _ in 0..20 {
            log.write(Stream::Stdout, &chunk);
        }
        log.end("exit code 0");
        let bytes = std::fs::read(log.path()).unwrap();
        let tail = String::from_utf8_lossy(&bytes[LOG_CAP as usize..]).into_owned();
        assert_eq!(
            tail,
            "\n[bottle: log cut here at its cap of 16 MiB; the rest of this run's exec output \
             is not kept]\n"
        );
        assert!(bytes[..LOG_CAP as usize].iter().all(|b| *b == b'x'));
    }

    #[test]
    fn a_new_log_is_private_and_starts_afresh() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state/logs/m.log");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::set_permissions(path.parent().unwrap(), PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::write(&path, "old run\n").unwrap();
        std::fs::set_permissions(&path, PermissionsExt::from_mode(0o644)).unwrap();
        let log = ExecLog::create(path.clone(), Vec::new()).unwrap();
        log.begin("exec 1");
        log.end("exit code 0");
        assert_eq!(read(&log), "==> exec 1\n<== exit code 0\n");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }
}
