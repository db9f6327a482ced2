//! Cost grows with what changed: one look at every machine per run, and
//! copies that send only the changed files and remove the deleted ones.
//! Counted in smolvm calls and bytes the simulator received, never in time.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::apply::fd_path;
use crate::support::{Bottle, VERSIONS};

/// A spec named `name` copying `ws` to `/workspace`.
fn spec(b: &Bottle, name: &str) -> String {
    let text = format!(
        "name = \"{name}\"\n[image]\nref = \"img:1\"\n[[copy]]\nsrc = \"ws\"\ndest = \"/workspace\"\n"
    );
    let path = b.write(&format!("{name}.toml"), &text);
    path.to_string_lossy().into_owned()
}

/// A workspace of `n` files in a few directories, last modified an hour
/// ago (as a real one is).
fn workspace(b: &Bottle, n: usize) {
    for i in 0..n {
        let path = b.write(
            &format!("ws/d{}/f{i}.txt", i % 4),
            &format!("file {i}\n").repeat(50),
        );
        age(&path);
    }
}

fn age(path: &Path) {
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(hour_ago))
        .expect("set mtime");
}

fn received(b: &Bottle, name: &str) -> u64 {
    b.world().machines[name].received_bytes
}

#[test]
fn a_converged_fleet_and_its_plan_take_one_look_whatever_its_size() {
    let b = Bottle::new();
    workspace(&b, 3);
    let specs: Vec<String> = (0..6).map(|i| spec(&b, &format!("m{i}"))).collect();
    let mut apply = vec!["apply", "-j", "3"];
    apply.extend(specs.iter().map(String::as_str));
    b.run(&apply).status(0);
    let record = b.path("state/machines/m0.json");
    let written = || {
        let meta = std::fs::metadata(&record).unwrap();
        (
            meta.modified().unwrap(),
            std::os::unix::fs::MetadataExt::ino(&meta),
        )
    };
    let before = written();
    for args in [apply.clone(), {
        let mut plan = vec!["plan"];
        plan.extend(specs.iter().map(String::as_str));
        plan
    }] {
        b.clear_calls();
        b.run(&args).status(0);
        assert_eq!(
            b.calls(),
            ["smolvm --version", "smolvm machine ls --json"],
            "{}",
            args[0]
        );
    }
    assert_eq!(written(), before, "a converged re-apply writes no record");
}

#[test]
fn when_ls_cannot_answer_each_machine_is_asked_on_its_own() {
    let b = Bottle::new();
    workspace(&b, 1);
    let (a, c) = (spec(&b, "a"), spec(&b, "c"));
    b.run(&["apply", &a, &c]).status(0);
    b.clear_calls();
    b.run_with(&[("SMOLVM_SIM_FAIL", "ls")], &["apply", &c, &a])
        .status(0)
        .stderr_has("a: unchanged")
        .stderr_has("c: unchanged");
    assert_eq!(
        b.calls(),
        [
            "smolvm --version",
            "smolvm machine ls --json",
            "smolvm machine status --name c --json",
            "smolvm machine status --name a --json",
        ]
    );
}

#[test]
fn an_edited_file_is_all_that_is_sent() {
    for v in VERSIONS {
        let b = Bottle::on(v);
        workspace(&b, 40);
        let m = spec(&b, "m");
        b.run(&["apply", &m]).status(0);
        let full = received(&b, "m");
        let edited = b.path("ws/d1/f5.txt");
        std::fs::write(&edited, "edited\n").unwrap();
        b.clear_calls();
        b.run(&["apply", &m])
            .status(0)
            .stderr_has("m: update in place: copy /workspace (1 file changed)");
        let sent = received(&b, "m") - full;
        let calls: Vec<String> = b.calls().iter().map(|c| fd_path(c)).collect();
        match v {
            "1.9.3" => {
                assert_eq!(sent, 7, "the file's bytes alone");
                assert_eq!(
                    calls[2..],
                    ["smolvm machine cp --mode 644 /proc/PID/fd/N m:/workspace/d1/f5.txt"]
                );
            }
            _ => {
                assert!(sent < full / 10, "{sent} of {full} bytes");
                assert_eq!(calls.len(), 4, "{calls:#?}");
                assert!(calls[3].contains("tar -xf"), "{calls:#?}");
            }
        }
        assert_eq!(
            b.guest("m", "/workspace/d1/f5.txt").as_deref(),
            Some("edited\n")
        );
        b.clear_calls();
        b.run(&["apply", &m]).status(0).stderr_has("m: unchanged");
        assert_eq!(b.calls().len(), 2);
    }
}

