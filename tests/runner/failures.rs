//! Failures at every step: the step is named with its argv and smolvm's
//! stderr, and nothing this run created is left behind.

use crate::support::{Bottle, VERSIONS, delete_line};

/// (fault step, the step bottle reports, was `start` issued before it)
const STEPS: [(&str, &str, bool); 6] = [
    ("pack", "pack failed", false),
    ("create", "create failed", false),
    ("start", "start failed", true),
    ("probe", "wait-ready failed", true),
    ("cp", "upload failed", true),
    ("exec", "unpack failed", true),
];

#[test]
fn a_failure_at_each_step_tears_down_everything_in_both_dialects() {
    for v in VERSIONS {
        for (fault, reported, started) in STEPS {
            let b = Bottle::on(v);
            let spec = b.agent();
            let run = b.run_with(
                &[("SMOLVM_SIM_FAIL", fault)],
                &["apply", "--allow-unenforced-egress", spec.to_str().unwrap()],
            );
            let ctx = format!("smolvm {v}, fault {fault}");
            assert_eq!(run.code, 1, "{ctx}: {}", run.stderr);
            run.stderr_has(&format!("error: agent: {reported}"));
            run.stderr_has("simulated failure of");
            let world = b.world();
            assert!(
                world.machines.is_empty(),
                "{ctx}: machines left: {:?}",
                world.machines
            );
            assert!(
                world.orphans.is_empty(),
                "{ctx}: VM processes left: {:?}",
                world.orphans
            );
            assert_eq!(b.record("agent"), None, "{ctx}: record left");
            assert!(b.cached_packs().iter().all(|p| !p.is_empty()) || fault != "pack");
            let calls = b.calls();
            let tail: Vec<&str> = calls
                .iter()
                .rev()
                .take(2)
                .rev()
                .map(String::as_str)
                .collect();
            let delete = delete_line(v, "agent");
            match (fault, started) {
                ("pack", _) => {
                    assert!(
                        !calls.iter().any(|c| c.contains("machine create")),
                        "{ctx}: {calls:#?}"
                    );
                    assert!(
                        b.cached_packs().is_empty(),
                        "{ctx}: half-written pack left: {:?}",
                        b.cached_packs()
                    );
                    run.stderr_has("agent: nothing was created");
                }
                (_, true) => {
                    assert_eq!(
                        tail,
                        ["smolvm machine stop --name agent", delete.as_str()],
                        "{ctx}"
                    );
                    run.stderr_has("agent: torn down");
                }
                (_, false) => {
                    assert_eq!(
                        calls.last().map(String::as_str),
                        Some(delete.as_str()),
                        "{ctx}"
                    );
                    assert!(!calls.iter().any(|c| c.contains("machine stop")), "{ctx}");
                }
            }
        }
    }
}

/// The agent spec copying its workspace one file per `smolvm machine cp`:
/// `copy_via = "cp"`.
const AGENT_VIA_CP: &str = r#"name = "agent"
copy_via = "cp"

[image]
ref = "img:1"

[network]
allow_cidrs = ["192.168.50.2/32"]

[env]
HTTPS_PROXY = "http://192.168.50.2:8888"

[[copy]]
src = "ws"
dest = "/workspace"

[ready]
timeout = "2s"

[[exec]]
run = ["sh", "-c", "cat README.md > /done; printenv HTTPS_PROXY >> /done"]
workdir = "/workspace"
"#;

#[test]
fn the_error_names_the_argv_and_smolvm_stderr() {
    let b = Bottle::new();
    b.agent();
    let spec = b.write("spec.toml", AGENT_VIA_CP);
    let run = b.run_with(
        &[("SMOLVM_SIM_FAIL", "cp@2")],
        &["apply", spec.to_str().unwrap()],
    );
    run.status(1)
        .stderr_has("error: agent: copy[1] failed")
        .stderr_has("machine cp ")
        .stderr_has("agent:/workspace/src/main.sh` exited with code 1: Error: simulated failure of cp (call 2)");
}

/// The agent spec with a second step that exits 7.
const AGENT_THEN_EXIT_7: &str = r#"name = "agent"

[image]
ref = "img:1"

[network]
allow_cidrs = ["192.168.50.2/32"]

[env]
HTTPS_PROXY = "http://192.168.50.2:8888"

[[copy]]
src = "ws"
dest = "/workspace"

[ready]
timeout = "2s"

[[exec]]
run = ["sh", "-c", "cat README.md > /done; printenv HTTPS_PROXY >> /done"]
workdir = "/workspace"
[[exec]]
run = ["sh", "-c", "exit 7"]
"#;

#[test]
fn a_failing_guest_command_reports_its_exit_code() {
    let b = Bottle::new();
    b.agent();
    let spec = b.write("spec.toml", AGENT_THEN_EXIT_7);
    let run = b.run(&["apply", spec.to_str().unwrap()]);
    run.status(1)
        .stderr_has("agent: exec[1] failed")
        .stderr_has("exited with code 7");
    assert!(b.world().machines.is_empty());
}

