//! A first apply: the exact call sequence, and what ends up in the guest.

use crate::support::{Bottle, VERSIONS};

/// The calls of a first apply of the agent spec in a dialect.
fn first_apply(b: &Bottle, version: &str) -> Vec<String> {
    let key = b.pack_key("img:1");
    let id = b.copy_id(&b.path("spec.toml"));
    let pack = format!("[TMP]/cache/packs/{key}");
    let flags = format!(
        "--from {pack}.smolmachine --net --allow-cidr 192.168.50.2/32 --allow-host 192.168.50.2 \
         -e HTTPS_PROXY=http://192.168.50.2:8888"
    );
    let create = match version {
        "0.8.0" => format!("smolvm machine create {flags} agent"),
        _ => format!("smolvm machine create --name agent {flags}"),
    };
    vec![
        "smolvm --version".into(),
        "smolvm machine ls --json".into(),
        format!("smolvm pack create --image img:1 -o {pack}.partial"),
        create,
        "smolvm machine start --name agent".into(),
        "smolvm machine exec --name agent -- true".into(),
        format!("smolvm machine cp [TMP]/cache/uploads/agent-{id}.tar agent:/tmp/bottle-copy-{id}.tar"),
        format!("smolvm machine exec --name agent -- sh -c 'tar -xf /tmp/bottle-copy-{id}.tar -C / && rm -f /tmp/bottle-copy-{id}.tar'"),
        "smolvm machine exec --name agent -w /workspace --stream -- sh -c 'cat README.md > /done; printenv HTTPS_PROXY >> /done'"
            .into(),
    ]
}

#[test]
fn a_first_apply_makes_exactly_the_contract_calls_in_both_dialects() {
    for v in VERSIONS {
        let b = Bottle::on(v);
        let spec = b.agent();
        let spec = spec.to_str().unwrap();
        b.run(&["apply", "--allow-unenforced-egress", spec])
            .status(0)
            .stderr_has("agent: ready");
        assert_eq!(b.calls(), first_apply(&b, v), "smolvm {v}");
    }
}

