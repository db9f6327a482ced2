//! A closed stdout or stderr never panics bottle: further output is
//! dropped, the apply or teardown in progress finishes, and the exit code
//! is the normal one (`bottle status --json | head -1`, `bottle apply … 2>&1
//! | head -3`).

use std::process::Stdio;

use crate::support::Bottle;

/// A pipe whose reading end is already closed: every write to it fails
/// with EPIPE.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    Stdio::from(writer)
}

#[test]
fn status_json_into_a_closed_pipe_exits_normally() {
    let b = Bottle::new();
    let spec = b.agent();
    b.run(&["apply", spec.to_str().unwrap()]).status(0);
    let out = b
        .bottle_command(&["status", "agent", "--json"])
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_apply_whose_output_pipes_are_closed_finishes_its_work() {
    let b = Bottle::new();
    let spec = b.agent();
    let status = b
        .bottle_command(&["apply", spec.to_str().unwrap()])
        .stdout(closed_pipe())
        .stderr(closed_pipe())
        .status()
        .expect("run");
    assert_eq!(status.code(), Some(0));
    assert_eq!(b.record("agent").unwrap()["phase"], "complete");
    assert_eq!(b.world().machines["agent"].state, "running");
    assert_eq!(
        b.guest("agent", "/done").as_deref(),
        Some("# hello\nhttp://192.168.50.2:8888\n")
    );
}

#[test]
fn a_failing_apply_with_closed_pipes_still_tears_down_and_exits_1() {
    let b = Bottle::new();
    let spec = b.agent();
    let status = b
        .bottle_command(&["apply", spec.to_str().unwrap()])
        .env("SMOLVM_SIM_FAIL", "exec")
        .stdout(closed_pipe())
        .stderr(closed_pipe())
        .status()
        .expect("run");
    assert_eq!(status.code(), Some(1));
    assert!(b.world().machines.is_empty());
    assert_eq!(b.record("agent"), None);
}

#[test]
fn plan_and_help_into_a_closed_pipe_exit_normally() {
    let b = Bottle::new();
    let spec = b.agent();
    for args in [vec!["plan", spec.to_str().unwrap()], vec!["--help"]] {
        let out = b
            .bottle_command(&args)
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
