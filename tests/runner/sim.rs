//! smolvm-sim behaves like smolvm as the contract describes it.

use bottle::smolvm::parse;

use crate::support::Bottle;

#[test]
fn version_names_the_simulator() {
    let b = Bottle::on("1.8.2");
    let run = b.sim(&["--version"]);
    run.status(0).stdout_has("smolvm 1.8.2 (smolvm-sim");
}

#[test]
fn usage_errors_exit_2_like_clap() {
    let b = Bottle::new();
    b.sim(&["machine", "start", "--name", "a", "--bogus"])
        .status(2)
        .stderr_has("error: unexpected argument '--bogus' found");
    b.sim(&["machine", "exec", "--name", "a", "true"])
        .status(2)
        .stderr_has("unexpected argument 'true'");
    b.sim(&[
        "machine",
        "create",
        "--name",
        "a",
        "--allow-cidr",
        "10.0.0.0/40",
    ])
    .status(2)
    .stderr_has("invalid CIDR");
    b.sim(&["machine", "create", "--name", "a", "-e", "NOVALUE"])
        .status(2)
        .stderr_has("KEY=VALUE");
    b.sim(&["machine", "create", "a"]).status(2);
    Bottle::on("0.8.0")
        .sim(&["machine", "create", "--name", "a"])
        .status(2);
    assert!(b.world().machines.is_empty());
}

#[test]
fn machines_follow_the_contract_semantics() {
    let b = Bottle::new();
    b.sim(&["machine", "create", "--name", "a"]).status(0);
    b.sim(&["machine", "create", "--name", "a"])
        .status(1)
        .stderr_has("Error: config operation failed: create machine: machine 'a' already exists or is being created");
    b.sim(&["machine", "exec", "--name", "a", "--", "true"])
        .status(1)
        .stderr_has("machine 'a' is not running");
    b.sim(&["machine", "start", "--name", "a"]).status(0);
    b.sim(&["machine", "start", "--name", "a"])
        .status(0)
        .stdout_has("already running");
    b.sim(&["machine", "exec", "--name", "a", "--", "sh", "-c", "exit 3"])
        .status(3);
    b.sim(&["machine", "exec", "--name", "a", "--", "curl", "x"])
        .status(127)
        .stderr_has("curl: not found");
    b.sim(&["machine", "delete", "--name", "a"])
        .status(1)
        .stderr_has("cancelled");
    assert!(
        b.world().machines.contains_key("a"),
        "delete without -f must not delete"
    );
    b.sim(&["machine", "delete", "-f", "--name", "a"]).status(0);
    assert!(b.world().orphans.is_empty(), "1.x delete stops the VM");
    b.sim(&["machine", "delete", "-f", "--name", "a"])
        .status(1)
        .stderr_has("Error: vm not found: a");
    b.sim(&["machine", "stop", "--name", "a"])
        .status(1)
        .stderr_has("vm not found");
}

#[test]
fn smolvm_0_8_0_quirks_are_reproduced() {
    let b = Bottle::on("0.8.0");
    b.sim(&["machine", "stop", "--name", "gone"])
        .status(0)
        .stdout_has("not found or not running");
    b.sim(&["machine", "create", "a"]).status(0);
    b.sim(&["machine", "create", "a"])
        .status(1)
        .stderr_has("machine 'a' already exists\n");
    b.sim(&["machine", "start", "--name", "a"]).status(0);
    b.sim(&["machine", "delete", "-f", "a"]).status(0);
    let world = b.world();
    assert_eq!(
        world.orphans.len(),
        1,
        "0.8.0 delete leaves the VM process: {world:?}"
    );
    assert_eq!(world.orphans[0].name, "a");
    let out = b.path("p").to_string_lossy().into_owned();
    b.sim(&["pack", "create", "--image", "x:1", "-o", &out])
        .status(0);
    let pack = format!("{out}.smolmachine");
    b.sim(&[
        "machine",
        "create",
        "--from",
        &pack,
        "--net",
        "--allow-cidr",
        "10.0.0.0/8",
        "c",
    ])
    .status(0);
    assert_eq!(
        b.world().machines["c"].egress,
        "open",
        "0.8.0 drops --allow-cidr on --from"
    );
}

#[test]
fn packs_are_two_files_and_create_accepts_only_a_pack() {
    let b = Bottle::new();
    let out = b.path("p").to_string_lossy().into_owned();
    b.sim(&["pack", "create", "--image", "x:1", "-o", &out])
        .status(0);
    assert!(b.path("p").is_file() && b.path("p.smolmachine").is_file());
    b.sim(&[
        "pack",
        "create",
        "--image",
        "x:1",
        "-o",
        &format!("{out}.smolmachine"),
    ])
    .status(1);
    b.sim(&["machine", "create", "--name", "a", "--from", &out])
        .status(1)
        .stderr_has("invalid pack");
    let pack = format!("{out}.smolmachine");
    b.sim(&[
        "machine",
        "create",
        "--name",
        "a",
        "--from",
        &pack,
        "--net",
        "--allow-cidr",
        "10.0.0.0/8",
    ])
    .status(0);
    assert_eq!(b.world().machines["a"].egress, "allow-list");
}

