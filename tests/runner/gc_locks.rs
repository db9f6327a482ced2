//! One writer per machine, crash recovery, and `bottle gc`.

use rustix::process::Signal;

use crate::support::{Bottle, finish, signal};

#[test]
fn a_second_bottle_on_the_same_machine_fails_fast_naming_the_holder() {
    let b = Bottle::new();
    let spec = b.agent();
    let spec = spec.to_str().unwrap();
    let first = b.spawn(&[("SMOLVM_SIM_HANG", "cp")], &["apply", spec]);
    b.wait_for_call("machine cp");
    let pid = first.id();
    b.run(&["apply", spec]).status(3).stderr_has(&format!(
        "machine `agent` is being changed by another bottle (pid {pid}); pass --wait-lock"
    ));
    b.run(&["down", "agent"])
        .status(3)
        .stderr_has("being changed by another bottle");
    b.run(&["apply", "--wait-lock=300ms", spec])
        .status(3)
        .stderr_has("waited 300ms");
    // A killed holder never blocks: the lock dies with it.
    signal(&first, Signal::KILL);
    finish(first);
    b.kill_leftovers();
    b.run(&["apply", spec])
        .status(0)
        .stderr_has("replacing (its last apply did not complete)");
    assert_eq!(b.record("agent").unwrap()["phase"], "complete");
    let world = b.world();
    assert_eq!(world.machines.len(), 1);
    assert!(world.orphans.is_empty());
}

#[test]
fn wait_lock_waits_for_the_holder_to_finish() {
    let b = Bottle::new();
    let spec = b.agent();
    let spec = spec.to_str().unwrap();
    let first = b.spawn(&[("SMOLVM_SIM_BOOT_MS", "1500")], &["apply", spec]);
    b.wait_for_call("machine start");
    let second = b.run(&["apply", "--wait-lock", spec]);
    finish(first).status(0);
    second.status(0).stderr_has("agent: unchanged");
}

#[test]
fn different_machines_do_not_block_each_other() {
    let b = Bottle::new();
    let spec = b.agent();
    let other = b.write("other.toml", "name = \"other\"\n[image]\nref = \"a:1\"\n");
    let first = b.spawn(
        &[("SMOLVM_SIM_HANG", "cp")],
        &["apply", spec.to_str().unwrap()],
    );
    b.wait_for_call("machine cp");
    b.run(&["apply", other.to_str().unwrap()]).status(0);
    signal(&first, Signal::INT);
    finish(first).status(130);
}

#[test]
fn gc_removes_every_machine_whose_apply_never_completed() {
    let b = Bottle::new();
    let agent = b.agent();
    let kept = b.write(
        "kept.toml",
        "name = \"kept\"\n[image]\nref = \"a:1\"\n[[exec]]\nrun = [\"false\"]\n",
    );
    let fine = b.write("fine.toml", "name = \"fine\"\n[image]\nref = \"a:1\"\n");
    b.run(&["apply", fine.to_str().unwrap()]).status(0);
    b.run(&["apply", "--keep-on-failure", kept.to_str().unwrap()])
        .status(1);
    let crashed = b.spawn(
        &[("SMOLVM_SIM_HANG", "cp")],
        &["apply", agent.to_str().unwrap()],
    );
    b.wait_for_call("machine cp");
    signal(&crashed, Signal::KILL);
    finish(crashed);
    b.kill_leftovers();
    assert_eq!(b.world().machines.len(), 3);

    let dry = b.run(&["gc", "--dry-run"]);
    dry.status(0)
        .stdout_has("agent: would remove (its last apply is creating)")
        .stdout_has("kept: would remove (its last apply is failed)");
    assert!(!dry.stdout.contains("fine"), "{}", dry.stdout);
    assert_eq!(b.world().machines.len(), 3, "--dry-run removes nothing");

    b.run(&["gc"])
        .status(0)
        .stdout_has("agent: removed")
        .stdout_has("kept: removed");
    let world = b.world();
    assert_eq!(world.machines.keys().collect::<Vec<_>>(), ["fine"]);
    assert!(world.orphans.is_empty());
    assert_eq!((b.record("agent"), b.record("kept")), (None, None));
    b.run(&["gc"]).status(0).stderr_has("nothing to collect");
}

#[test]
fn a_corrupt_record_is_a_clear_error_and_touches_nothing() {
    let b = Bottle::new();
    let spec = b.agent();
    b.run(&["apply", spec.to_str().unwrap()]).status(0);
    std::fs::write(b.path("state/machines/agent.json"), "{ not json").unwrap();
    b.clear_calls();
    let run = b.run(&["apply", spec.to_str().unwrap()]);
    run.status(3)
        .stderr_has("state/machines/agent.json is corrupt");
    assert!(!run.stderr.contains("panicked"));
    b.run(&["down", "agent"]).status(3).stderr_has("is corrupt");
    b.run(&["gc"]).status(3).stderr_has("is corrupt");
    assert!(
        b.calls()
            .iter()
            .all(|c| c.contains("--version") || c.contains("status") || c.contains(" ls ")),
        "{:#?}",
        b.calls()
    );
    assert_eq!(b.world().machines["agent"].state, "running");
}

#[test]
fn state_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let b = Bottle::new();
    let spec = b.agent();
    b.run(&["apply", spec.to_str().unwrap()]).status(0);
    let mode = |p: &str| std::fs::metadata(b.path(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("state"), 0o700);
    assert_eq!(mode("state/machines"), 0o700);
    assert_eq!(mode("state/locks"), 0o700);
    assert_eq!(mode("state/machines/agent.json"), 0o600);
    assert_eq!(mode("state/locks/agent.lock"), 0o600);
}
