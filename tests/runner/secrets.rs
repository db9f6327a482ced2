//! Secrets reach only the exec steps that name them, and no file bottle
//! makes: from smolvm 1.0.0 through smolvm's own environment (`exec
//! --secret-env NAME=BOTTLE_SECRET_NAME`), with no secret file on the host
//! or in the guest; on 0.8.x as 0400 guest files copied from host memfds.
//! No value is in any argv, output, record, cache or temp file, also after
//! a `kill -9` of bottle while it delivers them. A secret file that is not
//! a regular file of at most 64 KiB is a spec error found before reading.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::process::Signal;

use crate::support::{Bottle, VERSIONS, finish, signal};

const CANARY: &str = "CANARY-7f3a9c1e-do-not-leak";
const FILE_CANARY: &str = "FILECANARY-19b2d7";

/// The agent spec with two secrets, `API_KEY` from the host variable
/// `HOST_API_KEY` and `TOKEN` from `token.txt`, and a second step that
/// writes both to `/got`.
const SECRET_SPEC: &str = r#"name = "agent"

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
[[exec]]
run = ["sh", "-c", "echo $API_KEY $TOKEN > /got"]
secrets = ["API_KEY", "TOKEN"]

[secrets]
API_KEY = { from_env = "HOST_API_KEY" }
TOKEN = { from_file = "token.txt" }
"#;

/// Write `text` as `spec.toml` beside the agent's workspace and
/// `token.txt`, which holds `FILE_CANARY` and a newline; make the world's
/// `tmp` directory, bottle's `$TMPDIR` in these tests.
fn secret_world(b: &Bottle, text: &str) -> PathBuf {
    b.agent();
    b.write("token.txt", &format!("{FILE_CANARY}\n"));
    std::fs::create_dir_all(b.path("tmp")).unwrap();
    b.write("spec.toml", text)
}

/// The environment of a run: the secret's host variable and `$TMPDIR`.
fn secret_env(b: &Bottle) -> [(&'static str, String); 2] {
    let tmp = b.path("tmp").to_string_lossy().into_owned();
    [("HOST_API_KEY", CANARY.to_string()), ("TMPDIR", tmp)]
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// `apply SPEC`, allowing the unenforced allow-list of smolvm 0.8.
fn apply_args(spec: &str) -> [&str; 3] {
    ["apply", "--allow-unenforced-egress", spec]
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return hits;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            hits.extend(files_containing(&p, needle));
        } else if std::fs::read(&p).is_ok_and(|b| String::from_utf8_lossy(&b).contains(needle)) {
            hits.push(p);
        }
    }
    hits
}

/// Every file of the world that holds a secret value, relative to the
/// world, but `token.txt` (the file one of them comes from): the state and
/// cache directories, `$TMPDIR`, the simulator's call log and state, and
/// the simulated guests' files.
fn files_with_secrets(b: &Bottle) -> Vec<String> {
    let root = b.tmp.path();
    let mut v: Vec<String> = [CANARY, FILE_CANARY]
        .iter()
        .flat_map(|c| files_containing(root, c))
        .map(|p| p.strip_prefix(root).unwrap().display().to_string())
        .filter(|p| p != "token.txt")
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The guest files each version leaves holding a value after an apply:
/// `/got`, which the step wrote itself, and on 0.8 the secret files.
fn expected_secret_files(version: &str) -> Vec<String> {
    let mut v = vec!["sim/guests/agent/got".to_string()];
    if version == "0.8.0" {
        v.push("sim/guests/agent/run/bottle/secrets/API_KEY".into());
        v.push("sim/guests/agent/run/bottle/secrets/TOKEN".into());
    }
    v
}

#[test]
fn secrets_reach_their_step_and_no_file_bottle_makes() {
    for version in VERSIONS {
        let b = Bottle::on(version);
        let spec = secret_world(&b, SECRET_SPEC);
        let spec = spec.to_str().unwrap();
        let env = secret_env(&b);
        let env = pairs(&env);
        let plan = b.run_with(&env, &["plan", spec]);
        plan.status(0);
        plan_shows_delivery(version, &plan.stdout);
        let apply = b.run_with(&env, &apply_args(spec));
        apply.status(0);
        let status = b.run_with(&env, &["status", "agent", "--json"]);

        assert_eq!(
            b.guest("agent", "/got").as_deref(),
            Some(format!("{CANARY} {FILE_CANARY}\n").as_str()),
            "{version}"
        );
        guest_holds_secrets_only_on_0_8(&b, version);
        for run in [&plan, &apply, &status] {
            for canary in [CANARY, FILE_CANARY] {
                assert!(!run.stdout.contains(canary), "{version}: {canary} printed");
                assert!(!run.stderr.contains(canary), "{version}: {canary} printed");
            }
        }
        assert_eq!(files_with_secrets(&b), expected_secret_files(version));
        assert_eq!(std::fs::read_dir(b.path("tmp")).unwrap().count(), 0);
    }
}

/// From 1.0.0 the step names its secrets with `--secret-env` and there is
/// no secrets step; on 0.8 the secrets step copies each from a memfd and
/// the step reads them under `sh`.
#[track_caller]
fn plan_shows_delivery(version: &str, plan: &str) {
    let step = "machine exec --name agent --secret-env API_KEY=BOTTLE_SECRET_API_KEY \
                --secret-env TOKEN=BOTTLE_SECRET_TOKEN --stream -- sh -c 'echo $API_KEY $TOKEN > /got'";
    let cp = "machine cp /proc/PID/fd/N agent:/run/bottle/secrets/API_KEY";
    let wrapper = r#"sh -c 'export API_KEY="$(cat /run/bottle/secrets/API_KEY)""#;
    let on_0_8 = version == "0.8.0";
    for (shown, expected) in [
        (step, !on_0_8),
        ("secrets API_KEY, TOKEN", on_0_8),
        (cp, on_0_8),
        (wrapper, on_0_8),
        ("/run/bottle/secrets", on_0_8),
        ("--secret-env", !on_0_8),
    ] {
        assert_eq!(
            plan.contains(shown),
            expected,
            "{version}: {shown}:\n{plan}"
        );
    }
}

/// On 0.8 the guest holds each value in a 0400 file of a 0700 directory
/// (a file's value without its trailing newline); from 1.0.0 there is no
/// such directory at all.
#[track_caller]
fn guest_holds_secrets_only_on_0_8(b: &Bottle, version: &str) {
    let dir = b.path("sim/guests/agent/run/bottle/secrets");
    if version != "0.8.0" {
        assert!(!b.path("sim/guests/agent/run/bottle").exists(), "{version}");
        return;
    }
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("API_KEY")), 0o400);
    assert_eq!(
        b.guest("agent", "/run/bottle/secrets/API_KEY").as_deref(),
        Some(CANARY)
    );
    assert_eq!(
        b.guest("agent", "/run/bottle/secrets/TOKEN").as_deref(),
        Some(FILE_CANARY)
    );
}

