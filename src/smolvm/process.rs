//! The real [`Smolvm`]: spawns the binary as a child process.
//!
//! A call's environment variables ([`Call::env`], secret values for
//! `--secret-env`) are set on the child only, never on a command line.
//! Each call runs in its own process group (so a terminal's Ctrl-C reaches
//! bottle, not smolvm), with stdin closed, `NO_COLOR=1` (smolvm colours its
//! log lines even into a pipe), and stdout/stderr drained on threads into
//! bounded [`Capture`]s (and into a [`Sink`] when one is given), so memory
//! stays bounded whatever a call prints. At the time limit the whole group
//! gets SIGTERM, and SIGKILL a second later (what is left of it,
//! grandchildren included). An [`Interrupt`] tracks the groups in flight so
//! a signal handler can kill them.
//!
//! No call outlives bottle: on Linux each child asks the kernel for
//! SIGKILL when its parent dies (`PR_SET_PDEATHSIG`), however bottle dies
//! (`kill -9`, the OOM killer). The kernel ties that to the parent
//! *thread*, which is safe here because [`ProcessSmolvm::run`] spawns and
//! reaps a child on the same thread: no thread (an `apply -j N` worker
//! included) can end while its call is in flight. Only smolvm itself is
//! covered; what smolvm started is smolvm's to stop. Elsewhere there is no
//! such request: a killed bottle leaves its call running until it ends.
//! Must not interpret exit codes or output.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};
use shared_child::SharedChild;

use super::capture::{Capture, Keep, TAIL_BYTES, WHOLE_CAP};
use super::{Call, Kind, Output, RunFailure, Sink, Smolvm, Stream};

/// How long a timed-out call's process group gets between SIGTERM and
/// SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(1);

/// How long to keep reading a pipe after the child exited (a grandchild
/// may hold it open).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// How much is read from a pipe at a time.
const CHUNK: usize = 64 * 1024;

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
        self.run_with(call, limit, None)
    }

    fn run_logged(
        &self,
        call: &Call,
        limit: Duration,
        sink: &Arc<dyn Sink>,
    ) -> Result<Output, RunFailure> {
        self.run_with(call, limit, Some(sink))
    }
}

impl ProcessSmolvm {
    /// Spawn `call`, wait for it within `limit`, and reap it, all on this
    /// thread (which `PR_SET_PDEATHSIG` relies on).
    fn run_with(
        &self,
        call: &Call,
        limit: Duration,
        sink: Option<&Arc<dyn Sink>>,
    ) -> Result<Output, RunFailure> {
        let mut cmd = command(call)?;
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
        let stdout_keep = match call.kind() {
            Kind::Observe => Keep::Whole(WHOLE_CAP),
            Kind::Mutate | Kind::Teardown => Keep::Tail(TAIL_BYTES),
        };
        let pid = child.id();
        let stdout = drain(
            child.take_stdout(),
            (pid, Stream::Stdout),
            stdout_keep,
            sink,
        );
        let stderr = drain(
            child.take_stderr(),
            (pid, Stream::Stderr),
            Keep::Tail(TAIL_BYTES),
            sink,
        );
        let result = wait(&child, limit, stdout, stderr);
        self.interrupt.untrack(child.id());
        result
    }
}

/// The command of `call`: its own process group, stdin closed, stdout and
/// stderr piped, `NO_COLOR=1`, and ended when bottle dies.
fn command(call: &Call) -> Result<Command, RunFailure> {
    let (program, args) = call
        .argv
        .split_first()
        .ok_or_else(|| RunFailure::Spawn(std::io::Error::other("empty argv")))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("NO_COLOR", "1")
        .envs(
            call.env
                .iter()
                .map(|v| (&v.name, OsStr::from_bytes(v.value.expose()))),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    die_with_parent(&mut cmd);
    Ok(cmd)
}

/// Have the child killed when the thread that spawned it ends (with bottle,
/// since the spawning thread reaps it first). Closes the race where bottle
/// died before the request was made by checking the parent is still it.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use rustix::process::{getpid, getppid, set_parent_process_death_signal};
    let parent = getpid();
    let in_child = move || {
        set_parent_process_death_signal(Some(Signal::KILL))?;
        match getppid() == Some(parent) {
            true => Ok(()),
            false => Err(rustix::io::Errno::SRCH.into()),
        }
    };
    // SAFETY: the closure runs in the forked child before exec. It makes
    // two system calls (prctl, getppid), allocates nothing and takes no
    // lock, so it is async-signal-safe.
    unsafe {
        cmd.pre_exec(in_child);
    }
}

/// Elsewhere, no equivalent is asked for (best effort: a killed bottle's
/// call runs until it ends or hits smolvm's own limits).
#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

