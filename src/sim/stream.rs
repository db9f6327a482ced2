//! Output a guest command makes without the simulator holding it in
//! memory: described under the world lock, written in chunks after the
//! lock is released, so a guest can print hundreds of megabytes.
//!
//! Owns the producers of such output (`/dev/zero`, the start of a guest
//! file) and writing them. Nothing here runs a host program.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

/// The size of the chunks written.
const CHUNK: usize = 64 * 1024;

/// What a streaming guest command prints on stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestStream {
    /// This many NUL bytes (`head -c N /dev/zero`).
    Zeros(u64),
    /// At most `len` bytes from the start of a guest file (host path).
    File { path: PathBuf, len: u64 },
}

impl GuestStream {
    /// The same output cut to at most `cap` bytes.
    pub fn capped(self, cap: u64) -> Self {
        match self {
            GuestStream::Zeros(n) => GuestStream::Zeros(n.min(cap)),
            GuestStream::File { path, len } => GuestStream::File {
                path,
                len: len.min(cap),
            },
        }
    }

    /// Write it all to `out`, a chunk at a time.
    pub fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            GuestStream::Zeros(n) => {
                let zeros = [0u8; CHUNK];
                let mut left = *n;
                while left > 0 {
                    let k = left.min(CHUNK as u64) as usize;
                    out.write_all(&zeros[..k])?;
                    left -= k as u64;
                }
                Ok(())
            }
            GuestStream::File { path, len } => {
                io::copy(&mut File::open(path)?.take(*len), out).map(drop)
            }
        }
    }

    /// All of it as text, for in-process callers that take output whole.
    pub fn to_text(&self) -> io::Result<String> {
        let mut buf = Vec::new();
        self.write_to(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_and_file_heads_are_written_whole_and_capped() {
        let mut out = Vec::new();
        GuestStream::Zeros(200_000).write_to(&mut out).unwrap();
        assert_eq!(out.len(), 200_000);
        assert!(out.iter().all(|b| *b == 0));
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, "hello world").unwrap();
        let head = GuestStream::File { path, len: 5 };
        assert_eq!(head.to_text().unwrap(), "hello");
        assert_eq!(head.clone().capped(2).to_text().unwrap(), "he");
        assert_eq!(GuestStream::Zeros(9).capped(4), GuestStream::Zeros(4));
    }
}
