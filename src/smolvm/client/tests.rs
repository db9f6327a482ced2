//! The seed's wrapper tests (`test_smolvm_wrapper.py`), ported: argv
//! shapes, the error path, readiness polling and availability. Plus the
//! version handshake.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::smolvm::argv::{Create, Exec};
use crate::smolvm::{GuestTarget, Limits, MachineState, Output, RunFailure, Smolvm};
use crate::spec::{EnvKey, EnvVar, GuestPath, HostPath, ImageRef};

/// Records every argv and answers from a script (then with `default`).
struct Fake {
    calls: RefCell<Vec<Vec<String>>>,
    script: RefCell<VecDeque<Output>>,
    default: Output,
}

fn out(code: i32, stdout: &str, stderr: &str) -> Output {
    Output {
        code,
        stdout: stdout.into(),
        stderr: stderr.into(),
    }
}

impl Fake {
    fn ok() -> Self {
        Self::answering(out(0, "", ""))
    }
    fn answering(default: Output) -> Self {
        Fake {
            calls: RefCell::default(),
            script: RefCell::default(),
            default,
        }
    }
    fn then(self, o: Output) -> Self {
        self.script.borrow_mut().push_back(o);
        self
    }
    fn last(&self) -> Vec<String> {
        self.calls.borrow().last().cloned().unwrap_or_default()
    }
    fn count(&self) -> usize {
        self.calls.borrow().len()
    }
}

impl Smolvm for Fake {
    fn run(&self, call: &Call, _limit: Duration) -> Result<Output, RunFailure> {
        self.calls.borrow_mut().push(call.argv.clone());
        Ok(self
            .script
            .borrow_mut()
            .pop_front()
            .unwrap_or_else(|| self.default.clone()))
    }
}

/// A 0.8.0 client: the dialect the seed was written against.
fn client(fake: &Fake) -> Client<&Fake> {
    Client::with_version(fake, "smolvm", Version::new(0, 8, 0), Limits::default())
}

fn has(argv: &[String], word: &str) -> bool {
    argv.iter().any(|a| a == word)
}

fn name(s: &str) -> MachineName {
    MachineName::parse(s).unwrap()
}

fn var(k: &str, v: &str) -> EnvVar {
    EnvVar::new(EnvKey::parse(k).unwrap(), v).unwrap()
}

/// A create of `agent-xyz` with nothing but what `f` adds.
fn create<'a>(n: &'a MachineName) -> Create<'a> {
    Create {
        name: n,
        from: None,
        allow_cidrs: &[],
        allow_hosts: &[],
        env: &[],
    }
}

// --- TestArgvShapes ---

#[test]
fn pack_create_argv() {
    let f = Fake::ok();
    let c = client(&f);
    let img = ImageRef::parse("bot-bottle-claude:latest").unwrap();
    c.run(
        &c.cli()
            .pack_create(&img, Path::new("/tmp/agent.smolmachine")),
    )
    .unwrap();
    assert_eq!(
        f.last(),
        [
            "smolvm",
            "pack",
            "create",
            "--image",
            "bot-bottle-claude:latest",
            "-o",
            "/tmp/agent.smolmachine"
        ]
    );
}

#[test]
fn pack_create_from_vm_argv() {
    let f = Fake::ok();
    let c = client(&f);
    let vm = name("bot-bottle-dev-abc12");
    c.run(
        &c.cli()
            .pack_create_from_vm(&vm, Path::new("/tmp/committed")),
    )
    .unwrap();
    assert_eq!(
        f.last(),
        [
            "smolvm",
            "pack",
            "create",
            "--from-vm",
            "bot-bottle-dev-abc12",
            "-o",
            "/tmp/committed"
        ]
    );
}

#[test]
fn machine_create_minimal() {
    let f = Fake::ok();
    let c = client(&f);
    let n = name("agent-xyz");
    c.run(&c.cli().machine_create(&create(&n))).unwrap();
    assert_eq!(f.last(), ["smolvm", "machine", "create", "agent-xyz"]);
}