#[test]
fn a_deleted_file_is_removed_from_the_guest_and_no_prune_keeps_it() {
    let b = Bottle::new();
    workspace(&b, 4);
    let m = spec(&b, "m");
    b.run(&["apply", &m]).status(0);
    let agent = "echo mine > /workspace/d0/agent.txt";
    b.sim(&["machine", "exec", "--name", "m", "--", "sh", "-c", agent])
        .status(0);
    std::fs::remove_file(b.path("ws/d1/f1.txt")).unwrap();
    let plan = b.run(&["plan", &m]);
    plan.status(0)
        .stdout_has("m: update in place: copy /workspace (1 file removed)")
        .stdout_has("1. remove 1 path the copies no longer make");
    assert!(
        b.normalize(&plan.stdout)
            .contains("$ smolvm machine exec --name m -- rm -f -- /workspace/d1/f1.txt"),
        "{}",
        plan.stdout
    );
    b.clear_calls();
    b.run(&["apply", &m]).status(0);
    assert_eq!(
        b.calls()[2..],
        [
            "smolvm machine exec --name m -- rm -f -- /workspace/d1/f1.txt",
            "smolvm machine exec --name m -- sh -c 'rmdir -- \"$@\" || true' bottle-prune \
             /workspace/d1"
        ]
    );
    assert_eq!(b.guest("m", "/workspace/d1/f1.txt"), None);
    assert!(
        !b.path("sim/guests/m/workspace/d1").exists(),
        "the directory bottle made for it went with it"
    );
    // d0's one copied file goes; d0 stays, holding the agent's file.
    std::fs::remove_file(b.path("ws/d0/f0.txt")).unwrap();
    b.run(&["apply", &m]).status(0);
    assert_eq!(b.guest("m", "/workspace/d0/f0.txt"), None);
    assert_eq!(
        b.guest("m", "/workspace/d0/agent.txt").as_deref(),
        Some("mine\n"),
        "what bottle did not copy is never removed"
    );
    std::fs::remove_file(b.path("ws/d2/f2.txt")).unwrap();
    b.clear_calls();
    b.run(&["apply", "--no-prune", &m]).status(0).stderr_has(
        "m: update in place: copy /workspace (1 file no longer copied, kept in the guest \
         (--no-prune))",
    );
    assert_eq!(b.calls().len(), 2, "nothing sent or removed");
    assert!(b.guest("m", "/workspace/d2/f2.txt").is_some());
    b.run(&["apply", &m]).status(0).stderr_has("m: unchanged");
    assert!(
        b.guest("m", "/workspace/d2/f2.txt").is_some(),
        "a kept file is the guest's from then on"
    );
}

/// A directory that held removed files goes only if it is empty: one the
/// agent wrote in stays, and then a file cannot take its place (the apply
/// fails, destroying nothing).
#[test]
fn a_directory_the_agent_wrote_in_is_never_removed() {
    let b = Bottle::new();
    workspace(&b, 1);
    b.write("ws/x/inner", "bottle's\n");
    let m = spec(&b, "m");
    b.run(&["apply", &m]).status(0);
    let agent = "echo mine > /workspace/x/agent.txt";
    b.sim(&["machine", "exec", "--name", "m", "--", "sh", "-c", agent])
        .status(0);
    std::fs::remove_dir_all(b.path("ws/x")).unwrap();
    b.run(&["apply", &m]).status(0);
    assert_eq!(b.guest("m", "/workspace/x/inner"), None);
    assert_eq!(
        b.guest("m", "/workspace/x/agent.txt").as_deref(),
        Some("mine\n")
    );
    b.write("ws/x", "a file\n");
    b.run(&["apply", &m]).status(1);
    assert_eq!(
        b.guest("m", "/workspace/x/agent.txt").as_deref(),
        Some("mine\n")
    );
    assert!(b.record("m").is_some(), "the machine is kept");
}

