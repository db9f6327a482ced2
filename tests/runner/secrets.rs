//! Secrets reach the guest as 0400 files and as env of the steps that ask,
//! and appear in no argv, no output, no state and no cache.

use std::os::unix::fs::PermissionsExt;

use crate::support::{Bottle, agent_spec};

const CANARY: &str = "CANARY-7f3a9c1e-do-not-leak";
const FILE_CANARY: &str = "FILECANARY-19b2d7";

fn secret_spec(b: &Bottle, extra_exec: &str) -> std::path::PathBuf {
    b.agent();
    b.write("token.txt", &format!("{FILE_CANARY}\n"));
    let tables = format!(
        r#"[[exec]]
run = ["sh", "-c", "echo $API_KEY $TOKEN > /got"]
secrets = ["API_KEY", "TOKEN"]
{extra_exec}
[secrets]
API_KEY = {{ from_env = "HOST_API_KEY" }}
TOKEN = {{ from_file = "token.txt" }}
"#
    );
    b.write("spec.toml", &agent_spec("", &tables))
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
    let spec = secret_spec(&b, "");
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
        Some(format!("{FILE_CANARY}\n").as_str())
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

#[test]
fn a_secret_echoed_by_a_failing_step_is_masked() {
    let b = Bottle::new();
    let spec = secret_spec(
        &b,
        "[[exec]]\nrun = [\"sh\", \"-c\", \"echo leaked $API_KEY >&2; exit 9\"]\nsecrets = [\"API_KEY\"]\n",
    );
    let run = b.run_with(
        &[("HOST_API_KEY", CANARY)],
        &["apply", spec.to_str().unwrap()],
    );
    run.status(1)
        .stderr_has("exited with code 9: leaked ********");
    assert!(!run.stderr.contains(CANARY), "{}", run.stderr);
    assert!(b.world().machines.is_empty());
}

#[test]
fn the_fingerprint_covers_references_not_values() {
    let b = Bottle::new();
    let spec = secret_spec(&b, "");
    let spec = spec.to_str().unwrap();
    b.run_with(&[("HOST_API_KEY", CANARY)], &["apply", spec])
        .status(0);
    b.run_with(
        &[("HOST_API_KEY", "another-value-entirely")],
        &["apply", spec],
    )
    .status(0)
    .stderr_has("agent: unchanged");
    let text = std::fs::read_to_string(spec)
        .unwrap()
        .replace("HOST_API_KEY", "OTHER_KEY");
    b.write("spec.toml", &text);
    b.run_with(&[("OTHER_KEY", CANARY)], &["apply", spec])
        .status(0)
        .stderr_has("replacing (changed: secrets)");
}

#[test]
fn missing_or_bad_secrets_are_located_spec_errors_before_anything_runs() {
    let b = Bottle::new();
    let spec = secret_spec(&b, "");
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
    let undeclared = agent_spec("", "[[exec]]\nrun = [\"true\"]\nsecrets = [\"NOPE\"]\n");
    let undeclared = b.write("undeclared.toml", &undeclared);
    b.run(&["apply", undeclared.to_str().unwrap()])
        .status(2)
        .stderr_has("`exec[1].secrets`: `NOPE` is not declared in [secrets]");
    let both = b.write(
        "both.toml",
        &agent_spec(
            "",
            "[secrets]\nA = { from_env = \"X\", from_file = \"y\" }\n",
        ),
    );
    b.run(&["apply", both.to_str().unwrap()])
        .status(2)
        .stderr_has("give exactly one of `from_env` or `from_file`");
    assert!(b.calls().is_empty(), "smolvm was run: {:#?}", b.calls());
}
