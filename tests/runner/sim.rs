//! smolvm-sim behaves like smolvm as the contract (`smolvm-cli.md`)
//! describes it, end to end through the real `smolvm-sim` binary: the
//! argv each release accepts and refuses, the messages it prints, and the
//! behaviour that changes between releases, checked on both sides of
//! each threshold.

use serde_json::Value;

use crate::support::{Bottle, Run};

/// The positional dialect (before 1.0.2) and the name-flag one.
const OLD: &str = "0.8.0";
const NEW: &str = "1.9.3";

impl Bottle {
    /// `machine status --name NAME --json`, parsed.
    fn sim_status(&self, name: &str) -> Value {
        let run = self.sim(&["machine", "status", "--name", name, "--json"]);
        run.status(0);
        serde_json::from_str(&run.stdout).expect("status json")
    }

    /// A pack written by `pack create`; the path of its sidecar.
    fn sim_pack(&self) -> String {
        let out = self.path("p").to_string_lossy().into_owned();
        self.sim(&["pack", "create", "--image", "img:1", "-o", &out])
            .status(0);
        format!("{out}.smolmachine")
    }
}

/// clap's refusal of an argument the release does not have.
#[track_caller]
fn unknown_argument(run: &Run, arg: &str, usage: &str) {
    run.status(2)
        .stderr_has(&format!("error: unexpected argument '{arg}' found\n"))
        .stderr_has(&format!("\nUsage: smolvm machine {usage} "))
        .stderr_has("For more information, try '--help'.\n");
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[track_caller]
fn exactly(run: &Run, code: i32, stdout: &str, stderr: &str) {
    run.status(code);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), (stdout, stderr));
}

#[test]
fn version_names_the_release_and_the_simulator() {
    for v in ["0.8.0", "1.8.0-rc.1", "1.9.3"] {
        let run = Bottle::on(v).sim(&["--version"]);
        let want = format!("smolvm {v} (smolvm-sim: simulated, no VM runs)\n");
        exactly(&run, 0, &want, "");
    }
}

#[test]
fn the_positional_dialect_accepts_its_forms_and_refuses_the_name_flag() {
    let b = Bottle::on(OLD);
    let host = b.write("f", "data\n");
    let host = host.to_str().unwrap();
    let pack = b.sim_pack();
    unknown_argument(
        &b.sim(&["machine", "create", "--name", "vm"]),
        "--name",
        "create",
    );
    let from = [
        "machine",
        "create",
        "--from",
        &pack,
        "--net",
        "--allow-cidr",
        "10.0.0.0/8",
        "-e",
        "K=V",
        "vm",
    ];
    exactly(
        &b.sim(&from),
        0,
        "Extracting .smolmachine assets...\nCreated machine: vm\n",
        "",
    );
    b.sim(&["machine", "start", "--name", "vm"]).status(0);
    b.sim(&[
        "machine",
        "exec",
        "--name",
        "vm",
        "-e",
        "A=b",
        "-w",
        "/",
        "--timeout",
        "30s",
        "--",
        "true",
    ])
    .status(0);
    b.sim(&["machine", "cp", host, "vm:/x/f"]).status(0);
    b.sim(&["machine", "status", "--name", "vm", "--json"])
        .status(0);
    b.sim(&["machine", "ls", "--json"]).status(0);
    b.sim(&["machine", "stop", "-n", "vm"]).status(0);
    unknown_argument(
        &b.sim(&["machine", "delete", "-f", "--name", "vm"]),
        "--name",
        "delete",
    );
    exactly(
        &b.sim(&["machine", "delete", "-f", "vm"]),
        0,
        "Deleted machine: vm\n",
        "",
    );
    assert!(b.world().machines.is_empty());
}