#[test]
fn machine_create_with_from_and_allow_cidr_and_env() {
    let f = Fake::ok();
    let c = client(&f);
    let n = name("agent-xyz");
    let cidrs = ["192.168.50.2/32".parse().unwrap()];
    let env = [var("HTTPS_PROXY", "http://192.168.50.2:8888")];
    let args = Create {
        from: Some(Path::new("/stage/agent.smolmachine")),
        allow_cidrs: &cidrs,
        env: &env,
        ..create(&n)
    };
    c.run(&c.cli().machine_create(&args)).unwrap();
    let argv = f.last();
    assert_eq!(argv[0], "smolvm");
    for word in [
        "--from",
        "/stage/agent.smolmachine",
        "--net",
        "--allow-cidr",
        "192.168.50.2/32",
        "-e",
        "HTTPS_PROXY=http://192.168.50.2:8888",
    ] {
        assert!(has(&argv, word), "{word} missing from {argv:?}");
    }
    assert_eq!(argv.last().unwrap(), "agent-xyz");
    // And exactly, as the contract lists it.
    assert_eq!(
        argv,
        [
            "smolvm",
            "machine",
            "create",
            "--from",
            "/stage/agent.smolmachine",
            "--net",
            "--allow-cidr",
            "192.168.50.2/32",
            "-e",
            "HTTPS_PROXY=http://192.168.50.2:8888",
            "agent-xyz"
        ]
    );
}

#[test]
fn machine_create_omits_net_when_no_allow_cidrs() {
    let f = Fake::ok();
    let c = client(&f);
    let n = name("agent-xyz");
    let args = Create {
        from: Some(Path::new("/x.smolmachine")),
        ..create(&n)
    };
    c.run(&c.cli().machine_create(&args)).unwrap();
    assert!(!has(&f.last(), "--net"));
}

#[test]
fn machine_start_uses_dash_name() {
    let f = Fake::ok();
    let c = client(&f);
    c.run(&c.cli().machine_start(&name("agent-xyz"))).unwrap();
    assert_eq!(
        f.last(),
        ["smolvm", "machine", "start", "--name", "agent-xyz"]
    );
}

#[test]
fn machine_stop_uses_dash_name() {
    let f = Fake::ok();
    let c = client(&f);
    c.run(&c.cli().machine_stop(&name("agent-xyz"))).unwrap();
    assert_eq!(
        f.last(),
        ["smolvm", "machine", "stop", "--name", "agent-xyz"]
    );
}

#[test]
fn machine_delete_uses_positional_name_and_force() {
    let f = Fake::ok();
    let c = client(&f);
    c.run(&c.cli().machine_delete(&name("agent-xyz"))).unwrap();
    assert_eq!(f.last(), ["smolvm", "machine", "delete", "-f", "agent-xyz"]);
}

#[test]
fn machine_exec_argv_with_separator() {
    let f = Fake::ok();
    let c = client(&f);
    let n = name("agent-xyz");
    let cmd = ["echo".to_string(), "hello".to_string()];
    c.exec(&c.cli().machine_exec(&Exec::on(&n), &cmd)).unwrap();
    assert_eq!(
        f.last(),
        [
            "smolvm",
            "machine",
            "exec",
            "--name",
            "agent-xyz",
            "--",
            "echo",
            "hello"
        ]
    );
}

#[test]
fn machine_exec_env_workdir_timeout() {
    let f = Fake::ok();
    let c = client(&f);
    let n = name("agent-xyz");
    let env = [var("FOO", "bar"), var("BAZ", "qux")];
    let w = GuestPath::parse("/app").unwrap();
    let args = Exec {
        env: &env,
        workdir: Some(&w),
        timeout: Some(Duration::from_secs(30)),
        ..Exec::on(&n)
    };
    c.exec(&c.cli().machine_exec(&args, &["ls".to_string()]))
        .unwrap();
    let argv = f.last();
    for word in ["-w", "/app", "--timeout", "30s", "FOO=bar", "BAZ=qux"] {
        assert!(has(&argv, word), "{word} missing from {argv:?}");
    }
    let sep = argv.iter().position(|a| a == "--").unwrap();
    assert_eq!(&argv[sep + 1..], ["ls"]);
}

#[test]
fn machine_cp_positional_argv() {
    let f = Fake::ok();
    let c = client(&f);
    let n = name("agent-xyz");
    let src = HostPath::parse(Path::new("/host/file")).unwrap();
    let dst = GuestPath::parse("/dest/file").unwrap();
    let target = GuestTarget {
        machine: &n,
        path: &dst,
    };
    c.run(&c.cli().machine_cp(&src, target)).unwrap();
    assert_eq!(
        f.last(),
        [
            "smolvm",
            "machine",
            "cp",
            "/host/file",
            "agent-xyz:/dest/file"
        ]
    );
}

