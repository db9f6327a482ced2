//! One writer per machine: an exclusive lock file per machine name, held
//! for the whole `apply`, `down` or `gc` of it.
//!
//! The lock is `flock`-style (std's `File::lock`): the kernel releases it
//! when the holder exits, however it exits, so a killed bottle never blocks
//! the next one. The holder's pid is written into the file for messages.
//! A wait for another holder polls, and ends at once when the caller says
//! bottle was asked to stop (a signal): it never outwaits a Ctrl-C. Knows
//! nothing of what the lock protects.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
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

/// Take the lock at `path` for machine `name`, waiting up to `wait`
/// unless `stopped` names a signal first.
pub fn acquire(
    path: PathBuf,
    name: &str,
    wait: Option<Duration>,
    stopped: &dyn Fn() -> Option<i32>,
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
                if let Some(signal) = stopped() {
                    return Err(StateError::Interrupted {
                        name: name.to_string(),
                        signal,
                    });
                }
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
    write_holder(&file).map_err(io_err)?;
    Ok(MachineLock { _file: file })
}

/// How many bytes the holder's pid takes in the lock file, padded.
const HOLDER_LEN: u64 = 20;

/// Write this process's pid over the lock file's first [`HOLDER_LEN`]
/// bytes, padded with spaces: always the same length, so the file is
/// never truncated (on ext4 a truncate makes the close write back and
/// free blocks, which would cost every apply of every machine a disk
/// write).
fn write_holder(file: &File) -> std::io::Result<()> {
    let text = format!(
        "{:<width$}",
        std::process::id(),
        width = HOLDER_LEN as usize
    );
    file.write_all_at(text.as_bytes(), 0)?;
    match file.metadata()?.len() > HOLDER_LEN {
        true => file.set_len(HOLDER_LEN),
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI32, Ordering};

    #[test]
    fn the_holder_is_written_padded_over_whatever_was_there() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("m.lock");
        std::fs::write(&path, "9".repeat(40)).unwrap();
        let held = acquire(path.clone(), "m", None, &never).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len() as u64, HOLDER_LEN);
        assert_eq!(text.trim(), std::process::id().to_string());
        drop(held);
        let mut file = File::open(&path).unwrap();
        assert_eq!(holder(&mut file), Some(std::process::id()));
    }

    fn never() -> Option<i32> {
        None
    }

    #[test]
    fn a_signal_ends_a_wait_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("m.lock");
        let _held = acquire(path.clone(), "m", None, &never).unwrap();
        let signal = AtomicI32::new(0);
        let stopped = || match signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        };
        let started = Instant::now();
        let waited = std::thread::scope(|s| {
            let waiter =
                s.spawn(|| acquire(path.clone(), "m", Some(Duration::from_secs(600)), &stopped));
            std::thread::sleep(Duration::from_millis(100));
            signal.store(2, Ordering::SeqCst);
            waiter.join().unwrap()
        });
        assert!(
            matches!(waited, Err(StateError::Interrupted { signal: 2, .. })),
            "{waited:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "outwaited the signal"
        );
    }

    #[test]
    fn without_a_signal_a_wait_runs_to_its_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("m.lock");
        let _held = acquire(path.clone(), "m", None, &never).unwrap();
        let waited = acquire(path, "m", Some(Duration::from_millis(100)), &never);
        assert!(
            matches!(
                waited,
                Err(StateError::Locked {
                    waited: Some(_),
                    ..
                })
            ),
            "{waited:?}"
        );
    }
}
