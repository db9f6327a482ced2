//! What each command does and prints on each release, through
//! [`Engine::call`] in process. Messages are compared whole: they are the
//! contract's recorded texts.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::super::{Engine, Knobs, Reply, SimOutput, State, When, World};

struct Sim {
    tmp: tempfile::TempDir,
    engine: Engine,
}

impl Sim {
    fn on(version: &str) -> Self {
        Self::with(version, |_| {})
    }

    fn with(version: &str, tune: impl FnOnce(&mut Knobs)) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let version = semver::Version::parse(version).unwrap();
        let mut knobs = Knobs::new(tmp.path().join("sim"), version);
        tune(&mut knobs);
        Sim {
            tmp,
            engine: Engine::new(knobs),
        }
    }

    fn reply(&self, args: &[&str]) -> Reply {
        let argv: Vec<String> = std::iter::once("smolvm")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        self.engine.call(&argv)
    }

    #[track_caller]
    fn run(&self, line: &str) -> SimOutput {
        self.args(&line.split_whitespace().collect::<Vec<_>>())
    }

    #[track_caller]
    fn args(&self, args: &[&str]) -> SimOutput {
        match self.reply(args) {
            Reply::Done(out) => out,
            Reply::Hang => panic!("{args:?} hung"),
        }
    }

    fn world(&self) -> World {
        self.engine.home.read().unwrap()
    }

    fn path(&self, rel: &str) -> String {
        self.tmp.path().join(rel).to_string_lossy().into_owned()
    }

    /// A pack written by `pack create`; its sidecar path.
    fn pack(&self) -> String {
        let out = self.path("p");
        self.args(&["pack", "create", "--image", "img:1", "-o", &out]);
        format!("{out}.smolmachine")
    }

    fn status(&self, name: &str) -> Value {
        let out = self.run(&format!("machine status --name {name} --json"));
        serde_json::from_str(&out.stdout).unwrap()
    }
}

fn ok(stdout: &str) -> SimOutput {
    SimOutput::ok(stdout)
}

fn err(stderr: &str) -> SimOutput {
    SimOutput {
        code: 1,
        stdout: String::new(),
        stderr: stderr.into(),
    }
}

#[test]
fn create_and_delete_print_the_recorded_lines() {
    let s = Sim::on("1.9.3");
    assert_eq!(
        s.run("machine create --name vm"),
        ok("Created machine: vm\n")
    );
    let pack = s.pack();
    let out = s.args(&["machine", "create", "--name", "p", "--from", &pack]);
    assert_eq!(
        out,
        ok("Extracting .smolmachine assets...\nCreated machine: p\n")
    );
    assert_eq!(
        s.run("machine delete -f --name vm"),
        ok("Deleted machine: vm\n")
    );
    assert_eq!(
        s.run("machine delete -f --name vm"),
        err("Error: vm not found: vm\n")
    );
    let old = Sim::on("0.8.0");
    assert_eq!(old.run("machine create vm"), ok("Created machine: vm\n"));
    assert_eq!(old.run("machine delete -f vm"), ok("Deleted machine: vm\n"));
}

#[test]
fn an_existing_name_is_worded_by_dialect() {
    for (v, create, tail) in [
        ("0.8.0", "machine create vm", ""),
        ("1.0.1", "machine create vm", ""),
        ("1.0.2", "machine create --name vm", " or is being created"),
        ("1.9.3", "machine create --name vm", " or is being created"),
    ] {
        let s = Sim::on(v);
        s.run(create);
        let want = format!(
            "Error: config operation failed: create machine: machine 'vm' already exists{tail}\n"
        );
        assert_eq!(s.run(create), err(&want), "{v}");
    }
}

#[test]
fn stop_of_a_machine_never_started_says_its_state_and_exits_0() {
    let s = Sim::on("1.9.3");
    s.run("machine create --name vm");
    let want = ok("Machine 'vm' is not running (state: created)\n");
    assert_eq!(s.run("machine stop --name vm"), want);
    s.run("machine start --name vm");
    assert_eq!(
        s.run("machine stop --name vm"),
        ok("Stopped machine 'vm'\n")
    );
    let again = ok("Machine 'vm' is not running (state: stopped)\n");
    assert_eq!(s.run("machine stop --name vm"), again);
}