/// The seed's "an empty side is a no-op": here an empty side cannot be
/// built at all, so no such call is ever made.
#[test]
fn machine_cp_empty_is_noop() {
    assert!(HostPath::parse(Path::new("")).is_err());
    assert!(GuestPath::parse("").is_err());
    assert!(MachineName::parse("").is_err());
}

// --- TestErrorPath ---

#[test]
fn create_failure_raises() {
    let f = Fake::answering(out(1, "", "no such image"));
    let c = client(&f);
    let n = name("agent-xyz");
    let err = c.run(&c.cli().machine_create(&create(&n))).unwrap_err();
    let SmolvmError::Failed {
        code,
        ref stderr,
        ref argv,
        ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(code, 1);
    assert_eq!(stderr, "no such image");
    assert_eq!(argv.0, ["smolvm", "machine", "create", "agent-xyz"]);
    assert!(err.to_string().contains("no such image"), "{err}");
}

#[test]
fn pack_create_failure_raises() {
    let f = Fake::answering(out(1, "", "pack failed"));
    let c = client(&f);
    let img = ImageRef::parse("missing:tag").unwrap();
    let err = c
        .run(&c.cli().pack_create(&img, Path::new("/tmp/out")))
        .unwrap_err();
    assert!(
        matches!(err, SmolvmError::Failed { code: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn pack_create_from_vm_failure_raises() {
    let f = Fake::answering(out(1, "", "pack failed"));
    let c = client(&f);
    let vm = name("bot-bottle-dev-abc12");
    let err = c
        .run(&c.cli().pack_create_from_vm(&vm, Path::new("/tmp/out")))
        .unwrap_err();
    assert!(
        matches!(err, SmolvmError::Failed { code: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn exec_failure_returns_result() {
    let f = Fake::answering(out(42, "", "nope"));
    let c = client(&f);
    let n = name("agent-xyz");
    let cmd = ["sh".to_string(), "-c".to_string(), "exit 42".to_string()];
    let r = c.exec(&c.cli().machine_exec(&Exec::on(&n), &cmd)).unwrap();
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (42, "", "nope")
    );
}

/// Keeps what it is given, per stream.
#[derive(Default)]
struct Kept(std::sync::Mutex<Vec<(crate::smolvm::Stream, String)>>);

impl crate::smolvm::Sink for Kept {
    fn write(&self, stream: crate::smolvm::Stream, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes).into_owned();
        self.0.lock().unwrap().push((stream, text));
    }
}

#[test]
fn a_logged_exec_gives_the_sink_all_it_printed_and_returns_its_result() {
    use crate::smolvm::{Sink, Stream};
    let f = Fake::answering(out(3, "built\n", "oops\n"));
    let c = client(&f);
    let n = name("agent-xyz");
    let kept = std::sync::Arc::new(Kept::default());
    let sink: std::sync::Arc<dyn Sink> = kept.clone();
    let cmd = ["make".to_string()];
    let r = c
        .exec_logged(&c.cli().machine_exec(&Exec::on(&n), &cmd), &sink)
        .unwrap();
    assert_eq!((r.code, r.stderr.as_str()), (3, "oops\n"));
    assert_eq!(
        *kept.0.lock().unwrap(),
        [
            (Stream::Stdout, "built\n".to_string()),
            (Stream::Stderr, "oops\n".to_string())
        ]
    );
}

// --- TestWaitExecReady ---

/// A clock that only moves when slept on.
struct FakeClock {
    base: Instant,
    offset: Cell<Duration>,
    slept: RefCell<Vec<Duration>>,
}

impl FakeClock {
    fn new() -> Self {
        FakeClock {
            base: Instant::now(),
            offset: Cell::new(Duration::ZERO),
            slept: RefCell::default(),
        }
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.base + self.offset.get()
    }
    fn sleep(&self, d: Duration) {
        self.offset.set(self.offset.get() + d);
        self.slept.borrow_mut().push(d);
    }
}

#[test]
fn returns_immediately_when_exec_succeeds_first_try() {
    let f = Fake::ok();
    let clock = FakeClock::new();
    let c = client(&f);
    let vm = name("vm-x");
    let r = c
        .wait_ready(&vm, &c.cli().probe(&vm), Duration::from_secs(60), &clock)
        .unwrap();
    assert_eq!(f.count(), 1);
    assert_eq!(
        f.last(),
        ["smolvm", "machine", "exec", "--name", "vm-x", "--", "true"]
    );
    assert_eq!(r.probes, 1);
    assert!(clock.slept.borrow().is_empty());
}

#[test]
fn retries_on_nonzero_and_returns_on_success() {
    let f = Fake::ok()
        .then(out(1, "", "not ready"))
        .then(out(1, "", "not ready"));
    let clock = FakeClock::new();
    let c = client(&f);
    let vm = name("vm-x");
    let r = c
        .wait_ready(&vm, &c.cli().probe(&vm), Duration::from_secs(60), &clock)
        .unwrap();
    assert_eq!(f.count(), 3);
    assert_eq!(r.probes, 3);
    assert_eq!(
        *clock.slept.borrow(),
        [Duration::from_millis(5), Duration::from_millis(5)]
    );
}

#[test]
fn raises_smolvm_error_on_timeout() {
    let f = Fake::answering(out(1, "", "agent not answering"));
    let clock = FakeClock::new();
    let c = client(&f);
    let vm = name("vm-x");
    let err = c
        .wait_ready(&vm, &c.cli().probe(&vm), Duration::from_secs(5), &clock)
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("vm-x"), "{msg}");
    assert!(msg.contains("not ready"), "{msg}");
    assert!(msg.contains("agent not answering"), "{msg}");
    assert_eq!(clock.now() - clock.base, Duration::from_secs(5));
    assert!(
        clock
            .slept
            .borrow()
            .iter()
            .all(|d| *d <= crate::smolvm::ready::CAP)
    );
}

// --- TestIsAvailable ---

#[test]
fn true_when_on_path() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("smolvm");
    std::fs::write(&bin, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert!(is_available(bin.to_str().unwrap()));
    assert_eq!(locate(Some(&bin)).unwrap(), bin);
}

#[test]
fn false_when_missing() {
    assert!(!is_available("/nonexistent/smolvm"));
    let err = locate(Some(Path::new("/nonexistent/smolvm"))).unwrap_err();
    assert!(err.is_environment(), "{err:?}");
}

// --- The version handshake ---

#[test]
fn connect_reads_the_version_once_and_picks_the_dialect() {
    let f = Fake::ok().then(out(0, "smolvm 1.9.3\n", "some note"));
    let c = Client::connect(&f, "smolvm", Limits::default()).unwrap();
    assert_eq!(f.last(), ["smolvm", "--version"]);
    assert_eq!(c.cli().dialect(), Dialect::NameFlag);
    c.run(&c.cli().machine_delete(&name("vm"))).unwrap();
    assert_eq!(
        f.last(),
        ["smolvm", "machine", "delete", "-f", "--name", "vm"]
    );
    assert_eq!(f.count(), 2);
}

#[test]
fn connect_refuses_unknown_versions() {
    let f = Fake::ok().then(out(0, "smolvm 2.0.0\n", ""));
    let err = Client::connect(&f, "smolvm", Limits::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("0.8.0 to 1.9.x"), "{err}");
    assert!(err.is_environment());
    let g = Fake::ok().then(out(0, "garbage\n", ""));
    assert!(matches!(
        Client::connect(&g, "smolvm", Limits::default()),
        Err(SmolvmError::BadVersion { .. })
    ));
}

#[test]
fn status_of_a_missing_machine_is_none() {
    let f = Fake::answering(out(
        1,
        "",
        "Error: config operation failed: machine status: machine 'vm' not found",
    ));
    let vm = name("vm");
    assert_eq!(client(&f).status(&vm).unwrap(), None);
    let g = Fake::answering(out(
        0,
        r#"{"name":"vm","state":"running","network":false}"#,
        "",
    ));
    assert_eq!(
        client(&g).status(&vm).unwrap().unwrap().state,
        MachineState::Running
    );
    let h = Fake::answering(out(1, "", "Error: database locked"));
    assert!(client(&h).status(&vm).is_err());
    let not_the_machine = Fake::answering(out(
        1,
        "",
        "Error: create from .smolmachine: file not found: /p.smolmachine",
    ));
    assert!(client(&not_the_machine).status(&vm).is_err());
}