#[test]
fn cp_copies_one_file_into_a_running_guest() {
    let b = Bottle::new();
    let host = b.write("f", "data\n");
    let host = host.to_str().unwrap();
    b.sim(&["machine", "create", "--name", "a"]).status(0);
    b.sim(&["machine", "cp", host, "a:/x/y/f"])
        .status(1)
        .stderr_has("not running");
    b.sim(&["machine", "start", "--name", "a"]).status(0);
    b.sim(&["machine", "cp", host, "a:/x/y/f"]).status(0);
    assert_eq!(b.guest("a", "/x/y/f").as_deref(), Some("data\n"));
    b.sim(&["machine", "cp", b.tmp.path().to_str().unwrap(), "a:/d"])
        .status(1)
        .stderr_has("not a regular file");
    let back = b.path("back");
    b.sim(&["machine", "cp", "a:/x/y/f", back.to_str().unwrap()])
        .status(0);
    assert_eq!(std::fs::read_to_string(back).unwrap(), "data\n");
}

#[test]
fn status_and_ls_print_what_bottle_parses() {
    let b = Bottle::new();
    b.sim(&["machine", "status", "--name", "a", "--json"])
        .status(1)
        .stderr_has("Error: config operation failed: machine status: machine 'a' not found");
    b.sim(&["machine", "create", "--name", "a", "-e", "K=V"])
        .status(0);
    let s = parse::status(
        &b.sim(&["machine", "status", "--name", "a", "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(
        (s.name.as_str(), s.state.as_str(), s.network),
        ("a", "created", false)
    );
    b.sim(&["machine", "start", "--name", "a"]).status(0);
    let all = parse::list(&b.sim(&["machine", "ls", "--json"]).stdout).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state.as_str(), "running");
    assert!(all[0].pid.is_some());
}

#[test]
fn faults_fire_on_the_chosen_call() {
    let b = Bottle::new();
    let fail = [("SMOLVM_SIM_FAIL", "create@2")];
    b.sim_with(&fail, &["machine", "create", "--name", "a"])
        .status(0);
    b.sim_with(&fail, &["machine", "create", "--name", "b"])
        .status(1)
        .stderr_has("simulated failure of create (call 2)");
    b.sim_with(&fail, &["machine", "create", "--name", "c"])
        .status(0);
    assert_eq!(b.world().machines.keys().collect::<Vec<_>>(), ["a", "c"]);
    b.sim_with(&[("SMOLVM_SIM_FAIL", "nonsense")], &["--version"])
        .status(2)
        .stderr_has("unknown step");
    b.sim(&["machine", "start", "--name", "a"]).status(0);
    let slow = [("SMOLVM_SIM_READY_AFTER", "2")];
    b.sim(&["machine", "stop", "--name", "a"]).status(0);
    b.sim_with(&slow, &["machine", "start", "--name", "a"])
        .status(0);
    b.sim(&["machine", "exec", "--name", "a", "--", "true"])
        .status(1);
    b.sim(&["machine", "exec", "--name", "a", "--", "true"])
        .status(1);
    b.sim(&["machine", "exec", "--name", "a", "--", "true"])
        .status(0);

    // SMOLVM_SIM_READY_MS: the guest answers that long after `start`.
    b.sim(&["machine", "stop", "--name", "a"]).status(0);
    b.sim_with(
        &[("SMOLVM_SIM_READY_MS", "400")],
        &["machine", "start", "--name", "a"],
    )
    .status(0);
    b.sim(&["machine", "exec", "--name", "a", "--", "true"])
        .status(1)
        .stderr_has("not answering yet");
    let m = &b.world().machines["a"];
    assert_eq!(m.answered_at_us, None);
    let ready_at = m.ready_at_us.expect("ready time");
    std::thread::sleep(std::time::Duration::from_millis(420));
    b.sim(&["machine", "exec", "--name", "a", "--", "true"])
        .status(0);
    let answered = b.world().machines["a"].answered_at_us.expect("answered");
    assert!(answered >= ready_at, "{answered} < {ready_at}");
}

#[test]
fn concurrent_simulators_keep_one_consistent_world() {
    let b = Bottle::new();
    let names: Vec<String> = (0..12).map(|i| format!("m{i}")).collect();
    std::thread::scope(|s| {
        for n in &names {
            let b = &b;
            s.spawn(move || b.sim(&["machine", "create", "--name", n]).status(0).code);
        }
    });
    let world = b.world();
    assert_eq!(world.machines.len(), 12, "{:?}", world.machines.keys());
    assert_eq!(b.calls().len(), 12);
}

#[test]
fn the_guest_never_escapes_its_root() {
    let b = Bottle::new();
    b.sim(&["machine", "create", "--name", "a"]).status(0);
    b.sim(&["machine", "start", "--name", "a"]).status(0);
    b.sim(&[
        "machine",
        "exec",
        "--name",
        "a",
        "--",
        "sh",
        "-c",
        "echo x > /../../../escape",
    ])
    .status(0);
    assert!(!b.path("escape").exists() && !std::path::Path::new("/escape").exists());
    assert_eq!(b.guest("a", "/escape").as_deref(), Some("x\n"));
}