#[test]
fn a_file_that_becomes_a_directory_and_back_takes_its_place() {
    let b = Bottle::new();
    workspace(&b, 1);
    b.write("ws/x", "a file\n");
    let m = spec(&b, "m");
    b.run(&["apply", &m]).status(0);
    std::fs::remove_file(b.path("ws/x")).unwrap();
    b.write("ws/x/inner", "now a directory\n");
    b.run(&["apply", "--no-prune", &m]).status(0);
    assert_eq!(
        b.guest("m", "/workspace/x/inner").as_deref(),
        Some("now a directory\n")
    );
    std::fs::remove_dir_all(b.path("ws/x")).unwrap();
    b.write("ws/x", "a file again\n");
    b.clear_calls();
    b.run(&["apply", &m]).status(0);
    assert_eq!(
        b.guest("m", "/workspace/x").as_deref(),
        Some("a file again\n")
    );
    let calls = b.calls();
    assert_eq!(
        calls[2],
        "smolvm machine exec --name m -- rm -f -- /workspace/x/inner"
    );
    assert_eq!(
        calls[3],
        "smolvm machine exec --name m -- sh -c 'rmdir -- \"$@\" || true' bottle-prune /workspace/x"
    );
    b.run(&["apply", &m]).status(0).stderr_has("m: unchanged");
}

/// A file whose size, times, inode and device did not change is not read
/// again: a hash planted in the cache for it is believed (and shows as a
/// change), until the file is touched.
#[test]
fn an_unchanged_file_is_not_read_again() {
    let b = Bottle::new();
    workspace(&b, 2);
    let m = spec(&b, "m");
    b.run(&["apply", &m]).status(0);
    let cache_dir = b.path("cache/hashes");
    let caches: Vec<_> = std::fs::read_dir(&cache_dir).unwrap().flatten().collect();
    assert_eq!(caches.len(), 1, "one cache per spec file");
    let cache = caches[0].path();
    let text = std::fs::read_to_string(&cache).unwrap();
    let real = blake3::hash("file 0\n".repeat(50).as_bytes())
        .to_hex()
        .to_string();
    assert!(text.contains(&real), "{text}");
    let planted = blake3::hash(b"planted").to_hex().to_string();
    // As if the cache was written a few seconds after the files last
    // changed (they were made just now): then it is believed.
    let mut v: serde_json::Value = serde_json::from_str(&text.replace(&real, &planted)).unwrap();
    for k in v["files"].as_object_mut().unwrap().values_mut() {
        let later = k["read_at"].as_i64().unwrap() + 3;
        k["read_at"] = later.into();
    }
    std::fs::write(&cache, v.to_string()).unwrap();
    b.run(&["plan", &m])
        .status(0)
        .stdout_has("m: update in place: copy /workspace (1 file changed)");
    // Setting its mtime (to the same hour-old value) moves its change time.
    age(&b.path("ws/d0/f0.txt"));
    b.run(&["plan", &m]).status(0).stdout_has("m: unchanged");
}

/// A smolvm that, when asked `machine ls` (after bottle read the spec),
/// swaps the copied directory `ws/keys` for a link to a host directory
/// holding a secret of the same name; every call then goes to the
/// simulator.
fn smolvm_swapping_keys(b: &Bottle) -> String {
    let ws = b.path("ws");
    let secret = b.path("secret");
    let script = b.write(
        "smolvm-swap",
        &format!(
            "#!/bin/sh\nif [ \"$1 $2\" = \"machine ls\" ] && [ ! -L {ws}/keys ]; then\n  \
             rm -rf {ws}/keys && ln -s {secret} {ws}/keys\nfi\nexec {} \"$@\"\n",
            crate::support::SIM,
            ws = ws.display(),
            secret = secret.display(),
        ),
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script.to_string_lossy().into_owned()
}

/// No route reads a file through a directory above it that was swapped
/// for a link after the spec was read: the archive (a new machine) and a
/// single `cp` (an update) both refuse, and the secret never reaches the
/// guest.
#[test]
fn a_directory_swapped_for_a_link_never_leads_a_copy_out_of_its_tree() {
    for update in [false, true] {
        let b = Bottle::new();
        b.write("secret/id", "TOP-SECRET\n");
        b.write("ws/a", "a\n");
        b.write("ws/keys/id", "placeholder\n");
        let m = spec(&b, "m");
        if update {
            b.run(&["apply", &m]).status(0);
            b.write("ws/keys/id", "placeholder, edited\n");
        }
        let smolvm = smolvm_swapping_keys(&b);
        let run = b.run_with(&[("BOTTLE_SMOLVM", smolvm.as_str())], &["apply", &m]);
        run.status(1)
            .stderr_has("it is no longer the regular file it was");
        assert!(std::fs::read_link(b.path("ws/keys")).is_ok(), "swapped");
        let leaked = b.guest("m", "/workspace/keys/id");
        assert_ne!(leaked.as_deref(), Some("TOP-SECRET\n"), "update {update}");
    }
}
