//! The real [`Smolvm`]: spawns the binary as a child process.
//!
//! A call's environment variables ([`Call::env`], secret values for
//! `--secret-env`) are set on the child only, never on a command line.
//! Each call runs in its own process group (so a terminal's Ctrl-C reaches
//! bottle, not smolvm), with stdin closed and stdout/stderr drained on
//! threads. At the time limit the whole group gets SIGTERM, and SIGKILL a
//! second later (what is left of it, grandchildren included). An [`Interrupt`]
//! tracks the groups in flight so a signal handler can kill them.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use shared_child::SharedChild;

use super::{Call, Kind, Output, RunFailure, Smolvm};

/// How long a timed-out call's process group gets between SIGTERM and
/// SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(1);

/// How long to keep reading a pipe after the child exited (a grandchild
/// may hold it open).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// A user's request to stop (a signal), and the smolvm process groups in
/// flight that it must kill.
#[derive(Debug, Default)]
pub struct Interrupt {
    signal: AtomicI32,
    /// How many signals were raised: a call that started before a signal
    /// but registered its group after the kill still gets killed.
    raised: AtomicUsize,
    children: Mutex<HashSet<u32>>,
}

impl Interrupt {
    /// Note signal `sig` and kill every smolvm call in flight. Returns
    /// whether this was the first signal.
    pub fn raise(&self, sig: i32) -> bool {
        let first = self
            .signal
            .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        self.raised.fetch_add(1, Ordering::SeqCst);
        self.kill_children();
        first
    }

    /// The first signal received, if any.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// Kill the process group of every smolvm call in flight.
    pub fn kill_children(&self) {
        if let Ok(children) = self.children.lock() {
            children.iter().copied().for_each(kill_group);
        }
    }

    fn track(&self, pid: u32) {
        if let Ok(mut c) = self.children.lock() {
            c.insert(pid);
        }
    }

    fn untrack(&self, pid: u32) {
        if let Ok(mut c) = self.children.lock() {
            c.remove(&pid);
        }
    }
}

/// Runs smolvm as a real process.
#[derive(Debug, Clone, Default)]
pub struct ProcessSmolvm {
    pub interrupt: Arc<Interrupt>,
}

impl Smolvm for ProcessSmolvm {
    fn interrupted(&self) -> Option<i32> {
        self.interrupt.signal()
    }

    fn run(&self, call: &Call, limit: Duration) -> Result<Output, RunFailure> {
        let (program, args) = call
            .argv
            .split_first()
            .ok_or_else(|| RunFailure::Spawn(std::io::Error::other("empty argv")))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(
                call.env
                    .iter()
                    .map(|v| (&v.name, OsStr::from_bytes(v.value.expose()))),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(sig) = self.interrupt.signal()
            && call.kind() == Kind::Mutate
        {
            return Err(RunFailure::Interrupted(sig));
        }
        let raised = self.interrupt.raised.load(Ordering::SeqCst);
        let child = SharedChild::spawn(&mut cmd).map_err(RunFailure::Spawn)?;
        self.interrupt.track(child.id());
        if self.interrupt.raised.load(Ordering::SeqCst) != raised {
            kill_group(child.id());
        }
        let result = wait(&child, limit);
        self.interrupt.untrack(child.id());
        result
    }
}

fn wait(child: &SharedChild, limit: Duration) -> Result<Output, RunFailure> {
    {
        let stdout = drain(child.take_stdout());
        let stderr = drain(child.take_stderr());
        let status = match child.wait_timeout(limit).map_err(RunFailure::Spawn)? {
            Some(status) => status,
            None => {
                signal_group(child.id(), Signal::TERM);
                if !matches!(child.wait_timeout(KILL_GRACE), Ok(Some(_))) {
                    kill_group(child.id());
                    let _ = child.wait();
                }
                signal_group(child.id(), Signal::KILL);
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
    signal_group(pid, Signal::KILL);
}

fn signal_group(pid: u32, sig: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process_group(pid, sig);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smolvm::Op;

    fn alive_with(marker: &str) -> usize {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                String::from_utf8_lossy(&cmd).contains(marker)
            })
            .count()
    }

    fn call(op: Op, words: &[&str]) -> Call {
        Call {
            op,
            argv: words.iter().map(|w| w.to_string()).collect(),
            env: Vec::new(),
        }
    }

    fn sh(script: &str) -> Call {
        call(Op::Exec { timeout: None }, &["sh", "-c", script])
    }

    #[test]
    fn a_timeout_kills_the_whole_group_grandchildren_included() {
        let marker = format!("31.{}", std::process::id());
        let script = format!("sleep {marker} & sleep {marker}; wait");
        let r = ProcessSmolvm::default().run(&sh(&script), Duration::from_millis(300));
        assert!(matches!(r, Err(RunFailure::TimedOut(_))), "{r:?}");
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(alive_with(&marker), 0, "a grandchild survived the timeout");
    }

    #[test]
    fn output_and_exit_codes_come_back() {
        let s = ProcessSmolvm::default();
        let out = s
            .run(
                &sh("echo out; echo err >&2; exit 3"),
                Duration::from_secs(5),
            )
            .unwrap();
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (3, "out\n", "err\n")
        );
        let killed = s.run(&sh("kill -9 $$"), Duration::from_secs(5));
        assert!(
            matches!(killed, Err(RunFailure::Signalled(9))),
            "{killed:?}"
        );
        let missing = s.run(
            &call(Op::Version, &["/nonexistent/smolvm"]),
            Duration::from_secs(5),
        );
        assert!(matches!(missing, Err(RunFailure::Spawn(_))), "{missing:?}");
    }

    #[test]
    fn a_call_s_environment_reaches_the_child() {
        let mut c = sh("printf %s \"$BOTTLE_SECRET_T\"");
        c.env.push(crate::smolvm::call::ChildVar {
            name: "BOTTLE_SECRET_T".into(),
            value: crate::spec::SecretValue::new(b"s3cr3t value".to_vec()),
        });
        let out = ProcessSmolvm::default()
            .run(&c, Duration::from_secs(5))
            .unwrap();
        assert_eq!(out.stdout, "s3cr3t value");
    }

    #[test]
    fn an_interrupt_kills_the_call_in_flight() {
        let s = ProcessSmolvm::default();
        let interrupt = s.interrupt.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            interrupt.raise(2)
        });
        let r = s.run(&call(Op::Cp, &["sleep", "30"]), Duration::from_secs(30));
        assert!(t.join().unwrap(), "first signal");
        assert!(matches!(r, Err(RunFailure::Signalled(9))), "{r:?}");
        assert_eq!(s.interrupted(), Some(2));
        assert!(!s.interrupt.raise(15), "a second signal is not the first");
        for op in [Op::Cp, Op::Create, Op::Start, Op::Pack, Op::Probe] {
            let after = s.run(&call(op, &["true"]), Duration::from_secs(5));
            assert!(
                matches!(after, Err(RunFailure::Interrupted(2))),
                "{op:?}: {after:?}"
            );
        }
        for op in [Op::Stop, Op::Delete, Op::Status, Op::Version, Op::Ls] {
            let still = s.run(&call(op, &["true"]), Duration::from_secs(5));
            assert!(still.is_ok(), "{op:?} still runs: {still:?}");
        }
    }
}
