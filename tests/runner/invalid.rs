//! Invalid specs: exit 2, every located problem on stderr, and smolvm
//! never started.
//!
//! One insta snapshot per fixture under `fixtures/invalid/`, of bottle's
//! whole stderr and its exit code, in `snapshots/invalid/`. Review a change
//! with `INSTA_UPDATE=always cargo test --test runner invalid` and `git
//! diff`; with `CI` set insta writes nothing and a mismatch fails.

use std::cell::Cell;
use std::path::Path;

use crate::support::Bottle;

/// Each fixture exits 2 with its problems (the snapshot), prints the same
/// for `plan`, and starts no smolvm process (not even `--version`).
#[test]
fn every_invalid_fixture_is_refused_with_its_location_and_nothing_runs() {
    let count = Cell::new(0);
    insta::with_settings!({
        snapshot_path => "snapshots/invalid",
        prepend_module_to_snapshot => false,
        omit_expression => true,
        filters => vec![(r"/\S*?/fixtures/invalid/", "[FIXTURES]/")],
    }, {
        insta::glob!("../../fixtures/invalid", "*.toml", |path| {
            count.set(count.get() + 1);
            let apply = refused(path, "apply");
            insta::assert_snapshot!("stderr", apply);
            assert_eq!(refused(path, "plan"), apply, "plan and apply differ");
        });
    });
    assert!(count.get() >= 50, "{} fixtures", count.get());
}

/// Run `command` on the spec at `path`: its exit code and stderr, after
/// checking that no smolvm process was started.
fn refused(path: &Path, command: &str) -> String {
    let b = Bottle::new();
    let run = b.run(&[command, path.to_str().expect("utf-8 path")]);
    assert!(b.calls().is_empty(), "smolvm was started: {:?}", b.calls());
    assert_eq!(run.code, 2, "{command}: {}", run.stderr);
    assert!(run.stdout.is_empty(), "{command}: {}", run.stdout);
    format!("exit code: {}\n{}", run.code, run.stderr)
}

#[test]
fn hostile_copy_sources_are_refused_before_anything_runs() {
    let b = Bottle::new();
    std::os::unix::fs::symlink("loop", b.path("loop")).unwrap();
    std::fs::create_dir_all(b.path("sock")).unwrap();
    let _l = std::os::unix::net::UnixListener::bind(b.path("sock/s")).unwrap();
    for (dir, message) in [
        ("loop", "loop is a symlink loop"),
        ("sock", "sock/s is a socket"),
    ] {
        let text = format!(
            "name = \"vm\"\n[image]\nref = \"a\"\n[[copy]]\nsrc = \"{dir}\"\ndest = \"/w\"\n"
        );
        let spec = b.write(&format!("{dir}.toml"), &text);
        b.run(&["apply", spec.to_str().unwrap()])
            .status(2)
            .stderr_has(":5:7: `copy[0].src`:")
            .stderr_has(message);
    }
    assert!(b.calls().is_empty());
}

#[test]
fn no_user_value_is_read_as_a_smolvm_flag() {
    let b = Bottle::new();
    b.write("ws/-rf", "dash file\n");
    b.write("ws/--name", "double dash file\n");
    let text = r#"name = "flags"
[image]
ref = "img:--net"
[env]
OPT = "--allow-cidr=0.0.0.0/0"
[[copy]]
src = "ws"
dest = "/-w"
[[exec]]
run = ["sh", "-c", "echo $OPT > /opt", "--name", "-e"]
workdir = "/-w"
"#;
    let spec = b.write("flags.toml", text);
    b.run(&["apply", spec.to_str().unwrap()]).status(0);
    assert_eq!(b.guest("flags", "/-w/-rf").as_deref(), Some("dash file\n"));
    assert_eq!(
        b.guest("flags", "/-w/--name").as_deref(),
        Some("double dash file\n")
    );
    assert_eq!(
        b.guest("flags", "/opt").as_deref(),
        Some("--allow-cidr=0.0.0.0/0\n")
    );
    let m = &b.world().machines["flags"];
    assert!(!m.network, "no value turned networking on");
    assert!(m.allow_cidrs.is_empty());
}

#[test]
fn one_invalid_spec_among_several_stops_them_all() {
    let b = Bottle::new();
    let good = b.agent();
    let bad = b.write("bad.toml", "name = \"-x\"\n[image]\nref = \"a\"\n");
    b.run(&["apply", good.to_str().unwrap(), bad.to_str().unwrap()])
        .status(2);
    assert!(b.calls().is_empty());
    assert!(b.world().machines.is_empty());
}

#[test]
fn duplicate_machine_names_across_specs_are_refused() {
    let b = Bottle::new();
    let one = b.write("one.toml", "name = \"same\"\n[image]\nref = \"a\"\n");
    let two = b.write("two.toml", "name = \"same\"\n[image]\nref = \"b\"\n");
    for jobs in ["1", "2"] {
        b.run(&[
            "apply",
            "-j",
            jobs,
            one.to_str().unwrap(),
            two.to_str().unwrap(),
        ])
        .status(2)
        .stderr_has("machine name `same` is used by both");
        assert!(b.calls().is_empty(), "-j {jobs}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let b = Bottle::new();
    b.run(&["apply"]).status(2);
    b.run(&["frobnicate"]).status(2);
    b.run(&["--help"]).status(0).stdout_has("apply");
}
