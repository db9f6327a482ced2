//! Secrets reach the guest as 0400 files and as env of the steps that ask,
//! and appear in no argv, no output, no state and no cache.

use std::os::unix::fs::PermissionsExt;

use crate::support::{Bottle, finish};

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
/// `token.txt`, which holds `FILE_CANARY`.
fn secret_world(b: &Bottle, text: &str) -> std::path::PathBuf {
    b.agent();
    b.write("token.txt", &format!("{FILE_CANARY}\n"));
    b.write("spec.toml", text)
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return hits;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            hits.extend(files_containing(&p, needle));
        } else if std::fs::read(&p).is_ok_and(|b| String::from_utf8_lossy(&b).contains(needle)) {
            hits.push(p.display().to_string());
        }
    }
    hits
}

#[test]
fn secrets_reach_the_guest_and_nothing_else() {
    let b = Bottle::new();
    let spec = secret_world(&b, SECRET_SPEC);
    let spec = spec.to_str().unwrap();
    std::fs::create_dir_all(b.path("tmp")).unwrap();
    let tmpdir = b.path("tmp").to_string_lossy().into_owned();
    let env = [("HOST_API_KEY", CANARY), ("TMPDIR", tmpdir.as_str())];
    let plan = b.run_with(&env, &["plan", spec]);
    plan.status(0)
        .stdout_has("secrets API_KEY, TOKEN")
        .stdout_has(&format!(
            "machine cp {tmpdir}/bottle-secret-XXXXXX agent:/run/bottle/secrets/API_KEY"
        ));
    let apply = b.run_with(&env, &["apply", spec]);
    apply.status(0);
    let status = b.run_with(&env, &["status", "agent", "--json"]);

    assert_eq!(
        b.guest("agent", "/got").as_deref(),
        Some(format!("{CANARY} {FILE_CANARY}\n").as_str())
    );
    assert_eq!(
        b.guest("agent", "/run/bottle/secrets/API_KEY").as_deref(),
        Some(CANARY)
    );
    assert_eq!(
        b.guest("agent", "/run/bottle/secrets/TOKEN").as_deref(),
        Some(FILE_CANARY),
        "a file's value is its contents without trailing newlines"
    );
    let guest = b.path("sim/guests/agent/run/bottle/secrets");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&guest), 0o700);
    assert_eq!(mode(&guest.join("API_KEY")), 0o400);

    for canary in [CANARY, FILE_CANARY] {
        let calls = std::fs::read_to_string(b.path("sim/calls.jsonl")).unwrap();
        assert!(!calls.contains(canary), "{canary} in an argv");
        for run in [&plan, &apply, &status] {
            assert!(
                !run.stdout.contains(canary) && !run.stderr.contains(canary),
                "{canary} printed"
            );
        }
        assert_eq!(
            files_containing(&b.path("state"), canary),
            Vec::<String>::new()
        );
        assert_eq!(
            files_containing(&b.path("cache"), canary),
            Vec::<String>::new()
        );
    }
    assert_eq!(
        std::fs::read_dir(b.path("tmp")).unwrap().count(),
        0,
        "host temp files are removed"
    );
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
    let b = Bottle::new();
    let spec = secret_world(&b, SECRET_SPEC_THEN_LEAK);
    let run = b.run_with(
        &[("HOST_API_KEY", CANARY)],
        &["apply", spec.to_str().unwrap()],
    );
    run.status(1)
        .stderr_has("exited with code 9: leaked ********");
    assert!(!run.stderr.contains(CANARY), "{}", run.stderr);
    assert!(b.world().machines.is_empty());
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
    b.run_with(&[("OTHER_KEY", CANARY)], &["apply", spec])
        .status(0)
        .stderr_has("replacing (changed: secrets)");
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
fn spec_with_token_file(path: &std::path::Path) -> String {
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
    let must_be_regular = "a secret file must be a regular file";
    let cases = [
        (
            fifo.clone(),
            format!("{} is a FIFO; {must_be_regular}", fifo.display()),
        ),
        (
            "/dev/zero".into(),
            format!("/dev/zero is a character device; {must_be_regular}"),
        ),
        (
            dir.clone(),
            format!("{} is a directory; {must_be_regular}", dir.display()),
        ),
        (
            big.clone(),
            format!(
                "{} holds 102400 bytes; a secret file may hold at most 65536 (64 KiB)",
                big.display()
            ),
        ),
    ];
    for (path, message) in cases {
        let spec = b.write("spec.toml", &spec_with_token_file(&path));
        let spec = spec.to_str().unwrap();
        for args in [["plan", spec], ["apply", spec]] {
            let run = finish(b.spawn(&[("HOST_API_KEY", CANARY)], &args));
            run.status(2)
                .stderr_has(&format!("{spec}:28:1: `secrets.TOKEN`: {message}"));
        }
    }
    assert_eq!(b.calls(), Vec::<String>::new(), "smolvm was run");
}