#[test]
fn a_hung_step_is_killed_at_its_deadline_and_torn_down() {
    let b = Bottle::new();
    let spec = b.agent();
    let run = b.run_with(
        &[("SMOLVM_SIM_HANG", "cp")],
        &["apply", "--step-timeout", "1s", spec.to_str().unwrap()],
    );
    run.status(1)
        .stderr_has("agent: upload failed")
        .stderr_has("did not finish within 1s");
    assert!(b.world().machines.is_empty());
    assert_eq!(
        b.processes_left(),
        Vec::<String>::new(),
        "the hung smolvm process was not killed"
    );
}

#[test]
fn a_guest_that_never_answers_fails_wait_ready_after_its_timeout() {
    let b = Bottle::new();
    let spec = b.agent();
    let run = b.run_with(
        &[("SMOLVM_SIM_READY_AFTER", "100000")],
        &["apply", spec.to_str().unwrap()],
    );
    run.status(1)
        .stderr_has("agent: wait-ready failed")
        .stderr_has("machine `agent` not ready after");
    assert!(b.world().machines.is_empty());
}

#[test]
fn a_slow_guest_is_waited_for() {
    let b = Bottle::new();
    let spec = b.agent();
    b.run_with(
        &[("SMOLVM_SIM_READY_AFTER", "3")],
        &["apply", spec.to_str().unwrap()],
    )
    .status(0);
    let probes = b.calls().iter().filter(|c| c.ends_with("-- true")).count();
    assert_eq!(probes, 4);
}

#[test]
fn a_guest_that_boots_after_start_returns_is_probed_until_it_answers() {
    let b = Bottle::new();
    let spec = b.agent();
    b.run_with(
        &[("SMOLVM_SIM_READY_MS", "300")],
        &["apply", spec.to_str().unwrap()],
    )
    .status(0);
    let m = &b.world().machines["agent"];
    let (ready, answered) = (m.ready_at_us.unwrap(), m.answered_at_us.unwrap());
    assert!(answered >= ready);
    let probes = b.calls().iter().filter(|c| c.ends_with("-- true")).count();
    assert!(probes > 1, "{probes} probes");
    assert_eq!(
        b.guest("agent", "/workspace/README.md").as_deref(),
        Some("# hello\n")
    );
}

#[test]
fn keep_on_failure_leaves_the_machine_and_says_how_to_remove_it() {
    let b = Bottle::new();
    let spec = b.agent();
    let spec = spec.to_str().unwrap();
    let run = b.run_with(
        &[("SMOLVM_SIM_FAIL", "exec")],
        &["apply", "--keep-on-failure", spec],
    );
    run.status(1)
        .stderr_has("kept as it failed")
        .stderr_has("bottle down agent");
    assert_eq!(b.world().machines["agent"].state, "running");
    assert_eq!(b.record("agent").unwrap()["phase"], "failed");
    let again = b.run(&["apply", spec]);
    again
        .status(0)
        .stderr_has("replacing (its last apply did not complete)");
    assert_eq!(b.record("agent").unwrap()["phase"], "complete");
}

#[test]
fn a_name_taken_during_create_is_not_torn_down() {
    let b = Bottle::new();
    let spec = b.agent();
    // Someone else's machine appears between bottle's look and its create:
    // the simulator reports "already exists" on create.
    let key = b.pack_key("img:1");
    let _ = key;
    b.sim(&["machine", "create", "--name", "agent"]).status(0);
    let run = b.run(&["apply", spec.to_str().unwrap()]);
    run.status(3).stderr_has("bottle has no record");
    assert!(b.world().machines.contains_key("agent"));
    assert_eq!(b.record("agent"), None);
}

#[test]
fn a_failed_teardown_stop_on_smolvm_0_8_leaves_the_machine_rather_than_orphan_its_vm() {
    let b = Bottle::on("0.8.0");
    let spec = b.agent();
    let run = b.run_with(
        &[("SMOLVM_SIM_FAIL", "cp,stop")],
        &["apply", "--allow-unenforced-egress", spec.to_str().unwrap()],
    );
    run.status(1)
        .stderr_has("teardown: stop: failed")
        .stderr_has("teardown failed: the machine may still exist");
    assert!(
        !b.calls().iter().any(|c| c.contains("machine delete")),
        "{:#?}",
        b.calls()
    );
    let world = b.world();
    assert!(world.orphans.is_empty(), "{:?}", world.orphans);
    assert_eq!(world.machines["agent"].state, "running");
    assert_eq!(
        b.record("agent").unwrap()["phase"],
        "failed",
        "bottle still owns it"
    );
    b.run(&["down", "agent"]).status(0);
    assert!(b.world().machines.is_empty() && b.world().orphans.is_empty());
}