#[test]
fn stop_of_a_missing_machine_exits_0_only_on_0_8_0() {
    let quiet = ok("Machine 'gone' not found or not running\n");
    assert_eq!(Sim::on("0.8.0").run("machine stop --name gone"), quiet);
    let strict = err("Error: vm not found: gone\n");
    for v in ["0.8.1", "1.0.1", "1.9.3"] {
        assert_eq!(Sim::on(v).run("machine stop --name gone"), strict, "{v}");
    }
}

#[test]
fn delete_leaves_a_running_vm_process_only_on_0_8_0() {
    let s = Sim::on("0.8.0");
    s.run("machine create vm");
    s.run("machine start --name vm");
    let pid = s.world().machines["vm"].pid.unwrap();
    assert_eq!(s.run("machine delete -f vm"), ok("Deleted machine: vm\n"));
    let w = s.world();
    assert!(w.machines.is_empty());
    assert_eq!(
        (
            w.orphans.len(),
            w.orphans[0].name.as_str(),
            w.orphans[0].pid
        ),
        (1, "vm", pid)
    );
    for (v, create, delete) in [
        ("0.8.1", "machine create vm", "machine delete -f vm"),
        (
            "1.9.3",
            "machine create --name vm",
            "machine delete -f --name vm",
        ),
    ] {
        let s = Sim::on(v);
        s.run(create);
        s.run("machine start --name vm");
        assert_eq!(s.run(delete), ok("Deleted machine: vm\n"), "{v}");
        assert!(s.world().orphans.is_empty(), "{v} stops the VM first");
    }
}

#[test]
fn a_missing_machine_is_vm_not_found_except_for_status() {
    let s = Sim::on("1.9.3");
    let host = s.path("f");
    std::fs::write(&host, "x").unwrap();
    let gone = err("Error: vm not found: gone\n");
    assert_eq!(s.run("machine start --name gone"), gone);
    assert_eq!(s.run("machine exec --name gone -- true"), gone);
    assert_eq!(s.args(&["machine", "cp", &host, "gone:/f"]), gone);
    assert_eq!(s.run("machine delete -f --name gone"), gone);
    assert_eq!(s.run("pack create --from-vm gone -o /nowhere/p"), gone);
    assert_eq!(
        s.run("machine status --name gone --json"),
        err("Error: config operation failed: machine status: machine 'gone' not found\n")
    );
}

#[test]
fn exec_and_cp_on_a_machine_not_running_name_the_start_command() {
    let s = Sim::on("1.9.3");
    s.run("machine create --name vm");
    let want = err(
        "Error: agent operation failed: connect: machine 'vm' is not running. \
         Use 'smolvm machine start --name vm' first.\n",
    );
    assert_eq!(s.run("machine exec --name vm -- true"), want);
    let host = s.path("f");
    std::fs::write(&host, "x").unwrap();
    assert_eq!(s.args(&["machine", "cp", &host, "vm:/f"]), want);
}

#[test]
fn start_says_starting_on_stderr_also_before_a_failure() {
    let s = Sim::with("1.9.3", |k| {
        k.fail = [("start".to_string(), When::Nth(2))].into();
    });
    s.run("machine create --name vm");
    let first = s.run("machine start --name vm");
    assert_eq!(first.stderr, "Starting machine 'vm'...\n");
    assert_eq!(first.stdout, "Started machine 'vm'\n");
    let again = s.run("machine start --name vm");
    assert_eq!(
        again,
        err("Starting machine 'vm'...\nError: simulated failure of start (call 2)\n")
    );
    let third = s.run("machine start --name vm");
    assert_eq!(third.stdout, "Machine 'vm' is already running\n");
}

