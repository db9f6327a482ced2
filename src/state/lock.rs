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
    file.set_len(0).map_err(io_err)?;
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    write!(file, "{}", std::process::id()).map_err(io_err)?;
    Ok(MachineLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI32, Ordering};

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
