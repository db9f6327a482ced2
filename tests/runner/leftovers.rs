//! What a killed bottle leaves on the host, a copy archive in the cache or
//! a secret temp file of an older bottle in `$TMPDIR`, is removed by the
//! next `apply` (of any spec) and by `gc`; a file a live bottle (or any
//! live process) holds open never is.

use std::path::PathBuf;

use rustix::process::Signal;

use crate::support::{Bottle, finish, signal};

/// A spec without copies or secrets, for a second machine.
const OTHER_SPEC: &str = "name = \"other\"\n[image]\nref = \"a:1\"\n";

impl Bottle {
    /// The agent spec's copy archive in the cache.
    fn archive(&self, spec: &std::path::Path) -> PathBuf {
        let id = self.copy_id(spec);
        self.path(&format!("cache/uploads/agent-{id}.tar"))
    }

    /// bottle's `$TMPDIR` in these tests, made.
    fn tmpdir(&self) -> String {
        std::fs::create_dir_all(self.path("tmp")).unwrap();
        self.path("tmp").to_string_lossy().into_owned()
    }
}

#[test]
fn a_killed_bottle_s_archive_is_swept_and_a_live_one_s_is_not() {
    let b = Bottle::new();
    let spec = b.agent();
    let other = b.write("other.toml", OTHER_SPEC);
    let archive = b.archive(&spec);
    let tmp = b.tmpdir();
    let env = [("TMPDIR", tmp.as_str())];
    let hung = [("TMPDIR", tmp.as_str()), ("SMOLVM_SIM_HANG", "cp")];
    let live = b.spawn(&hung, &["apply", spec.to_str().unwrap()]);
    b.wait_for_call("machine cp");
    assert!(archive.is_file(), "the live bottle's archive is written");
    // gc leaves the live bottle's machine alone (it is locked) and its
    // archive too.
    let gc = b.run_with(&env, &["gc"]);
    gc.status(3)
        .stderr_has("is being changed by another bottle");
    assert!(!gc.stdout.contains("leftover"), "{}", gc.stdout);
    b.run_with(&env, &["apply", other.to_str().unwrap()])
        .status(0);
    assert!(archive.is_file(), "a live bottle's archive was removed");

    signal(&live, Signal::KILL);
    finish(live);
    b.kill_leftovers();
    assert!(archive.is_file(), "a killed bottle leaves its archive");
    let shown = archive.display();
    b.run_with(&env, &["gc", "--dry-run"])
        .status(0)
        .stdout_has(&format!("leftover {shown}: would remove\n"));
    assert!(archive.is_file(), "--dry-run removes nothing");
    b.run_with(&env, &["gc"])
        .status(0)
        .stdout_has(&format!("leftover {shown}: removed\n"));
    assert!(!archive.exists());
}

#[test]
fn any_apply_sweeps_what_killed_bottles_left_and_keeps_what_is_held_open() {
    let b = Bottle::new();
    let spec = b.agent();
    let other = b.write("other.toml", OTHER_SPEC);
    let archive = b.archive(&spec);
    let tmp = b.tmpdir();
    let killed = b.spawn(
        &[("TMPDIR", tmp.as_str()), ("SMOLVM_SIM_HANG", "cp")],
        &["apply", spec.to_str().unwrap()],
    );
    b.wait_for_call("machine cp");
    signal(&killed, Signal::KILL);
    finish(killed);
    b.kill_leftovers();
    // Secret temp files of an older bottle: one killed, one still running
    // (this test holds it open as that bottle would).
    let stale = b.write("tmp/bottle-secret-k1ll3d", "CANARY-of-a-killed-bottle");
    let held = b.write("tmp/bottle-secret-l1v3ly", "CANARY-of-a-live-bottle");
    let unrelated = b.write("tmp/some-other-file", "not bottle's");
    let _open = std::fs::File::open(&held).unwrap();

    let run = b.run_with(
        &[("TMPDIR", tmp.as_str())],
        &["apply", other.to_str().unwrap()],
    );
    run.status(0);
    for gone in [&archive, &stale] {
        run.stderr_has(&format!(
            "other: removed {}, left by a bottle that was killed\n",
            gone.display()
        ));
        assert!(!gone.exists(), "{}", gone.display());
    }
    assert!(held.exists() && unrelated.exists());
    assert!(!run.stderr.contains("l1v3ly"), "{}", run.stderr);
}