#[test]
fn create_from_refuses_what_is_not_a_pack() {
    let s = Sim::on("1.9.3");
    let missing = s.path("nope.smolmachine");
    assert_eq!(
        s.args(&["machine", "create", "--name", "a", "--from", &missing]),
        err(&format!(
            "Error: create from .smolmachine: file not found: {missing}\n"
        ))
    );
    let stub = s.path("stub");
    std::fs::write(&stub, "#!/bin/sh\n").unwrap();
    assert_eq!(
        s.args(&["machine", "create", "--name", "a", "--from", &stub]),
        err("Error: read .smolmachine: I/O error: sidecar file too small to contain footer\n")
    );
    assert!(s.world().machines.is_empty());
}

#[test]
fn pack_output_ending_in_smolmachine_is_refused_from_1_7_0() {
    for (v, code) in [("1.6.9", 0), ("1.7.0-rc.1", 0), ("1.7.0", 1), ("1.9.3", 1)] {
        let s = Sim::on(v);
        let out = s.path("p.smolmachine");
        let got = s.args(&["pack", "create", "--image", "img:1", "-o", &out]);
        assert_eq!(got.code, code, "{v}: {got:?}");
        if code == 1 {
            assert!(got.stderr.starts_with(
                "Error: --output names the executable stub, not the .smolmachine sidecar"
            ));
        }
    }
}

#[test]
fn create_from_drops_the_allow_list_before_1_8_0() {
    for (v, egress) in [
        ("1.7.9", "open"),
        ("1.8.0-rc.1", "open"),
        ("1.8.0", "allow-list"),
    ] {
        let s = Sim::on(v);
        let pack = s.pack();
        let args = [
            "machine",
            "create",
            "--name",
            "vm",
            "--from",
            &pack,
            "--net",
            "--allow-cidr",
            "10.0.0.0/8",
        ];
        assert_eq!(s.args(&args).code, 0, "{v}");
        let m = &s.world().machines["vm"];
        assert_eq!((m.network, m.egress.as_str()), (true, egress), "{v}");
        assert_eq!(m.allow_cidrs, ["10.0.0.0/8"], "{v}: what was asked is kept");
        assert_eq!(s.status("vm")["sim_egress"], egress, "{v}");
    }
}

#[test]
fn allow_hosts_resolve_through_the_hosts_knob_or_as_addresses() {
    let s = Sim::with("1.9.3", |k| {
        k.hosts = [(
            "proxy.internal".to_string(),
            "192.168.50.2".parse().unwrap(),
        )]
        .into();
    });
    let out = s.run("machine create --name a --allow-host proxy.internal --allow-host 10.9.8.7");
    assert_eq!(out, ok("Created machine: a\n"));
    let m = &s.world().machines["a"];
    assert_eq!(m.allow_hosts, ["proxy.internal", "10.9.8.7"]);
    assert_eq!((m.network, m.egress.as_str()), (true, "allow-list"));
    let view = s.status("a");
    assert_eq!(
        view["sim_allow_hosts"],
        serde_json::json!(["proxy.internal", "10.9.8.7"])
    );
    let refused = s.run("machine create --name b --allow-host elsewhere.example");
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.starts_with(
            "Error: config operation failed: --allow-host: failed to resolve 'elsewhere.example': "
        ),
        "{refused:?}"
    );
    assert!(!s.world().machines.contains_key("b"));
}

#[test]
fn secrets_reach_only_the_command_environment() {
    let s = Sim::on("1.9.3");
    let file = s.path("token");
    std::fs::write(&file, "s3cr3t-file").unwrap();
    let path_value = std::env::var("PATH").unwrap();
    let secret_file = format!("F={file}");
    s.args(&[
        "machine",
        "create",
        "--name",
        "vm",
        "--secret-env",
        "FROM_CREATE=PATH",
    ]);
    s.run("machine start --name vm");
    let exec = |var: &str| {
        s.args(&[
            "machine",
            "exec",
            "--name",
            "vm",
            "--secret-file",
            &secret_file,
            "--",
            "printenv",
            var,
        ])
    };
    assert_eq!(exec("F"), ok("s3cr3t-file\n"));
    assert_eq!(exec("FROM_CREATE"), ok(&format!("{path_value}\n")));
    let state = std::fs::read_to_string(s.engine.home.state()).unwrap();
    assert!(!state.contains("s3cr3t-file") && !state.contains(&path_value));
    let missing = s.run("machine exec --name vm --secret-env G=SMOLVM_SIM_SURELY_UNSET -- true");
    assert_eq!(
        missing,
        err(
            "Error: --secret-env G=SMOLVM_SIM_SURELY_UNSET: host variable 'SMOLVM_SIM_SURELY_UNSET' is not set\n"
        )
    );
}