#[test]
fn the_guest_gets_the_files_env_and_exec_effects() {
    let b = Bottle::new();
    let spec = b.agent();
    b.run(&["apply", spec.to_str().unwrap()]).status(0);
    assert_eq!(
        b.guest("agent", "/workspace/README.md").as_deref(),
        Some("# hello\n")
    );
    assert_eq!(
        b.guest("agent", "/workspace/src/main.sh").as_deref(),
        Some("echo main\n")
    );
    assert_eq!(
        b.guest("agent", "/done").as_deref(),
        Some("# hello\nhttp://192.168.50.2:8888\n")
    );
    let world = b.world();
    let m = &world.machines["agent"];
    assert_eq!(m.state, "running");
    assert_eq!(m.egress, "allow-list");
    assert_eq!(m.allow_cidrs, ["192.168.50.2/32"]);
    let record = b.record("agent").expect("record");
    assert_eq!(record["phase"], "complete");
    assert_eq!(
        b.guest_mode("agent", "/workspace/src/main.sh"),
        0o755,
        "modes are kept"
    );
    let leftovers: Vec<_> = std::fs::read_dir(b.path("sim/guests/agent/tmp"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "the guest archive is removed");
    assert_eq!(
        std::fs::read_dir(b.path("cache/uploads")).unwrap().count(),
        0,
        "the host archive is removed"
    );
    let completed: Vec<&str> = record["completed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        completed,
        [
            "pack",
            "record",
            "create",
            "start",
            "wait-ready",
            "upload",
            "unpack",
            "exec[0]"
        ]
    );
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

/// The agent spec with a copy method bottle does not know: `copy_via = "rsync"`.
const AGENT_VIA_RSYNC: &str = r#"name = "agent"
copy_via = "rsync"

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
fn copy_via_cp_copies_one_file_per_call_to_the_same_result() {
    let b = Bottle::new();
    b.agent();
    let spec = b.write("spec.toml", AGENT_VIA_CP);
    b.run(&["apply", spec.to_str().unwrap()]).status(0);
    let cps: Vec<String> = b
        .calls()
        .into_iter()
        .filter(|c| c.contains("machine cp"))
        .map(|c| fd_path(&c))
        .collect();
    assert_eq!(
        cps,
        [
            "smolvm machine cp --mode 644 /proc/PID/fd/N agent:/workspace/README.md",
            "smolvm machine cp --mode 755 /proc/PID/fd/N agent:/workspace/src/main.sh"
        ],
        "each file through bottle's descriptor of it, with its mode"
    );
    let mode = |p: &str| {
        let meta = std::fs::metadata(b.path(&format!("sim/guests/agent{p}"))).unwrap();
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777
    };
    assert_eq!(mode("/workspace/src/main.sh"), 0o755);
    assert_eq!(mode("/workspace/README.md"), 0o644);
    assert!(!b.calls().iter().any(|c| c.contains("tar -xf")));
    assert_eq!(
        b.guest("agent", "/done").as_deref(),
        Some("# hello\nhttp://192.168.50.2:8888\n")
    );
    let bad = b.write("bad.toml", AGENT_VIA_RSYNC);
    b.run(&["apply", bad.to_str().unwrap()])
        .status(2)
        .stderr_has("`copy_via`: `rsync` is not one of \"archive\" or \"cp\"");
}

#[test]
fn plan_prints_the_exact_argv_and_changes_nothing() {
    let b = Bottle::new();
    let spec = b.agent();
    let run = b.run(&["plan", spec.to_str().unwrap()]);
    run.status(0)
        .stdout_has("agent: creating")
        .stdout_has("egress: only to 192.168.50.2/32");
    let shown = b.normalize(&run.stdout);
    let planned: Vec<&str> = shown
        .lines()
        .filter_map(|l| l.trim().strip_prefix("$ "))
        .collect();
    assert_eq!(b.calls(), ["smolvm --version", "smolvm machine ls --json"]);
    assert!(b.world().machines.is_empty());
    b.clear_calls();
    b.run(&["apply", spec.to_str().unwrap()]).status(0);
    let applied = b.calls()[2..].to_vec();
    assert_eq!(
        planned[..applied.len()],
        applied[..],
        "plan shows what apply runs"
    );
    assert_eq!(
        planned[applied.len()..],
        [
            "smolvm machine stop --name agent",
            "smolvm machine delete -f --name agent"
        ]
    );
}

#[test]
fn a_spec_with_an_existing_pack_skips_the_pack_step() {
    let b = Bottle::new();
    std::fs::create_dir_all(b.path("build")).unwrap();
    b.sim(&[
        "pack",
        "create",
        "--image",
        "img:9",
        "-o",
        b.path("build/agent").to_str().unwrap(),
    ])
    .status(0);
    let spec = b.write(
        "spec.toml",
        "name = \"p\"\n[image]\npack = \"build/agent.smolmachine\"\n",
    );
    b.clear_calls();
    b.run(&["apply", spec.to_str().unwrap()]).status(0);
    assert_eq!(
        b.calls(),
        [
            "smolvm --version",
            "smolvm machine ls --json",
            "smolvm machine create --name p --from [TMP]/build/agent.smolmachine",
            "smolvm machine start --name p",
            "smolvm machine exec --name p -- true",
        ]
    );
    assert!(
        !b.world().machines["p"].network,
        "no allow-list means no network"
    );
}

#[test]
fn the_bundled_specs_apply_on_the_simulator() {
    let root = env!("CARGO_MANIFEST_DIR");
    let b = Bottle::new();
    let hello = format!("{root}/specs/hello.toml");
    let agent = format!("{root}/specs/agent.toml");
    b.run(&["apply", &hello, &agent])
        .status(0)
        .stderr_has("hello: ready")
        .stderr_has("agent-xyz: ready");
    assert_eq!(
        b.guest("hello", "/hello.txt").as_deref(),
        Some("hello from bottle\n")
    );
    assert_eq!(
        b.guest("agent-xyz", "/workspace/.provisioned").as_deref(),
        Some("agent-xyz provisioned\n")
    );
}

#[test]
fn the_simulator_is_announced_and_never_chosen_silently() {
    let b = Bottle::new();
    let spec = b.agent();
    b.run(&["plan", spec.to_str().unwrap()])
        .status(0)
        .stderr_has("smolvm-sim, bottle's simulator");
    let missing = b.run_with(
        &[("BOTTLE_SMOLVM", "/nonexistent/smolvm")],
        &["apply", spec.to_str().unwrap()],
    );
    missing
        .status(3)
        .stderr_has("smolvm not found")
        .stderr_has("--sim");
    let no_path = b.run_with(
        &[("BOTTLE_SMOLVM", "smolvm"), ("PATH", "/nonexistent")],
        &["apply", spec.to_str().unwrap()],
    );
    no_path.status(3);
    assert!(b.world().machines.is_empty());
}

#[test]
fn unsupported_smolvm_versions_are_refused() {
    for v in ["0.7.9", "1.10.0", "2.0.0"] {
        let b = Bottle::on(v);
        let spec = b.agent();
        b.run(&["apply", spec.to_str().unwrap()])
            .status(3)
            .stderr_has(&format!("smolvm {v} is not supported"))
            .stderr_has("0.8.0 to 1.9.x");
        assert_eq!(b.calls(), ["smolvm --version"]);
    }
}

/// `c` with each `/proc/PID/fd/N` written as that.
pub fn fd_path(c: &str) -> String {
    let words: Vec<String> = c
        .split(' ')
        .map(|w| {
            let parts: Vec<&str> = w.split('/').collect();
            match parts.as_slice() {
                ["", "proc", pid, "fd", n]
                    if pid.parse::<u32>().is_ok() && n.parse::<u32>().is_ok() =>
                {
                    "/proc/PID/fd/N".to_string()
                }
                _ => w.to_string(),
            }
        })
        .collect();
    words.join(" ")
}