fn wait(
    child: &SharedChild,
    limit: Duration,
    stdout: Drain,
    stderr: Drain,
) -> Result<Output, RunFailure> {
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
    let by = Instant::now() + DRAIN_GRACE;
    let out = Output {
        code: status.code().unwrap_or(-1),
        stdout: stdout.finish(by)?,
        stderr: stderr.finish(by)?,
    };
    match status.signal() {
        Some(sig) => Err(RunFailure::Signalled(sig)),
        None => Ok(out),
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

/// One pipe being read on its own thread.
struct Drain {
    stream: Stream,
    capture: Arc<Mutex<Capture>>,
    /// Disconnects when the reading thread is done.
    done: mpsc::Receiver<()>,
}

/// Read `pipe` (the `stream` of the call whose group `pid` leads) to its
/// end on a thread, chunk by chunk, into a capture kept as `keep` says,
/// and into `sink`. A whole-kept stream that overflows ends the call: its
/// group is killed.
fn drain<R: Read + Send + 'static>(
    pipe: Option<R>,
    (pid, stream): (u32, Stream),
    keep: Keep,
    sink: Option<&Arc<dyn Sink>>,
) -> Drain {
    let capture = Arc::new(Mutex::new(Capture::new(keep)));
    let (tx, done) = mpsc::channel::<()>();
    if let Some(pipe) = pipe {
        let capture = capture.clone();
        let sink = sink.cloned();
        thread::spawn(move || {
            if !read_all(pipe, stream, &capture, sink.as_deref()) {
                kill_group(pid);
            }
            drop(tx);
        });
    }
    Drain {
        stream,
        capture,
        done,
    }
}

/// Whether the stream was read to its end (else the capture refused more).
fn read_all(
    mut pipe: impl Read,
    stream: Stream,
    capture: &Mutex<Capture>,
    sink: Option<&dyn Sink>,
) -> bool {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        };
        if let Some(sink) = sink {
            sink.write(stream, &buf[..n]);
        }
        let more = capture.lock().map(|mut c| c.push(&buf[..n]));
        if !matches!(more, Ok(true)) {
            return false;
        }
    }
}

impl Drain {
    /// What was kept, once the reading thread is done or `by` passed
    /// (a grandchild holding the pipe open); an overflow is a failure.
    fn finish(self, by: Instant) -> Result<String, RunFailure> {
        let _ = self
            .done
            .recv_timeout(by.saturating_duration_since(Instant::now()));
        let capture = self
            .capture
            .lock()
            .map_err(|_| RunFailure::Spawn(std::io::Error::other("output reader panicked")))?;
        match capture.keep() {
            Keep::Whole(cap) if capture.overflowed() => Err(RunFailure::Overflow {
                stream: self.stream,
                cap,
            }),
            Keep::Whole(_) | Keep::Tail(_) => Ok(capture.text()),
        }
    }
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
    fn smolvm_runs_without_colours() {
        let cmd = command(&sh("true")).unwrap();
        let set: Vec<_> = cmd.get_envs().collect();
        let no_color = (
            std::ffi::OsStr::new("NO_COLOR"),
            Some(std::ffi::OsStr::new("1")),
        );
        assert_eq!(set, [no_color], "whatever bottle's own environment says");
        let out = ProcessSmolvm::default()
            .run(&sh("printf %s \"$NO_COLOR\""), Duration::from_secs(5))
            .unwrap();
        assert_eq!(out.stdout, "1");
    }

    /// Counts what it is given, per stream.
    #[derive(Default)]
    struct Counting(Mutex<[usize; 2]>);

    impl Sink for Counting {
        fn write(&self, stream: Stream, bytes: &[u8]) {
            let i = match stream {
                Stream::Stdout => 0,
                Stream::Stderr => 1,
            };
            self.0.lock().unwrap()[i] += bytes.len();
        }
    }

    #[test]
    fn a_call_printing_megabytes_keeps_only_a_tail_and_the_sink_gets_it_all() {
        let script = "head -c 20000000 /dev/zero; echo end; head -c 3000000 /dev/zero >&2";
        let counting = Arc::new(Counting::default());
        let sink: Arc<dyn Sink> = counting.clone();
        let out = ProcessSmolvm::default()
            .run_logged(&sh(script), Duration::from_secs(30), &sink)
            .unwrap();
        let marker = "[bottle: 19934468 earlier bytes not kept]\n";
        assert!(out.stdout.starts_with(marker), "{:?}", &out.stdout[..60]);
        assert!(out.stdout.ends_with("\0end\n"));
        assert_eq!(out.stdout.len(), marker.len() + TAIL_BYTES);
        assert!(out.stderr.len() < TAIL_BYTES + 64, "{}", out.stderr.len());
        assert_eq!(*counting.0.lock().unwrap(), [20_000_004, 3_000_000]);
    }

    #[test]
    fn an_observation_printing_more_than_it_may_fails_at_once() {
        let started = std::time::Instant::now();
        let r = ProcessSmolvm::default().run(
            &call(
                Op::Status,
                &["sh", "-c", "head -c 9000000 /dev/zero; sleep 30"],
            ),
            Duration::from_secs(60),
        );
        assert!(
            matches!(
                r,
                Err(RunFailure::Overflow {
                    stream: Stream::Stdout,
                    cap: WHOLE_CAP
                })
            ),
            "{r:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the call was not ended"
        );
        let small = ProcessSmolvm::default()
            .run(
                &call(Op::Ls, &["sh", "-c", "head -c 100000 /dev/zero"]),
                Duration::from_secs(5),
            )
            .unwrap();
        assert_eq!(small.stdout.len(), 100_000, "an answer is read whole");
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