#[test]
fn the_name_flag_dialect_accepts_its_forms_and_refuses_the_positional_name() {
    let b = Bottle::on(NEW);
    let host = b.write("f", "data\n");
    let host = host.to_str().unwrap();
    let pack = b.sim_pack();
    unknown_argument(&b.sim(&["machine", "create", "vm"]), "vm", "create");
    let from = [
        "machine",
        "create",
        "--name",
        "vm",
        "--from",
        &pack,
        "--net",
        "--allow-cidr",
        "10.0.0.0/8",
        "-e",
        "K=V",
    ];
    exactly(
        &b.sim(&from),
        0,
        "Extracting .smolmachine assets...\nCreated machine: vm\n",
        "",
    );
    b.sim(&["machine", "start", "-n", "vm"]).status(0);
    b.sim(&[
        "machine", "exec", "--name", "vm", "-i", "-t", "--stream", "--", "true",
    ])
    .status(0);
    b.sim(&["machine", "cp", host, "vm:/x/f", "--mode", "640"])
        .status(0);
    unknown_argument(&b.sim(&["machine", "delete", "-f", "vm"]), "vm", "delete");
    exactly(
        &b.sim(&["machine", "delete", "-f", "--name", "vm"]),
        0,
        "Deleted machine: vm\n",
        "",
    );
    assert!(b.world().machines.is_empty());
}

#[test]
fn flags_of_later_releases_are_unknown_arguments_before_them() {
    let secret = [
        "machine",
        "exec",
        "--name",
        "vm",
        "--secret-env",
        "G=HOME",
        "--",
        "true",
    ];
    unknown_argument(&Bottle::on("0.9.9").sim(&secret), "--secret-env", "exec");
    Bottle::on("1.0.0")
        .sim(&secret)
        .status(1)
        .stderr_has("vm not found");
    let cp = ["machine", "cp", "/f", "vm:/f", "--mode", "600"];
    unknown_argument(&Bottle::on("1.8.9").sim(&cp), "--mode", "cp");
    Bottle::on("1.9.0")
        .sim(&cp)
        .status(1)
        .stderr_has("vm not found");
    let detach = ["machine", "exec", "--name", "vm", "-d", "--", "true"];
    unknown_argument(&Bottle::on("1.8.9").sim(&detach), "-d", "exec");
    Bottle::on("1.9.0")
        .sim(&detach)
        .status(1)
        .stderr_has("vm not found");
    unknown_argument(
        &Bottle::on("1.0.1").sim(&["machine", "create", "--name", "vm"]),
        "--name",
        "create",
    );
    Bottle::on("1.0.2")
        .sim(&["machine", "create", "--name", "vm"])
        .status(0);
}

#[test]
fn usage_errors_exit_2_with_clap_s_text() {
    let b = Bottle::new();
    unknown_argument(
        &b.sim(&["machine", "start", "--name", "a", "--bogus"]),
        "--bogus",
        "start",
    );
    unknown_argument(
        &b.sim(&["machine", "exec", "--name", "a", "true"]),
        "true",
        "exec",
    );
    unknown_argument(
        &b.sim(&["machine", "exec", "-n", "a", "--", "true"]),
        "-n",
        "exec",
    );
    b.sim(&[
        "machine",
        "create",
        "--name",
        "a",
        "--allow-cidr",
        "10.0.0.0/40",
    ])
    .status(2)
    .stderr_has("error: invalid value '10.0.0.0/40' for '--allow-cidr <CIDR>'");
    b.sim(&["machine", "create", "--name", "a", "-e", "NOVALUE"])
        .status(2)
        .stderr_has("error: invalid value 'NOVALUE' for '--env <KEY=VALUE>'");
    b.sim(&[
        "machine",
        "exec",
        "--name",
        "a",
        "--timeout",
        "0s",
        "--",
        "true",
    ])
    .status(2)
    .stderr_has("error: invalid value '0s' for '--timeout <TIMEOUT>'");
    b.sim(&["machine", "exec", "--name", "a", "--"])
        .status(2)
        .stderr_has("error: the following required arguments were not provided");
    b.sim(&["pack", "create", "--image", "x:1"])
        .status(2)
        .stderr_has("error: the following required arguments were not provided");
    assert!(b.world().machines.is_empty());
}