#[test]
fn a_hung_command_with_a_timeout_exits_124_after_it() {
    let s = Sim::with("1.9.3", |k| {
        k.hang = [("exec".to_string(), When::Always)].into();
    });
    s.run("machine create --name vm");
    s.run("machine start --name vm");
    let t0 = Instant::now();
    let out = s.run("machine exec --name vm --timeout 50ms -- sh -c work");
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert_eq!(out.code, 124);
    assert_eq!(out.stderr, "Error: command timed out after 50ms\n");
    let forever = s.reply(&["machine", "exec", "--name", "vm", "--", "sh", "-c", "work"]);
    assert_eq!(forever, Reply::Hang);
}

#[test]
fn json_views_count_mounts_and_ports_and_gain_labels_at_1_8_0() {
    for (v, create, labels) in [
        ("0.8.0", "machine create vm", false),
        ("1.7.9", "machine create --name vm", false),
        ("1.8.0", "machine create --name vm", true),
    ] {
        let s = Sim::on(v);
        s.run(&format!("{create} -e K=V --allow-cidr 10.0.0.0/8"));
        let view = s.status("vm");
        assert_eq!(
            (view["mounts"].as_u64(), view["ports"].as_u64()),
            (Some(0), Some(0))
        );
        assert_eq!(view["state"], "created");
        assert_eq!(view["pid"], Value::Null);
        assert_eq!(view["sim_env"], serde_json::json!(["K=V"]));
        assert_eq!(view["sim_allow_cidrs"], serde_json::json!(["10.0.0.0/8"]));
        for key in [
            "name",
            "image",
            "network",
            "cpus",
            "memory_mib",
            "created_at",
            "storage_gb",
            "overlay_gb",
            "entrypoint",
            "cmd",
            "ephemeral",
            "gpu",
            "gpu_vram_mib",
            "restart_policy",
            "restart_max_retries",
            "restart_count",
            "sim_egress",
        ] {
            assert!(view.get(key).is_some(), "{v}: no {key}");
        }
        assert_eq!(view.get("labels").is_some(), labels, "{v}");
    }
}

#[test]
fn ls_lists_in_neither_name_nor_creation_order() {
    let s = Sim::on("1.9.3");
    let names = ["a", "b", "c", "d", "e", "f"];
    for n in names {
        s.run(&format!("machine create --name {n}"));
    }
    let all: Vec<Value> = serde_json::from_str(&s.run("machine ls --json").stdout).unwrap();
    let listed: Vec<&str> = all.iter().map(|m| m["name"].as_str().unwrap()).collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, names);
    assert_ne!(listed, names);
}

#[test]
fn frozen_exists_only_on_1_9() {
    for (v, create, frozen) in [
        ("1.9.0", "machine create --name vm", true),
        ("1.8.9", "machine create --name vm", false),
    ] {
        let s = Sim::on(v);
        s.run(create);
        s.engine
            .home
            .with_world(|w| w.machines.get_mut("vm").unwrap().state = State::Frozen)
            .unwrap();
        let out = s.run("machine status --name vm --json");
        match frozen {
            true => assert_eq!(s.status("vm")["state"], "frozen"),
            false => assert!(
                out.stderr
                    .contains("is frozen, a state smolvm 1.8.9 does not have")
            ),
        }
    }
}

