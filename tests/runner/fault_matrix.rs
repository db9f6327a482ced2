//! The fault matrix: every step × {exit 1, hang past its timeout, SIGINT,
//! SIGKILL of bottle then re-apply}, in both dialects. Counts the cases and
//! the VMs left where none should be (the goal is 0).

use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::process::Signal;

use crate::support::{Bottle, VERSIONS, finish, signal};

/// (simulator step, a text its call contains)
const STEPS: [(&str, &str); 6] = [
    ("pack", "pack create"),
    ("create", "machine create"),
    ("start", "machine start"),
    ("probe", "-- true"),
    ("cp", "machine cp"),
    ("exec", "tar -xf"),
];

#[derive(Clone, Copy, Debug)]
enum Mode {
    Exit1,
    Hang,
    Sigint,
    Sigkill,
}

/// Run one case; returns the number of VMs (and orphaned VM processes)
/// left that should not be.
fn case(version: &str, step: &str, marker: &str, mode: Mode) -> usize {
    let b = Bottle::on(version);
    let spec = b.agent();
    let spec = spec.to_str().unwrap();
    let args = [
        "apply",
        "--allow-unenforced-egress",
        "--step-timeout",
        "1s",
        spec,
    ];
    let ctx = format!("smolvm {version}, {step}, {mode:?}");
    match mode {
        Mode::Exit1 => {
            b.run_with(&[("SMOLVM_SIM_FAIL", step)], &args).status(1);
        }
        Mode::Hang => {
            b.run_with(&[("SMOLVM_SIM_HANG", step)], &args)
                .status(1)
                .stderr_has("did not finish within 1s");
        }
        Mode::Sigint => {
            let child = b.spawn(
                &[("SMOLVM_SIM_HANG", step)],
                &["apply", "--allow-unenforced-egress", spec],
            );
            b.wait_for_call(marker);
            signal(&child, Signal::INT);
            assert_eq!(finish(child).code, 130, "{ctx}");
        }
        Mode::Sigkill => {
            let child = b.spawn(
                &[("SMOLVM_SIM_HANG", step)],
                &["apply", "--allow-unenforced-egress", spec],
            );
            b.wait_for_call(marker);
            signal(&child, Signal::KILL);
            finish(child);
            b.kill_leftovers();
            let again = b.run(&["apply", "--allow-unenforced-egress", spec]);
            assert_eq!(again.code, 0, "{ctx}: re-apply: {}", again.stderr);
            assert_eq!(b.record("agent").unwrap()["phase"], "complete", "{ctx}");
            assert_eq!(
                b.guest("agent", "/done").as_deref(),
                Some("# hello\nhttp://192.168.50.2:8888\n"),
                "{ctx}"
            );
            b.run(&["down", "agent"]).status(0);
        }
    }
    let world = b.world();
    let left = world.machines.len() + world.orphans.len();
    assert_eq!(
        left,
        0,
        "{ctx}: left {:?} {:?}",
        world.machines.keys(),
        world.orphans
    );
    assert_eq!(
        b.processes_left(),
        Vec::<String>::new(),
        "{ctx}: processes left"
    );
    assert_eq!(b.record("agent"), None, "{ctx}: record left");
    left
}

#[test]
fn every_step_under_every_fault_leaves_no_vm() {
    let cases = AtomicUsize::new(0);
    let left = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for version in VERSIONS {
            for mode in [Mode::Exit1, Mode::Hang, Mode::Sigint, Mode::Sigkill] {
                let (cases, left) = (&cases, &left);
                s.spawn(move || {
                    for (step, marker) in STEPS {
                        left.fetch_add(case(version, step, marker, mode), Ordering::SeqCst);
                        cases.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        }
    });
    let (cases, left) = (cases.into_inner(), left.into_inner());
    println!("fault matrix: {cases} cases, {left} VMs left");
    assert_eq!(cases, 48);
    assert_eq!(left, 0);
}