#[test]
fn the_recorded_messages_appear_verbatim() {
    let b = Bottle::new();
    let gone = "Error: vm not found: gone\n";
    let host = b.write("f", "x");
    let host = host.to_str().unwrap();
    exactly(&b.sim(&["machine", "start", "--name", "gone"]), 1, "", gone);
    exactly(
        &b.sim(&["machine", "exec", "--name", "gone", "--", "true"]),
        1,
        "",
        gone,
    );
    exactly(&b.sim(&["machine", "cp", host, "gone:/f"]), 1, "", gone);
    exactly(
        &b.sim(&["machine", "delete", "-f", "--name", "gone"]),
        1,
        "",
        gone,
    );
    exactly(
        &b.sim(&["machine", "status", "--name", "gone", "--json"]),
        1,
        "",
        "Error: config operation failed: machine status: machine 'gone' not found\n",
    );
    exactly(
        &b.sim(&["machine", "create", "--name", "vm"]),
        0,
        "Created machine: vm\n",
        "",
    );
    exactly(
        &b.sim(&["machine", "stop", "--name", "vm"]),
        0,
        "Machine 'vm' is not running (state: created)\n",
        "",
    );
    exactly(
        &b.sim(&["machine", "exec", "--name", "vm", "--", "true"]),
        1,
        "",
        "Error: agent operation failed: connect: machine 'vm' is not running. Use 'smolvm machine start --name vm' first.\n",
    );
    let missing = b.path("nope.smolmachine").to_string_lossy().into_owned();
    exactly(
        &b.sim(&["machine", "create", "--name", "a", "--from", &missing]),
        1,
        "",
        &format!("Error: create from .smolmachine: file not found: {missing}\n"),
    );
    exactly(
        &b.sim(&["machine", "create", "--name", "a", "--from", host]),
        1,
        "",
        "Error: read .smolmachine: I/O error: sidecar file too small to contain footer\n",
    );
    exactly(
        &b.sim(&["machine", "create", "--name", "vm"]),
        1,
        "",
        "Error: config operation failed: create machine: machine 'vm' already exists or is being created\n",
    );
    b.sim(&["machine", "start", "--name", "vm"])
        .status(0)
        .stderr_has("Starting machine 'vm'...\n");
    b.sim(&["machine", "start", "--name", "vm"])
        .status(0)
        .stdout_has("already running");
    b.sim(&[
        "machine", "exec", "--name", "vm", "--", "sh", "-c", "exit 3",
    ])
    .status(3);
    exactly(
        &b.sim(&["machine", "exec", "--name", "vm", "--", "curl", "x"]),
        127,
        "",
        "sh: curl: not found\n",
    );
}

#[test]
fn stop_of_a_missing_machine_exits_0_on_0_8_0_and_1_from_0_8_1() {
    exactly(
        &Bottle::on("0.8.0").sim(&["machine", "stop", "--name", "gone"]),
        0,
        "Machine 'gone' not found or not running\n",
        "",
    );
    for v in ["0.8.1", NEW] {
        let run = Bottle::on(v).sim(&["machine", "stop", "--name", "gone"]);
        exactly(&run, 1, "", "Error: vm not found: gone\n");
    }
}

#[test]
fn delete_of_a_running_vm_leaves_its_process_on_0_8_0_only() {
    for (v, orphans) in [("0.8.0", 1), ("0.8.1", 0), ("1.0.1", 0)] {
        let b = Bottle::on(v);
        b.sim(&["machine", "create", "vm"]).status(0);
        b.sim(&["machine", "start", "--name", "vm"]).status(0);
        b.sim(&["machine", "delete", "-f", "vm"]).status(0);
        let world = b.world();
        assert!(world.machines.is_empty(), "{v}");
        assert_eq!(world.orphans.len(), orphans, "{v}: {world:?}");
    }
    let b = Bottle::on("0.8.0");
    b.sim(&["machine", "create", "vm"]).status(0);
    b.sim(&["machine", "start", "--name", "vm"]).status(0);
    b.sim(&["machine", "stop", "--name", "vm"]).status(0);
    b.sim(&["machine", "delete", "-f", "vm"]).status(0);
    assert!(b.world().orphans.is_empty(), "stop, then delete: no orphan");
}

#[test]
fn an_existing_name_is_worded_by_dialect() {
    let old = Bottle::on("1.0.1");
    old.sim(&["machine", "create", "a"]).status(0);
    exactly(
        &old.sim(&["machine", "create", "a"]),
        1,
        "",
        "Error: config operation failed: create machine: machine 'a' already exists\n",
    );
    let new = Bottle::on("1.0.2");
    new.sim(&["machine", "create", "--name", "a"]).status(0);
    new.sim(&["machine", "create", "--name", "a"])
        .status(1)
        .stderr_has("machine 'a' already exists or is being created\n");
}

