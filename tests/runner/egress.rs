//! The egress rule: an allow-list smolvm cannot enforce is refused unless
//! the user accepts unrestricted egress.

use crate::support::{AGENT_SPEC, Bottle};

#[test]
fn an_unenforceable_allow_list_is_refused_before_any_change() {
    for v in ["0.8.0", "1.0.2", "1.7.7"] {
        let b = Bottle::on(v);
        let spec = b.agent();
        let run = b.run(&["apply", spec.to_str().unwrap()]);
        run.status(3)
            .stderr_has(&format!(
                "refusing to create a machine with network.allow_cidrs on smolvm {v}"
            ))
            .stderr_has("egress would be unrestricted")
            .stderr_has("Upgrade smolvm to 1.8.0")
            .stderr_has("--allow-unenforced-egress");
        assert_eq!(b.calls(), ["smolvm --version"], "smolvm {v}");
        assert!(b.world().machines.is_empty());
    }
}

#[test]
fn the_override_proceeds_and_every_run_warns() {
    let b = Bottle::on("1.7.7");
    let spec = b.agent();
    // Once the machine exists, only a new machine needs the override: an
    // update creates nothing.
    let spec = spec.to_str().unwrap();
    let run = b.run(&["apply", "--allow-unenforced-egress", spec]);
    run.status(0)
        .stderr_has("warning: egress of `agent` is UNRESTRICTED: smolvm 1.7.7 drops");
    assert_eq!(
        b.world().machines["agent"].egress,
        "open",
        "the simulator reproduces the hazard"
    );
    b.run(&["apply", "--allow-unenforced-egress", spec])
        .status(0)
        .stderr_has("UNRESTRICTED")
        .stderr_has("unchanged");
    b.run(&["apply", spec])
        .status(0)
        .stderr_has("UNRESTRICTED")
        .stderr_has("unchanged");
    let plan = b.run(&["plan", spec]);
    plan.status(0).stderr_has("UNRESTRICTED");
    assert!(
        !plan.stderr.contains("will refuse"),
        "nothing is created: {}",
        plan.stderr
    );
    b.write("ws/README.md", "# edited\n");
    b.run(&["apply", spec])
        .status(0)
        .stderr_has("agent: update in place: copy /workspace (1 file changed)");
    b.write("spec.toml", &AGENT_SPEC.replace("img:1", "img:2"));
    b.clear_calls();
    b.run(&["apply", "--replace", spec])
        .status(3)
        .stderr_has("refusing to create a machine with network.allow_cidrs on smolvm 1.7.7");
    assert_eq!(b.calls().len(), 2, "no mutating call: {:#?}", b.calls());
    assert_eq!(b.world().machines["agent"].state, "running");
}

#[test]
fn plan_shows_the_warning() {
    let b = Bottle::on("0.8.0");
    let spec = b.agent();
    let run = b.run(&["plan", spec.to_str().unwrap()]);
    run.status(0)
        .stderr_has("warning: egress of `agent` is UNRESTRICTED")
        .stderr_has("`bottle apply` will refuse this unless --allow-unenforced-egress")
        .stdout_has("egress: UNRESTRICTED (allow-list 192.168.50.2/32 is not enforced)");
    assert!(b.world().machines.is_empty());
}

#[test]
fn from_1_8_0_the_allow_list_is_enforced() {
    let b = Bottle::on("1.8.0");
    let spec = b.agent();
    let run = b.run(&["apply", spec.to_str().unwrap()]);
    run.status(0);
    assert!(!run.stderr.contains("UNRESTRICTED"), "{}", run.stderr);
    assert_eq!(b.world().machines["agent"].egress, "allow-list");
}

#[test]
fn a_spec_without_allow_list_gets_no_network_on_any_version() {
    let b = Bottle::on("0.8.0");
    let spec = b.write("s.toml", "name = \"quiet\"\n[image]\nref = \"a:1\"\n");
    b.run(&["apply", spec.to_str().unwrap()]).status(0);
    let m = &b.world().machines["quiet"];
    assert!(!m.network);
    assert_eq!(m.egress, "none");
}

/// A pre-release of 1.8.0 orders before 1.8.0 and may lack the fix: it
/// does not count as enforcing the allow-list.
#[test]
fn a_pre_release_of_the_fixing_version_does_not_count_as_enforcing() {
    let b = Bottle::on("1.8.0-rc.1");
    let spec = b.agent();
    b.run(&["apply", spec.to_str().unwrap()])
        .status(3)
        .stderr_has("refusing to create a machine with network.allow_cidrs on smolvm 1.8.0-rc.1");
    assert!(b.world().machines.is_empty());
}