/// `kill -9` of bottle while smolvm holds its secrets: on 0.8 in the first
/// `cp` of a secret (from a memfd), on 1.9.3 in the exec step given them
/// with `--secret-env` (the third exec: unpack, the first step, this one).
#[test]
fn a_kill_9_while_secrets_are_delivered_leaves_no_value_in_any_file() {
    for (version, hang, call) in [
        ("0.8.0", "cp@1", "agent:/run/bottle/secrets/API_KEY"),
        ("1.9.3", "exec@3", "--secret-env API_KEY"),
    ] {
        let b = Bottle::on(version);
        let spec = secret_world(&b, SECRET_SPEC);
        let spec = spec.to_str().unwrap();
        let env = secret_env(&b);
        let mut env = pairs(&env);
        env.push(("SMOLVM_SIM_HANG", hang));
        let child = b.spawn(&env, &apply_args(spec));
        b.wait_for_call(call);
        let hung = b.calls().pop().unwrap_or_default();
        assert!(hung.contains(call), "{version}: hung in {hung}");
        assert_eq!(files_with_secrets(&b), Vec::<String>::new(), "{version}");
        signal(&child, Signal::KILL);
        finish(child);
        assert_eq!(files_with_secrets(&b), Vec::<String>::new(), "{version}");
        assert_eq!(std::fs::read_dir(b.path("tmp")).unwrap().count(), 0);
        b.kill_leftovers();
        assert_eq!(files_with_secrets(&b), Vec::<String>::new(), "{version}");
    }
}

/// The secret spec with a third step that prints `API_KEY` to stderr and
/// exits 9.
const SECRET_SPEC_THEN_LEAK: &str = r#"name = "agent"

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
[[exec]]
run = ["sh", "-c", "echo $API_KEY $TOKEN > /got"]
secrets = ["API_KEY", "TOKEN"]
[[exec]]
run = ["sh", "-c", "echo leaked $API_KEY >&2; exit 9"]
secrets = ["API_KEY"]

[secrets]
API_KEY = { from_env = "HOST_API_KEY" }
TOKEN = { from_file = "token.txt" }
"#;

#[test]
fn a_secret_echoed_by_a_failing_step_is_masked() {
    for version in VERSIONS {
        let b = Bottle::on(version);
        let spec = secret_world(&b, SECRET_SPEC_THEN_LEAK);
        let env = secret_env(&b);
        let run = b.run_with(&pairs(&env), &apply_args(spec.to_str().unwrap()));
        run.status(1)
            .stderr_has("exited with code 9: leaked ********");
        assert!(!run.stderr.contains(CANARY), "{version}: {}", run.stderr);
        assert!(b.world().machines.is_empty(), "{version}");
    }
}

/// The secret spec with `API_KEY` from the host variable `OTHER_KEY`
/// instead of `HOST_API_KEY`: a changed reference.
const SECRET_SPEC_FROM_OTHER_KEY: &str = r#"name = "agent"

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
[[exec]]
run = ["sh", "-c", "echo $API_KEY $TOKEN > /got"]
secrets = ["API_KEY", "TOKEN"]

[secrets]
API_KEY = { from_env = "OTHER_KEY" }
TOKEN = { from_file = "token.txt" }
"#;

