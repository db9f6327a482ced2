//! smolvm's errors are recognised by their exact messages: a message that
//! says "not found" about something else never makes bottle believe a
//! machine is gone (and forget a machine that still exists).

use crate::support::{Bottle, SIM};

/// A smolvm whose `status` and `ls` fail the way the real one does when
/// its hypervisor library is missing; every other call goes to the
/// simulator.
fn smolvm_without_libkrun(b: &Bottle) -> String {
    let script = b.write(
        "smolvm-nolibkrun",
        &format!(
            "#!/bin/sh\nif [ \"$1 $2\" = \"machine status\" ] || [ \"$1 $2\" = \"machine ls\" ]; then\n  \
             echo 'Error: libkrun/libkrunfw not found' >&2\n  exit 1\nfi\nexec {SIM} \"$@\"\n"
        ),
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script.to_string_lossy().into_owned()
}

#[test]
fn a_not_found_about_something_else_is_not_a_missing_machine() {
    let b = Bottle::new();
    let spec = b.agent();
    b.run(&["apply", spec.to_str().unwrap()]).status(0);
    let smolvm = smolvm_without_libkrun(&b);
    let env = [("BOTTLE_SMOLVM", smolvm.as_str())];
    b.run_with(&env, &["down", "agent"])
        .status(1)
        .stderr_has("agent: cannot observe the machine")
        .stderr_has("Error: libkrun/libkrunfw not found");
    assert!(b.record("agent").is_some(), "the record is kept");
    assert_eq!(b.world().machines["agent"].state, "running");
    b.run_with(&env, &["status", "agent"]).status(1);
    b.run_with(&env, &["apply", spec.to_str().unwrap()])
        .status(1)
        .stderr_has("cannot observe");
    assert_eq!(b.world().machines["agent"].state, "running");
}
