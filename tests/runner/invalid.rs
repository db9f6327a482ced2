//! Invalid specs: exit 2, a located message, and smolvm never started.

use crate::support::Bottle;

/// Each fixture under `fixtures/invalid/` with its expected `line:col`,
/// key and message.
const CASES: &[(&str, &str)] = &[
    ("unknown-key.toml", ":3:1: `bogus`: unknown field `bogus`"),
    (
        "misspelt-key.toml",
        ":5:1: `network.allow_cidr`: unknown field `allow_cidr`",
    ),
    ("syntax.toml", ":3:7: `image.ref`:"),
    (
        "wrong-type.toml",
        ":1:8: `name`: invalid type: integer `42`, expected a string",
    ),
    (
        "name-leading-dash.toml",
        ":1:8: `name`: must start with a letter or digit",
    ),
    (
        "name-double-dash.toml",
        ":1:8: `name`: must not contain `--`",
    ),
    (
        "name-slash.toml",
        ":1:8: `name`: may contain only letters, digits, `-` and `_` (found '/')",
    ),
    (
        "both-images.toml",
        ":4:8: `image`: give exactly one of `ref` and `pack`, not both",
    ),
    (
        "no-image.toml",
        ":3:1: `image`: give exactly one of `ref` or `pack`",
    ),
    (
        "cidr-host-bits.toml",
        ":6:16: `network.allow_cidrs[0]`: has host bits set; did you mean 10.0.0.0/8?",
    ),
    (
        "cidr-garbage.toml",
        ":6:16: `network.allow_cidrs[0]`: `10.0.0.0/99` is not a CIDR",
    ),
    (
        "env-bad-key.toml",
        ":6:1: `env.BAD-KEY`: `BAD-KEY` is not a valid variable name",
    ),
    (
        "copy-relative-dest.toml",
        ":7:8: `copy[0].dest`: `workspace` must be an absolute guest path",
    ),
    ("copy-missing-src.toml", ":6:7: `copy[0].src`:"),
    (
        "exec-empty-run.toml",
        ":6:7: `exec[0].run`: must name a command",
    ),
    (
        "zero-timeout.toml",
        ":6:11: `ready.timeout`: must be greater than zero",
    ),
    (
        "bare-number-timeout.toml",
        ":6:11: `ready.timeout`: `30` is not a duration",
    ),
];

#[test]
fn every_invalid_fixture_is_refused_with_its_location_and_nothing_runs() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/invalid");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut listed: Vec<String> = CASES.iter().map(|(f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "every fixture has an expectation and every expectation a fixture"
    );
    for (file, want) in CASES {
        let b = Bottle::new();
        let path = format!("{dir}/{file}");
        let run = b.run(&["apply", &path]);
        run.status(2).stderr_has(&format!("{path}{want}"));
        assert!(
            b.calls().is_empty(),
            "{file}: smolvm was started: {:?}",
            b.calls()
        );
        b.run(&["plan", &path]).status(2);
    }
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
    b.run(&["apply", one.to_str().unwrap(), two.to_str().unwrap()])
        .status(2)
        .stderr_has("machine name `same` is used by both");
    assert!(b.calls().is_empty());
}

#[test]
fn usage_errors_exit_2() {
    let b = Bottle::new();
    b.run(&["apply"]).status(2);
    b.run(&["frobnicate"]).status(2);
    b.run(&["--help"]).status(0).stdout_has("apply");
}
