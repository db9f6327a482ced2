//! Invalid specs: exit 2, a located message, and smolvm never started.

use crate::support::Bottle;

/// The snapshot of every fixture's first error line.
const SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/runner/snapshots/invalid.txt"
);

/// Each fixture under `fixtures/invalid/` exits 2 with the located message
/// in the snapshot, and starts no smolvm process (not even `--version`).
/// `BOTTLE_BLESS=1` rewrites the snapshot instead of comparing.
#[test]
fn every_invalid_fixture_is_refused_with_its_location_and_nothing_runs() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/invalid");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "{} fixtures", files.len());
    let mut got = String::new();
    for file in &files {
        let b = Bottle::new();
        let path = format!("{dir}/{file}");
        let run = b.run(&["apply", &path]);
        run.status(2);
        let first = run
            .stderr
            .lines()
            .next()
            .unwrap_or_default()
            .replace(dir, "$DIR");
        assert!(
            first.starts_with(&format!("error: $DIR/{file}:")),
            "{file}: {first}"
        );
        got.push_str(&format!("{first}\n"));
        assert!(
            b.calls().is_empty(),
            "{file}: smolvm was started: {:?}",
            b.calls()
        );
        b.run(&["plan", &path]).status(2);
    }
    if std::env::var_os("BOTTLE_BLESS").is_some() {
        std::fs::write(SNAPSHOT, &got).unwrap();
    }
    let want = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    let (want, got): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(
            g, w,
            "snapshot mismatch (BOTTLE_BLESS=1 rewrites it after review)"
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "fixtures and snapshot differ in number"
    );
}

#[test]
fn hostile_copy_sources_are_refused_before_anything_runs() {
    let b = Bottle::new();
    std::fs::create_dir_all(b.path("loop")).unwrap();
    std::os::unix::fs::symlink("..", b.path("loop/up")).unwrap();
    std::fs::create_dir_all(b.path("sock")).unwrap();
    let _l = std::os::unix::net::UnixListener::bind(b.path("sock/s")).unwrap();
    for (dir, message) in [
        ("loop", "is a directory loop"),
        ("sock", "is neither a file nor a directory"),
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
