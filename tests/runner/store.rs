//! Where records and packs live, and what bottle does when its state
//! directory cannot be read, listed or changed: the behaviour users get
//! from the defaults, and the refusals the README promises.

use std::path::Path;
use std::process::Command;

use crate::support::{Bottle, Run};

fn run(mut c: Command) -> Run {
    let out = c.output().expect("run bottle");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// bottle with no `BOTTLE_STATE_DIR`/`BOTTLE_CACHE_DIR`: its defaults,
/// `$XDG_STATE_HOME/bottle` and `$XDG_CACHE_HOME/bottle`, here under the
/// world's `xdg/`, run from working directory `cwd`.
fn with_defaults(b: &Bottle, cwd: &Path, args: &[&str]) -> Run {
    let mut c = b.bottle_command(args);
    c.env_remove("BOTTLE_STATE_DIR")
        .env_remove("BOTTLE_CACHE_DIR")
        .env("XDG_STATE_HOME", b.path("xdg/state"))
        .env("XDG_CACHE_HOME", b.path("xdg/cache"))
        .current_dir(cwd);
    run(c)
}

#[test]
fn records_and_packs_land_in_the_xdg_directories_whatever_the_working_directory() {
    let b = Bottle::new();
    let spec = b.agent();
    let spec = spec.to_str().unwrap();
    std::fs::create_dir_all(b.path("here")).unwrap();
    std::fs::create_dir_all(b.path("there")).unwrap();
    with_defaults(&b, &b.path("here"), &["apply", spec]).status(0);
    assert!(b.path("xdg/state/bottle/machines/agent.json").is_file());
    let packs = std::fs::read_dir(b.path("xdg/cache/bottle/packs")).unwrap();
    assert!(
        packs
            .flatten()
            .any(|e| { e.file_name().to_string_lossy().ends_with(".smolmachine") })
    );
    assert!(std::fs::read_dir(b.path("here")).unwrap().next().is_none());
    with_defaults(&b, &b.path("there"), &["apply", spec])
        .status(0)
        .stderr_has("agent: unchanged");
}

#[test]
fn gc_on_a_fresh_install_has_nothing_to_collect() {
    let b = Bottle::new();
    for args in [
        vec!["gc"],
        vec!["gc", "--packs"],
        vec!["gc", "--dry-run", "--packs"],
    ] {
        b.run(&args).status(0).stderr_has("nothing to collect");
    }
    assert!(!b.path("state").exists(), "gc creates nothing");
}

/// A directory where a record should be: the record cannot be read, so
/// bottle refuses (exit 3) before any call about the machine.
#[test]
fn an_unreadable_record_is_refused_before_anything_is_touched() {
    let b = Bottle::new();
    let spec = b.agent();
    std::fs::create_dir_all(b.path("state/machines/agent.json")).unwrap();
    for args in [vec!["apply", spec.to_str().unwrap()], vec!["down", "agent"]] {
        b.clear_calls();
        b.run(&args)
            .status(3)
            .stderr_has("cannot read record")
            .stderr_has("agent.json");
        assert_eq!(b.calls(), ["smolvm --version"], "{args:?}");
    }
    assert!(b.world().machines.is_empty());
}

/// A file where the records directory should be: bottle cannot tell which
/// machines it owns, so `gc` refuses (exit 3) rather than collect nothing.
#[test]
fn an_unlistable_records_directory_fails_gc() {
    let b = Bottle::new();
    b.write("state/machines", "not a directory\n");
    for args in [vec!["gc"], vec!["gc", "--packs"]] {
        b.run(&args)
            .status(3)
            .stderr_has("cannot use state directory");
    }
}

/// Undoes `chattr +i` when the test ends, so the world can be removed.
struct Immutable<'a>(&'a Path);

impl<'a> Immutable<'a> {
    fn set(path: &'a Path) -> Self {
        let ok = Command::new("chattr").arg("+i").arg(path).status();
        assert!(ok.is_ok_and(|s| s.success()), "chattr +i {path:?}");
        Immutable(path)
    }
}

impl Drop for Immutable<'_> {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(self.0).status();
    }
}

/// A record that cannot be removed (its directory is immutable, which
/// even root cannot override) is reported, with a non-zero exit: `down`
/// never claims to have forgotten a machine whose record remains.
#[test]
fn a_record_that_cannot_be_removed_is_reported() {
    let b = Bottle::new();
    let spec = b.agent();
    b.run(&["apply", spec.to_str().unwrap()]).status(0);
    let machines = b.path("state/machines");
    let _guard = Immutable::set(&machines);
    let down = b.run(&["down", "agent"]);
    down.status(3).stderr_has("cannot write record");
    assert!(!down.stderr.contains("agent: removed"), "{}", down.stderr);
    assert!(b.record("agent").is_some());
}
