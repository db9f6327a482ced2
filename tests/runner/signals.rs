//! Signals during apply: the in-flight smolvm call is killed, what the run
//! created is torn down, and the exit code is 128 + the signal; a second
//! signal exits at once.

use rustix::process::Signal;

use crate::support::{Bottle, finish, signal};

#[test]
fn a_signal_during_a_step_tears_down_and_exits_128_plus_it() {
    for (sig, code, name) in [
        (Signal::INT, 130, "SIGINT"),
        (Signal::TERM, 143, "SIGTERM"),
        (Signal::HUP, 129, "SIGHUP"),
    ] {
        let b = Bottle::new();
        let spec = b.agent();
        let child = b.spawn(
            &[("SMOLVM_SIM_HANG", "cp")],
            &["apply", spec.to_str().unwrap()],
        );
        b.wait_for_call("machine cp");
        signal(&child, sig);
        let run = finish(child);
        run.status(code)
            .stderr_has(&format!("bottle: {name} received"))
            .stderr_has("agent: torn down");
        let calls = b.calls();
        let n = calls.len();
        assert_eq!(
            calls[n - 2..],
            [
                "smolvm machine stop --name agent",
                "smolvm machine delete -f --name agent"
            ],
            "{name}"
        );
        assert!(b.world().machines.is_empty(), "{name}");
        assert_eq!(b.record("agent"), None, "{name}");
        assert_eq!(
            b.processes_left(),
            Vec::<String>::new(),
            "{name}: the hung smolvm call survived"
        );
    }
}

#[test]
fn a_second_signal_exits_at_once_and_says_what_may_be_left() {
    let b = Bottle::new();
    let spec = b.agent();
    let child = b.spawn(
        &[("SMOLVM_SIM_HANG", "cp,stop")],
        &["apply", spec.to_str().unwrap()],
    );
    b.wait_for_call("machine cp");
    signal(&child, Signal::INT);
    b.wait_for_call("machine stop");
    signal(&child, Signal::INT);
    let run = finish(child);
    run.status(130)
        .stderr_has("SIGINT received again: exiting now")
        .stderr_has("machine `agent` may be left half-made")
        .stderr_has("bottle down agent");
    assert_eq!(
        b.processes_left(),
        Vec::<String>::new(),
        "the hung teardown call survived"
    );
    assert_eq!(
        b.record("agent").unwrap()["phase"],
        "creating",
        "the record still owns it"
    );
    b.run(&["apply", spec.to_str().unwrap()])
        .status(0)
        .stderr_has("replacing (its last apply did not complete)");
}

#[test]
fn keep_on_failure_keeps_an_interrupted_machine() {
    let b = Bottle::new();
    let spec = b.agent();
    let child = b.spawn(
        &[("SMOLVM_SIM_HANG", "exec")],
        &["apply", "--keep-on-failure", spec.to_str().unwrap()],
    );
    b.wait_for_call("tar -xf");
    signal(&child, Signal::INT);
    finish(child).status(130).stderr_has("kept as it failed");
    assert_eq!(b.world().machines["agent"].state, "running");
}

/// A signal while bottle asks smolvm a machine's state exits with 128 +
/// the signal, saying nothing was changed (not that observing failed).
#[test]
fn a_signal_while_observing_exits_128_plus_it_having_changed_nothing() {
    for (hang, call, command) in [
        ("ls", "machine ls", "apply"),
        ("status", "machine status", "down"),
    ] {
        let b = Bottle::new();
        let spec = b.agent();
        let child = b.spawn(
            &[("SMOLVM_SIM_HANG", hang)],
            &[command, spec.to_str().unwrap()],
        );
        b.wait_for_call(call);
        signal(&child, Signal::INT);
        let run = finish(child);
        run.status(130)
            .stderr_has("agent: stopped by signal 2 before anything was changed");
        assert!(!run.stderr.contains("cannot observe"), "{}", run.stderr);
        assert!(b.world().machines.is_empty());
    }
}
