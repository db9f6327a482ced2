//! The real [`Smolvm`]: spawns the binary as a child process.
//!
//! Each call runs in its own process group (so a terminal's Ctrl-C reaches
//! bottle, not smolvm), with stdin closed and stdout/stderr drained on
//! threads. At the time limit the whole group is killed.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use shared_child::SharedChild;

use super::{Output, RunFailure, Smolvm};

/// How long to keep reading a pipe after the child exited (a grandchild
/// may hold it open).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Runs smolvm as a real process.
#[derive(Debug, Clone, Default)]
pub struct ProcessSmolvm;

impl Smolvm for ProcessSmolvm {
    fn run(&self, argv: &[String], limit: Duration) -> Result<Output, RunFailure> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| RunFailure::Spawn(std::io::Error::other("empty argv")))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let child = SharedChild::spawn(&mut cmd).map_err(RunFailure::Spawn)?;
        let stdout = drain(child.take_stdout());
        let stderr = drain(child.take_stderr());
        let status = match child.wait_timeout(limit).map_err(RunFailure::Spawn)? {
            Some(status) => status,
            None => {
                kill_group(child.id());
                let _ = child.wait();
                return Err(RunFailure::TimedOut(limit));
            }
        };
        let out = Output {
            code: status.code().unwrap_or(-1),
            stdout: collect(stdout),
            stderr: collect(stderr),
        };
        match status.signal() {
            Some(sig) => Err(RunFailure::Signalled(sig)),
            None => Ok(out),
        }
    }
}

/// Kill every process in the group led by `pid`. Only used on a timeout:
/// after a normal exit the group may hold a VM that smolvm left running.
pub fn kill_group(pid: u32) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process_group(pid, Signal::KILL);
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
        });
    }
    rx
}

fn collect(rx: mpsc::Receiver<String>) -> String {
    rx.recv_timeout(DRAIN_GRACE).unwrap_or_default()
}