#[test]
fn create_from_drops_the_allow_list_before_1_8_0() {
    for (v, egress) in [
        ("1.7.9", "open"),
        ("1.8.0-rc.1", "open"),
        ("1.8.0", "allow-list"),
    ] {
        let b = Bottle::on(v);
        let pack = b.sim_pack();
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
        let view = b.sim_status("a");
        assert_eq!(view["network"], true, "{v}");
        assert_eq!(view["sim_egress"], egress, "{v}");
        assert_eq!(b.world().machines["a"].egress, egress, "{v}");
    }
    let b = Bottle::on("0.8.0");
    let pack = b.sim_pack();
    b.sim(&[
        "machine",
        "create",
        "--from",
        &pack,
        "--allow-cidr",
        "10.0.0.0/8",
        "a",
    ])
    .status(0);
    assert_eq!(
        b.sim_status("a")["network"],
        false,
        "0.8.0: a CIDR alone does not switch --from networking on"
    );
}

#[test]
fn allow_hosts_resolve_only_through_smolvm_sim_hosts() {
    let b = Bottle::new();
    let hosts = [("SMOLVM_SIM_HOSTS", "proxy.internal=192.168.50.2")];
    b.sim_with(
        &hosts,
        &[
            "machine",
            "create",
            "--name",
            "a",
            "--allow-host",
            "proxy.internal",
            "--allow-host",
            "10.1.2.3",
        ],
    )
    .status(0);
    let view = b.sim_status("a");
    assert_eq!(
        view["sim_allow_hosts"],
        serde_json::json!(["proxy.internal", "10.1.2.3"])
    );
    assert_eq!(
        (view["network"].clone(), view["sim_egress"].clone()),
        (Value::Bool(true), Value::from("allow-list"))
    );
    let run = b.sim(&[
        "machine",
        "create",
        "--name",
        "b",
        "--allow-host",
        "proxy.internal",
    ]);
    run.status(1).stderr_has(
        "Error: config operation failed: --allow-host: failed to resolve 'proxy.internal': ",
    );
    b.sim(&[
        "machine",
        "create",
        "--name",
        "c",
        "--allow-host",
        "proxy:3128",
    ])
    .status(2)
    .stderr_has("error: invalid value 'proxy:3128' for '--allow-host <HOST>'");
    b.sim_with(&[("SMOLVM_SIM_HOSTS", "proxy")], &["--version"])
        .status(2)
        .stderr_has("SMOLVM_SIM_HOSTS: expected name=ip");
}

#[test]
fn secrets_come_from_the_simulator_s_environment_and_are_never_stored() {
    let b = Bottle::new();
    let file = b.write("token", "from-a-file");
    let file_ref = format!("F={}", file.display());
    b.sim(&[
        "machine",
        "create",
        "--name",
        "vm",
        "--secret-env",
        "C=CREATE_TOKEN",
    ])
    .status(0);
    b.sim(&["machine", "start", "--name", "vm"]).status(0);
    let env = [("CREATE_TOKEN", "t-create"), ("EXEC_TOKEN", "t-exec")];
    let run = b.sim_with(
        &env,
        &[
            "machine",
            "exec",
            "--name",
            "vm",
            "--secret-env",
            "E=EXEC_TOKEN",
            "--secret-file",
            &file_ref,
            "--",
            "sh",
            "-c",
            "echo $C $E $F",
        ],
    );
    exactly(&run, 0, "t-create t-exec from-a-file\n", "");
    let stored = std::fs::read_to_string(b.path("sim/state.json")).unwrap();
    assert!(!stored.contains("t-create") && !stored.contains("from-a-file"));
    let calls = std::fs::read_to_string(b.path("sim/calls.jsonl")).unwrap();
    assert!(!calls.contains("t-exec"));
    exactly(
        &b.sim(&["machine", "exec", "--name", "vm", "--", "true"]),
        1,
        "",
        "Error: --secret-env C=CREATE_TOKEN: host variable 'CREATE_TOKEN' is not set\n",
    );
}

