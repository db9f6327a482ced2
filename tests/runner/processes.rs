//! bottle's processes and what they hold: no smolvm call outlives a killed
//! bottle, memory stays bounded whatever a step prints (the whole output
//! goes to the machine's exec log, capped), and a signal ends a wait for
//! another bottle's lock at once.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::support::{Bottle, finish, signal};

/// A spec named `name` with no copies and the given exec steps (each a
/// TOML array of words).
fn spec_with_steps(b: &Bottle, name: &str, steps: &[&str]) -> String {
    let mut text = format!("name = \"{name}\"\n[image]\nref = \"img:1\"\n");
    for run in steps {
        text.push_str(&format!("[[exec]]\nrun = {run}\n"));
    }
    let path = b.write(&format!("{name}.toml"), &text);
    path.to_string_lossy().into_owned()
}

/// The processes of this world still alive after up to 5 s, then killed.
fn survivors(b: &Bottle) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = b.processes_left();
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        left = b.processes_left();
    }
    b.kill_leftovers();
    left
}

#[test]
fn a_killed_bottle_leaves_no_smolvm_call_running() {
    let b = Bottle::new();
    let spec = b.agent();
    let child = b.spawn(
        &[("SMOLVM_SIM_HANG", "cp")],
        &["apply", spec.to_str().unwrap()],
    );
    b.wait_for_call("machine cp");
    signal(&child, Signal::KILL);
    finish(child);
    assert_eq!(
        survivors(&b),
        Vec::<String>::new(),
        "the hung cp outlived bottle"
    );
}

