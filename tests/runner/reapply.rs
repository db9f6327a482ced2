//! Re-applying: unchanged does nothing, stopped restarts, a change of a
//! field fixed at create replaces (with --replace), gone recreates, and a
//! machine bottle did not create is left alone. In-place updates are in
//! `update`.

use crate::support::{Bottle, VERSIONS, delete_line};

#[test]
fn an_unchanged_reapply_makes_no_mutating_call() {
    for v in VERSIONS {
        let b = Bottle::on(v);
        let spec = b.agent();
        let spec = spec.to_str().unwrap();
        b.run(&["apply", "--allow-unenforced-egress", spec])
            .status(0);
        let before = b.world();
        b.clear_calls();
        b.run(&["apply", "--allow-unenforced-egress", spec])
            .status(0)
            .stderr_has("agent: unchanged");
        assert_eq!(
            b.calls(),
            ["smolvm --version", "smolvm machine ls --json"],
            "smolvm {v}"
        );
        assert_eq!(b.world().machines, before.machines);
    }
}

#[test]
fn a_stopped_machine_is_started_and_waited_for_only() {
    let b = Bottle::new();
    let spec = b.agent();
    let spec = spec.to_str().unwrap();
    b.run(&["apply", spec]).status(0);
    b.sim(&["machine", "stop", "--name", "agent"]).status(0);
    b.clear_calls();
    b.run(&["apply", spec])
        .status(0)
        .stderr_has("restarting (it is stopped)");
    assert_eq!(
        b.calls(),
        [
            "smolvm --version",
            "smolvm machine ls --json",
            "smolvm machine start --name agent",
            "smolvm machine exec --name agent -- true",
        ]
    );
}

/// The agent spec with its proxy on port 9999 instead of 8888: a changed env.
const AGENT_PROXY_9999: &str = r#"name = "agent"

[image]
ref = "img:1"

[network]
allow_cidrs = ["192.168.50.2/32"]

[env]
HTTPS_PROXY = "http://192.168.50.2:9999"

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
fn a_spec_changed_at_create_replaces_the_machine_and_says_what_changed() {
    for v in VERSIONS {
        let b = Bottle::on(v);
        let spec = b.agent();
        let spec = spec.to_str().unwrap();
        b.run(&["apply", "--allow-unenforced-egress", spec])
            .status(0);
        b.write("spec.toml", AGENT_PROXY_9999);
        b.write("ws/README.md", "# changed\n");
        b.clear_calls();
        let run = b.run(&["apply", "--allow-unenforced-egress", "--replace", spec]);
        run.status(0)
            .stderr_has("replacing (changed: env [forces replacement], copy)");
        let calls = b.calls();
        let delete = delete_line(v, "agent");
        let stop_at = calls
            .iter()
            .position(|c| c == "smolvm machine stop --name agent")
            .expect("stop");
        assert_eq!(calls[stop_at + 1], delete);
        assert!(
            calls[stop_at + 2].starts_with("smolvm machine create"),
            "{calls:#?}"
        );
        assert!(
            !calls.iter().any(|c| c.contains("pack create")),
            "the image is cached: {calls:#?}"
        );
        let world = b.world();
        assert!(world.orphans.is_empty(), "smolvm {v}: {:?}", world.orphans);
        assert_eq!(
            world.machines["agent"].env,
            ["HTTPS_PROXY=http://192.168.50.2:9999"]
        );
        assert_eq!(
            b.guest("agent", "/workspace/README.md").as_deref(),
            Some("# changed\n")
        );
    }
}

/// The agent spec on image `img:2` instead of `img:1`: a changed image.
const AGENT_ON_IMG_2: &str = r#"name = "agent"

[image]
ref = "img:2"

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
fn a_failed_pack_during_replace_leaves_the_old_machine_running() {
    let b = Bottle::new();
    let spec = b.agent();
    let spec = spec.to_str().unwrap();
    b.run(&["apply", spec]).status(0);
    b.write("spec.toml", AGENT_ON_IMG_2);
    b.run_with(
        &[("SMOLVM_SIM_FAIL", "pack")],
        &["apply", "--replace", spec],
    )
    .status(1)
    .stderr_has("agent: nothing was created");
    assert_eq!(b.world().machines["agent"].state, "running");
    assert_eq!(b.record("agent").unwrap()["phase"], "complete");
}

#[test]
fn a_machine_gone_behind_bottles_back_is_recreated() {
    let b = Bottle::new();
    let spec = b.agent();
    let spec = spec.to_str().unwrap();
    b.run(&["apply", spec]).status(0);
    b.sim(&["machine", "delete", "-f", "--name", "agent"])
        .status(0);
    b.run(&["apply", spec])
        .status(0)
        .stderr_has("creating (bottle's record names it, but the machine is gone)");
    assert_eq!(b.world().machines["agent"].state, "running");
}

#[test]
fn a_machine_bottle_did_not_create_is_never_touched() {
    for v in VERSIONS {
        let b = Bottle::on(v);
        let spec = b.agent();
        let create: &[&str] = if v == "0.8.0" {
            &["machine", "create", "agent"]
        } else {
            &["machine", "create", "--name", "agent"]
        };
        b.sim(create).status(0);
        b.sim(&["machine", "start", "--name", "agent"]).status(0);
        b.clear_calls();
        let run = b.run(&["apply", "--allow-unenforced-egress", spec.to_str().unwrap()]);
        run.status(3)
            .stderr_has("a machine named `agent` exists (running) but bottle has no record");
        assert_eq!(b.calls(), ["smolvm --version", "smolvm machine ls --json"]);
        assert_eq!(b.world().machines["agent"].state, "running");
        b.run(&["down", "agent"])
            .status(3)
            .stderr_has("bottle has no record of machine `agent`");
        assert_eq!(b.world().machines["agent"].state, "running");
    }
}