#[test]
fn an_exec_timeout_that_fires_exits_124() {
    let b = Bottle::new();
    b.sim(&["machine", "create", "--name", "vm"]).status(0);
    b.sim(&["machine", "start", "--name", "vm"]).status(0);
    let hang = [("SMOLVM_SIM_HANG", "exec")];
    let t0 = std::time::Instant::now();
    let run = b.sim_with(
        &hang,
        &[
            "machine",
            "exec",
            "--name",
            "vm",
            "--timeout",
            "200ms",
            "--",
            "sh",
            "-c",
            "work",
        ],
    );
    exactly(&run, 124, "", "Error: command timed out after 200ms\n");
    assert!(t0.elapsed() >= std::time::Duration::from_millis(200));
}

#[test]
fn delete_without_force_asks_and_a_closed_stdin_cancels() {
    let b = Bottle::new();
    b.sim(&["machine", "create", "--name", "a"]).status(0);
    let run = b.sim(&["machine", "delete", "--name", "a"]);
    run.status(1);
    assert_eq!(run.stdout, "Delete machine 'a'? [y/N] ");
    assert!(b.world().machines.contains_key("a"));
}

#[test]
fn packs_are_two_files_and_sidecar_outputs_are_refused_from_1_7_0() {
    let b = Bottle::new();
    let pack = b.sim_pack();
    assert!(b.path("p").is_file() && std::path::Path::new(&pack).is_file());
    for (v, code) in [("1.6.9", 0), ("1.7.0", 1)] {
        let b = Bottle::on(v);
        let out = b.path("q.smolmachine").to_string_lossy().into_owned();
        let run = b.sim(&["pack", "create", "--image", "x:1", "-o", &out]);
        run.status(code);
        if code == 1 {
            run.stderr_has(
                "Error: --output names the executable stub, not the .smolmachine sidecar",
            );
        }
    }
    let stub = b.path("p").to_string_lossy().into_owned();
    b.sim(&["machine", "create", "--name", "a", "--from", &stub])
        .status(1)
        .stderr_has("sidecar file too small to contain footer");
}

#[test]
fn cp_copies_one_file_into_a_running_guest() {
    let b = Bottle::new();
    let host = b.write("f", "data\n");
    let host = host.to_str().unwrap();
    b.sim(&["machine", "create", "--name", "a"]).status(0);
    b.sim(&["machine", "cp", host, "a:/x/y/f"])
        .status(1)
        .stderr_has("is not running");
    b.sim(&["machine", "start", "--name", "a"]).status(0);
    b.sim(&["machine", "cp", host, "a:/x/y/f", "--mode", "600"])
        .status(0);
    assert_eq!(b.guest("a", "/x/y/f").as_deref(), Some("data\n"));
    assert_eq!(b.guest_mode("a", "/x/y/f"), 0o600);
    b.sim(&["machine", "cp", b.tmp.path().to_str().unwrap(), "a:/d"])
        .status(1)
        .stderr_has("not a regular file");
    let back = b.path("back");
    b.sim(&["machine", "cp", "a:/x/y/f", back.to_str().unwrap()])
        .status(0);
    assert_eq!(std::fs::read_to_string(back).unwrap(), "data\n");
}

#[test]
fn status_and_ls_print_the_contract_s_json() {
    for (v, labels) in [("1.7.9", false), ("1.8.0", true)] {
        let b = Bottle::on(v);
        b.sim(&["machine", "create", "--name", "a", "-e", "K=V"])
            .status(0);
        let s = b.sim_status("a");
        assert_eq!(
            (s["name"].as_str(), s["state"].as_str()),
            (Some("a"), Some("created"))
        );
        assert_eq!(
            (s["network"].as_bool(), s["pid"].is_null()),
            (Some(false), true)
        );
        assert_eq!(
            (s["mounts"].as_u64(), s["ports"].as_u64()),
            (Some(0), Some(0))
        );
        assert_eq!(s["sim_env"], serde_json::json!(["K=V"]));
        assert_eq!(s.get("labels").is_some(), labels, "{v}");
        b.sim(&["machine", "start", "--name", "a"]).status(0);
        let all: Vec<Value> =
            serde_json::from_str(&b.sim(&["machine", "ls", "--json"]).stdout).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0]["state"], "running");
        assert!(all[0]["pid"].is_i64());
    }
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
