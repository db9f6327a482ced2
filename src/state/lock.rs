//! One writer per machine: an exclusive lock file per machine name, held
//! for the whole `apply`, `down` or `gc` of it.
//!
//! The lock is `flock`-style (std's `File::lock`): the kernel releases it
//! when the holder exits, however it exits, so a killed bottle never blocks
//! the next one. The holder's pid is written into the file for messages.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::store::StateError;

/// A held machine lock; released on drop.
#[derive(Debug)]
pub struct MachineLock {
    _file: File,
}

/// How long to poll between attempts when waiting for a lock.
const POLL: Duration = Duration::from_millis(25);

fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Take the lock at `path` for machine `name`, waiting up to `wait`.
pub fn acquire(
    path: PathBuf,
    name: &str,
    wait: Option<Duration>,
) -> Result<MachineLock, StateError> {
    let io_err = |source| StateError::Lock {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io_err)?;
    let deadline = wait.map(|w| Instant::now() + w);
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {
                if deadline.is_none_or(|d| Instant::now() >= d) {
                    return Err(StateError::Locked {
                        name: name.to_string(),
                        pid: holder(&mut file),
                        waited: wait,
                    });
                }
                std::thread::sleep(POLL);
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
        }
    }
    file.set_len(0).map_err(io_err)?;
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    write!(file, "{}", std::process::id()).map_err(io_err)?;
    Ok(MachineLock { _file: file })
}