#[test]
fn the_fingerprint_covers_references_not_values() {
    let b = Bottle::new();
    let spec = secret_world(&b, SECRET_SPEC);
    let spec = spec.to_str().unwrap();
    b.run_with(&[("HOST_API_KEY", CANARY)], &["apply", spec])
        .status(0);
    b.run_with(
        &[("HOST_API_KEY", "another-value-entirely")],
        &["apply", spec],
    )
    .status(0)
    .stderr_has("agent: unchanged");
    b.write("spec.toml", SECRET_SPEC_FROM_OTHER_KEY);
    b.clear_calls();
    b.run_with(&[("OTHER_KEY", CANARY)], &["apply", spec])
        .status(0)
        .stderr_has("agent: update in place: only bottle's record changes");
    assert_eq!(
        b.calls(),
        ["smolvm --version", "smolvm machine ls --json"],
        "a secret's new source reruns no step"
    );
    b.run_with(&[("OTHER_KEY", CANARY)], &["apply", spec])
        .status(0)
        .stderr_has("agent: unchanged");
}

/// The agent spec with a second step asking for a secret `NOPE` that no
/// `[secrets]` table declares.
const UNDECLARED_SECRET_SPEC: &str = r#"name = "agent"

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
[[exec]]
run = ["true"]
secrets = ["NOPE"]
"#;

/// The agent spec with a secret `A` that names two sources, a host
/// variable and a file.
const TWO_SOURCE_SECRET_SPEC: &str = r#"name = "agent"

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
[secrets]
A = { from_env = "X", from_file = "y" }
"#;

#[test]
fn missing_or_bad_secrets_are_located_spec_errors_before_anything_runs() {
    let b = Bottle::new();
    let spec = secret_world(&b, SECRET_SPEC);
    let spec = spec.to_str().unwrap();
    b.run(&["apply", spec]).status(2).stderr_has(&format!(
        "{spec}:27:1: `secrets.API_KEY`: host variable `HOST_API_KEY` is not set"
    ));
    b.run(&["plan", spec]).status(2);
    b.run_with(&[("HOST_API_KEY", "abc")], &["apply", spec])
        .status(2)
        .stderr_has("too short to be masked");
    std::fs::remove_file(b.path("token.txt")).unwrap();
    b.run_with(&[("HOST_API_KEY", CANARY)], &["apply", spec])
        .status(2)
        .stderr_has("token.txt does not exist");
    let undeclared = b.write("undeclared.toml", UNDECLARED_SECRET_SPEC);
    b.run(&["apply", undeclared.to_str().unwrap()])
        .status(2)
        .stderr_has("`exec[1].secrets`: `NOPE` is not declared in [secrets]");
    let both = b.write("both.toml", TWO_SOURCE_SECRET_SPEC);
    b.run(&["apply", both.to_str().unwrap()])
        .status(2)
        .stderr_has("give exactly one of `from_env` or `from_file`");
    assert!(b.calls().is_empty(), "smolvm was run: {:#?}", b.calls());
}

/// `SECRET_SPEC` with `TOKEN` read from `path`.
fn spec_with_token_file(path: &Path) -> String {
    SECRET_SPEC.replace(
        r#"TOKEN = { from_file = "token.txt" }"#,
        &format!("TOKEN = {{ from_file = {:?} }}", path.display().to_string()),
    )
}

/// A FIFO (which would block a reader forever), `/dev/zero` (which never
/// ends), a directory and a 100 KiB file are refused as `from_file`,
/// located at the secret, by `plan` and `apply`, before any smolvm call.
#[test]
fn a_secret_file_must_be_a_regular_file_of_at_most_64_kib() {
    use rustix::fs::{CWD, FileType, Mode};
    let b = Bottle::new();
    secret_world(&b, SECRET_SPEC);
    let fifo = b.path("fifo");
    rustix::fs::mknodat(CWD, &fifo, FileType::Fifo, Mode::RUSR | Mode::WUSR, 0).unwrap();
    let big = b.write("big.txt", &"x".repeat(100 * 1024));
    let dir = b.path("ws");
    let cases = [
        (
            fifo.clone(),
            format!(
                "{} is a FIFO; a secret file must be a regular file",
                fifo.display()
            ),
        ),
        (
            "/dev/zero".into(),
            "/dev/zero is a character device; a secret file must be a regular file".into(),
        ),
        (
            dir.clone(),
            format!(
                "{} is a directory; a secret file must be a regular file",
                dir.display()
            ),
        ),
        (
            big.clone(),
            format!(
                "{} holds 102400 bytes; a secret file may hold at most 65536 (64 KiB)",
                big.display()
            ),
        ),
    ];
    let env = secret_env(&b);
    for (path, message) in cases {
        let spec = b.write("spec.toml", &spec_with_token_file(&path));
        let spec = spec.to_str().unwrap();
        for args in [vec!["plan", spec], apply_args(spec).to_vec()] {
            let run = finish(b.spawn(&pairs(&env), &args));
            run.status(2)
                .stderr_has(&format!("{spec}:28:1: `secrets.TOKEN`: {message}"));
        }
    }
    assert_eq!(b.calls(), Vec::<String>::new(), "smolvm was run");
}