#[test]
fn calls_run_by_parallel_workers_die_with_bottle_too() {
    let b = Bottle::new();
    let agent = b.agent();
    let other = b.write(
        "other.toml",
        "name = \"other\"\n[image]\nref = \"img:1\"\n[[copy]]\nsrc = \"ws\"\ndest = \"/w\"\n",
    );
    let child = b.spawn(
        &[("SMOLVM_SIM_HANG", "cp")],
        &[
            "apply",
            "-j",
            "2",
            agent.to_str().unwrap(),
            other.to_str().unwrap(),
        ],
    );
    for _ in 0..2000 {
        if b.calls()
            .iter()
            .filter(|c| c.contains("machine cp"))
            .count()
            == 2
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let hung = b
        .calls()
        .iter()
        .filter(|c| c.contains("machine cp"))
        .count();
    assert_eq!(hung, 2, "both workers are in a cp: {:#?}", b.calls());
    signal(&child, Signal::KILL);
    finish(child);
    assert_eq!(
        survivors(&b),
        Vec::<String>::new(),
        "a worker's cp outlived bottle"
    );
}

/// The highest resident set bottle reached (`VmHWM`, in KiB), read until
/// it exits, and its exit code.
fn peak_rss_kib(mut child: Child) -> (u64, i32) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        let status = std::fs::read_to_string(&status_file).unwrap_or_default();
        let hwm = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
        peak = peak.max(hwm.unwrap_or(0));
        if let Some(exit) = child.try_wait().expect("try_wait") {
            return (peak, exit.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_step_printing_100_mb_keeps_bottle_small_and_its_log_capped() {
    let b = Bottle::new();
    let spec = spec_with_steps(&b, "loud", &[r#"["head", "-c", "100000000", "/dev/zero"]"#]);
    let mut c = b.bottle_command(&["apply", &spec]);
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let (peak, code) = peak_rss_kib(c.spawn().expect("spawn bottle"));
    assert_eq!(code, 0);
    assert!(peak > 0, "VmHWM was never read");
    assert!(
        peak < 64 * 1024,
        "bottle reached {peak} KiB for 100 MB of output"
    );

    let log = b.path("state/logs/loud.log");
    let bytes = std::fs::read(&log).unwrap();
    let head = String::from_utf8_lossy(&bytes[..300]).into_owned();
    assert!(head.starts_with("==> exec[0]: `"), "{head}");
    assert!(
        head.contains(" --stream -- head -c 100000000 /dev/zero`\n"),
        "{head}"
    );
    let cap = 16 * 1024 * 1024;
    assert!(
        bytes.len() > cap && bytes.len() < cap + 1024,
        "{} bytes",
        bytes.len()
    );
    let text = String::from_utf8_lossy(&bytes[cap..]).into_owned();
    assert!(
        text.contains("[bottle: log cut here at its cap of 16 MiB"),
        "{text}"
    );
    assert!(
        !text.contains("<== exit code"),
        "nothing is written past the cut"
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&log), 0o600);
    assert_eq!(mode(&b.path("state/logs")), 0o700);
}

#[test]
fn a_step_printing_more_than_smolvms_buffer_is_logged_whole() {
    let b = Bottle::new();
    let twelve_mib = 12 * 1024 * 1024;
    let spec = spec_with_steps(
        &b,
        "big",
        &[
            &format!(r#"["head", "-c", "{twelve_mib}", "/dev/zero"]"#),
            r#"["echo", "second"]"#,
        ],
    );
    b.run(&["apply", &spec]).status(0);
    let bytes = std::fs::read(b.path("state/logs/big.log")).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let zeros = bytes.iter().filter(|b| **b == 0).count();
    assert_eq!(zeros, twelve_mib, "smolvm's 11 MiB buffer cut the output");
    assert!(
        text.contains("\n<== exit code 0\n==> exec[1]: `"),
        "{}",
        &text[text.len() - 300..]
    );
    assert!(
        text.ends_with("-- echo second`\nsecond\n<== exit code 0\n"),
        "{}",
        &text[text.len() - 300..]
    );
}

#[test]
fn a_failed_step_names_its_log_which_holds_both_streams_secrets_masked() {
    let b = Bottle::new();
    b.write(
        "spec.toml",
        r#"name = "agent"
[image]
ref = "img:1"
[secrets]
API_KEY = { from_env = "HOST_API_KEY" }
[[exec]]
run = ["sh", "-c", "echo first"]
[[exec]]
run = ["sh", "-c", "echo out $API_KEY; echo oops >&2; exit 3"]
secrets = ["API_KEY"]
"#,
    );
    let spec = b.path("spec.toml");
    let run = b.run_with(
        &[("HOST_API_KEY", "canary-4711")],
        &["apply", spec.to_str().unwrap()],
    );
    let log = b.path("state/logs/agent.log");
    run.status(1).stderr_has(&format!(
        "exited with code 3: oops; its output is in {}",
        log.display()
    ));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("==> exec[0]: `"), "{text}");
    assert!(
        text.contains("`\nfirst\n<== exit code 0\n==> exec[1]: `"),
        "{text}"
    );
    // Both streams are kept; they arrive on two pipes, so their lines may
    // interleave either way.
    let last = text.rsplit("==> exec[1]: `").next().unwrap_or_default();
    let (_, body) = last.split_once("`\n").expect("the step's argv line");
    let mut lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.pop(), Some("<== exit code 3"), "{text}");
    lines.sort_unstable();
    assert_eq!(lines, ["oops", "out ********"], "{text}");

    // The next apply starts the log afresh.
    b.write(
        "spec.toml",
        "name = \"agent\"\n[image]\nref = \"img:1\"\n[[exec]]\nrun = [\"echo\", \"again\"]\n",
    );
    b.run(&["apply", spec.to_str().unwrap()]).status(0);
    let again = std::fs::read_to_string(&log).unwrap();
    assert!(again.starts_with("==> exec[0]: `"), "{again}");
    assert!(again.ends_with("`\nagain\n<== exit code 0\n"), "{again}");
}

/// A spawned bottle whose stderr is read line by line as it comes.
struct Watched {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: String,
}

impl Watched {
    fn new(mut child: Child) -> Self {
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Watched {
            child,
            lines,
            seen: String::new(),
        }
    }

    /// Wait (up to 20 s) for a stderr line containing `text`.
    #[track_caller]
    fn wait_line(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push_str(&line);
            self.seen.push('\n');
            if line.contains(text) {
                return;
            }
        }
        panic!("no stderr line containing {text:?}:\n{}", self.seen);
    }

    /// Its exit code (waiting up to 30 s) and all of its stderr.
    #[track_caller]
    fn finish(mut self) -> (i32, String) {
        let code = finish(self.child).code;
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        (code, self.seen)
    }
}

#[test]
fn a_signal_ends_a_wait_for_the_lock_at_once_changing_nothing() {
    let b = Bottle::new();
    let spec = b.agent();
    let spec = spec.to_str().unwrap();
    let holder = b.spawn(&[("SMOLVM_SIM_HANG", "cp")], &["apply", spec]);
    b.wait_for_call("machine cp");
    let before = b.calls();
    let record = b.record("agent");
    let mut waiter = Watched::new(b.spawn(&[], &["apply", "--wait-lock", spec]));
    waiter.wait_line("agent: waiting up to 10m for another bottle");
    let started = Instant::now();
    signal(&waiter.child, Signal::INT);
    let (code, stderr) = waiter.finish();
    let waited = started.elapsed();
    let (calls, record_after) = (b.calls(), b.record("agent"));
    signal(&holder, Signal::INT);
    finish(holder).status(130);
    assert_eq!(code, 130, "{stderr}");
    assert!(
        stderr.contains("stopped waiting for another bottle working on machine `agent`: signal 2"),
        "{stderr}"
    );
    assert!(
        waited < Duration::from_secs(10),
        "the wait outlasted the signal"
    );
    assert_eq!(
        calls[before.len()..],
        ["smolvm --version"],
        "the waiter changed nothing"
    );
    assert_eq!(record_after, record, "the holder's record");
}