#[test]
fn a_failed_teardown_stop_on_smolvm_1_x_still_deletes() {
    let b = Bottle::new();
    let spec = b.agent();
    b.run_with(
        &[("SMOLVM_SIM_FAIL", "cp,stop")],
        &["apply", spec.to_str().unwrap()],
    )
    .status(1)
    .stderr_has("agent: torn down");
    let world = b.world();
    assert!(world.machines.is_empty() && world.orphans.is_empty());
}

#[test]
fn down_on_smolvm_0_8_does_not_delete_a_machine_it_could_not_stop() {
    let b = Bottle::on("0.8.0");
    let spec = b.agent();
    b.run(&["apply", "--allow-unenforced-egress", spec.to_str().unwrap()])
        .status(0);
    b.run_with(&[("SMOLVM_SIM_FAIL", "stop")], &["down", "agent"])
        .status(1)
        .stderr_has("cannot remove the machine");
    let world = b.world();
    assert!(world.orphans.is_empty());
    assert_eq!(world.machines["agent"].state, "running");
    assert!(b.record("agent").is_some());
}

/// The agent spec waiting up to 120 s for readiness instead of 2 s.
const AGENT_READY_IN_120S: &str = r#"name = "agent"

[image]
ref = "img:1"

[network]
allow_cidrs = ["192.168.50.2/32"]

[env]
HTTPS_PROXY = "http://192.168.50.2:8888"

[[copy]]
src = "ws"
dest = "/workspace"

[ready]
timeout = "120s"

[[exec]]
run = ["sh", "-c", "cat README.md > /done; printenv HTTPS_PROXY >> /done"]
workdir = "/workspace"
"#;

#[test]
fn a_vm_that_dies_while_bottle_waits_fails_fast_with_its_state() {
    let b = Bottle::new();
    b.agent();
    let spec = b.write("spec.toml", AGENT_READY_IN_120S);
    let child = b.spawn(
        &[("SMOLVM_SIM_READY_AFTER", "100000")],
        &["apply", spec.to_str().unwrap()],
    );
    b.wait_for_call("-- true");
    b.sim(&["machine", "stop", "--name", "agent"]).status(0);
    // Without the status check this would wait out the 120 s deadline;
    // `finish` gives up after 30 s.
    let run = crate::support::finish(child);
    run.status(1)
        .stderr_has("agent: wait-ready failed")
        .stderr_has("machine `agent` is stopped");
    assert!(b.world().machines.is_empty());
}

/// The hint after `--keep-on-failure` names the removal calls in the
/// installed smolvm's dialect, and they work: run as printed, they remove
/// the machine. (The hint used to type the 0.8 form, which 1.x rejects.)
#[test]
fn the_removal_hint_speaks_the_installed_dialect_and_works() {
    for version in VERSIONS {
        let b = Bottle::on(version);
        let spec = b.agent();
        let run = b.run_with(
            &[("SMOLVM_SIM_FAIL", "exec")],
            &[
                "apply",
                "--keep-on-failure",
                "--allow-unenforced-egress",
                spec.to_str().unwrap(),
            ],
        );
        run.status(1);
        insta::assert_snapshot!(
            format!("keep_on_failure_{version}"),
            b.normalize(&run.stderr)
        );
        let hint = run
            .stderr
            .lines()
            .find(|l| l.contains("kept as it failed"))
            .expect("hint");
        let by_hand = hint.rsplit("or `").next().unwrap().trim_end_matches('`');
        for line in by_hand.split("; ") {
            let words: Vec<&str> = line.split(' ').skip(1).collect();
            b.sim(&words).status(0);
        }
        assert!(b.world().machines.is_empty(), "{version}: {by_hand}");
        assert!(b.world().orphans.is_empty(), "{version}");
    }
}

/// If the `creating` record cannot be written, nothing is created and no
/// smolvm call changes anything: no `create`, and no `stop` or `delete` of
/// a name bottle never created. (A records directory on procfs refuses
/// writes even to root.)
#[test]
fn a_record_that_cannot_be_written_creates_nothing_and_deletes_nothing() {
    for version in VERSIONS {
        let b = Bottle::on(version);
        let spec = b.agent();
        std::fs::create_dir_all(b.path("state")).unwrap();
        std::os::unix::fs::symlink("/proc/sys/vm", b.path("state/machines")).unwrap();
        let run = b.run(&["apply", "--allow-unenforced-egress", spec.to_str().unwrap()]);
        run.status(1)
            .stderr_has("agent: record failed")
            .stderr_has("agent: nothing was created");
        let calls = b.calls();
        assert!(
            calls.iter().all(|c| !c.contains("machine create")
                && !c.contains("machine delete")
                && !c.contains("machine stop")),
            "{version}: {calls:#?}"
        );
        assert!(b.world().machines.is_empty(), "{version}");
    }
}
