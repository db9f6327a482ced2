//! `down` removes only what bottle owns; `status` reports it.

use crate::support::{Bottle, VERSIONS, delete_line};

#[test]
fn down_stops_deletes_and_forgets() {
    for v in VERSIONS {
        let b = Bottle::on(v);
        let spec = b.agent();
        let spec = spec.to_str().unwrap();
        b.run(&["apply", "--allow-unenforced-egress", spec])
            .status(0);
        b.clear_calls();
        b.run(&["down", spec])
            .status(0)
            .stderr_has("agent: removed");
        let delete = delete_line(v, "agent");
        assert_eq!(
            b.calls(),
            [
                "smolvm --version",
                "smolvm machine status --name agent --json",
                "smolvm machine stop --name agent",
                delete.as_str()
            ]
        );
        let world = b.world();
        assert!(
            world.machines.is_empty() && world.orphans.is_empty(),
            "smolvm {v}"
        );
        assert_eq!(b.record("agent"), None);
        b.run(&["down", "agent"]).status(3);
    }
}

#[test]
fn down_of_a_machine_already_gone_forgets_it() {
    let b = Bottle::new();
    let spec = b.agent();
    b.run(&["apply", spec.to_str().unwrap()]).status(0);
    b.sim(&["machine", "delete", "-f", "--name", "agent"])
        .status(0);
    b.run(&["down", "agent"])
        .status(0)
        .stderr_has("already gone");
    assert_eq!(b.record("agent"), None);
}

#[test]
fn status_reports_state_and_ownership() {
    let b = Bottle::new();
    let spec = b.agent();
    let spec = spec.to_str().unwrap();
    let none = b.run(&["status", "agent", "--json"]);
    none.status(0);
    let v: serde_json::Value = serde_json::from_str(&none.stdout).unwrap();
    assert_eq!(
        (v["exists"].as_bool(), v["managed"].as_bool()),
        (Some(false), Some(false))
    );
    b.run(&["apply", spec]).status(0);
    let run = b.run(&["status", spec, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["state"], "running");
    assert_eq!(v["managed"], true);
    assert_eq!(v["record"]["phase"], "complete");
    b.run(&["status", "agent"])
        .status(0)
        .stdout_has("agent: running, managed by bottle (last apply complete");
    b.run(&["status", "-bad"]).status(2);
}