#[test]
fn cp_sets_the_mode_of_an_upload_and_refuses_it_on_a_download() {
    let s = Sim::on("1.9.3");
    s.run("machine create --name vm");
    s.run("machine start --name vm");
    let host = s.path("f");
    std::fs::write(&host, "data\n").unwrap();
    let up = s.args(&["machine", "cp", &host, "vm:/etc/conf/f", "--mode", "600"]);
    assert_eq!(up, ok(""));
    let guest = s.engine.home.guest("vm").join("etc/conf/f");
    assert_eq!(
        std::fs::metadata(&guest).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let back = s.path("back");
    let down = s.args(&["machine", "cp", "vm:/etc/conf/f", &back, "--mode", "600"]);
    assert_eq!(
        down,
        err("Error: --mode, --uid and --gid apply to uploads only\n")
    );
    assert_eq!(s.args(&["machine", "cp", "vm:/etc/conf/f", &back]), ok(""));
    assert_eq!(std::fs::read_to_string(back).unwrap(), "data\n");
}

/// The guest's links are followed inside its root only: an upload into a
/// directory linked to `/` lands at the guest's root, an upload onto a
/// link replaces the link, and a download through one reads the guest's
/// file, never the host's.
#[test]
fn cp_follows_guest_links_inside_the_guest_root_only() {
    let s = Sim::on("1.9.3");
    s.run("machine create --name vm");
    s.run("machine start --name vm");
    let root = s.engine.home.guest("vm");
    let outside = s.path("outside");
    std::fs::write(&outside, "host\n").unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/hostname"), "guest\n").unwrap();
    std::os::unix::fs::symlink("/", root.join("top")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("onto")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("name")).unwrap();
    let host = s.path("f");
    std::fs::write(&host, "data\n").unwrap();
    assert_eq!(
        s.args(&["machine", "cp", &host, "vm:/top/cp-escape-check"]),
        ok("")
    );
    assert!(root.join("cp-escape-check").is_file());
    assert!(!std::path::Path::new("/cp-escape-check").exists());
    assert_eq!(s.args(&["machine", "cp", &host, "vm:/onto"]), ok(""));
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "host\n");
    assert_eq!(
        std::fs::read_to_string(root.join("onto")).unwrap(),
        "data\n"
    );
    let back = s.path("back");
    assert_eq!(s.args(&["machine", "cp", "vm:/name", &back]), ok(""));
    assert_eq!(std::fs::read_to_string(back).unwrap(), "guest\n");
}

#[test]
fn a_host_path_with_a_colon_is_read_as_a_machine() {
    let s = Sim::on("1.9.3");
    s.run("machine create --name vm");
    s.run("machine start --name vm");
    let odd = s.path("a:b");
    std::fs::write(&odd, "x").unwrap();
    let machine = odd.split_once(':').unwrap().0;
    let out = s.args(&["machine", "cp", &odd, "/tmp/elsewhere"]);
    assert_eq!(out, err(&format!("Error: vm not found: {machine}\n")));
}

#[test]
fn exec_detach_runs_the_command_and_prints_nothing() {
    let s = Sim::on("1.9.3");
    s.run("machine create --name vm");
    s.run("machine start --name vm");
    let out = s.args(&[
        "machine",
        "exec",
        "--name",
        "vm",
        "-d",
        "--",
        "sh",
        "-c",
        "echo hi > /f; exit 3",
    ]);
    assert_eq!(out, ok(""));
    assert_eq!(s.run("machine exec --name vm -- cat /f"), ok("hi\n"));
}

#[test]
fn a_usage_error_is_logged_but_changes_nothing() {
    let s = Sim::on("1.9.3");
    let out = s.run("machine create vm");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("error: unexpected argument 'vm' found\n"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("Usage: smolvm machine create"),
        "{out:?}"
    );
    let w = s.world();
    assert!(w.machines.is_empty() && w.counts.is_empty());
    assert_eq!(s.engine.home.calls_made().unwrap().len(), 1);
    let v = s.run("--version");
    assert_eq!(v, ok("smolvm 1.9.3 (smolvm-sim: simulated, no VM runs)\n"));
}
