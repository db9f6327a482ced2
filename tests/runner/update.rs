//! Keeping the agent's work: a changed copy or exec step updates the
//! running machine in place; only a field fixed at `create` replaces it,
//! and only with consent; one spec owns a machine; `stop`/`start` keep
//! its disk; records of an older bottle are migrated.

use crate::support::{AGENT_SPEC, Bottle, VERSIONS, delete_line};

/// Write `text` where the agent would, outside every copy destination.
fn agent_writes(b: &Bottle, path: &str, text: &str) {
    let script = format!("echo {text} > {path}");
    b.sim(&[
        "machine", "exec", "--name", "agent", "--", "sh", "-c", &script,
    ])
    .status(0);
}

/// The agent spec with a second exec step.
fn with_step(step: &str) -> String {
    format!("{AGENT_SPEC}\n[[exec]]\nrun = [\"sh\", \"-c\", \"{step}\"]\n")
}

#[test]
fn an_edited_copied_file_is_sent_again_and_the_agents_work_stays() {
    for v in VERSIONS {
        let b = Bottle::on(v);
        let spec = b.agent();
        let spec = spec.to_str().unwrap();
        b.run(&["apply", "--allow-unenforced-egress", spec])
            .status(0);
        agent_writes(&b, "/work.txt", "mine");
        b.write("ws/README.md", "# edited\n");
        b.clear_calls();
        b.run(&["apply", "--allow-unenforced-egress", spec])
            .status(0)
            .stderr_has("agent: update in place: copy /workspace (1 file changed)");
        let calls: Vec<String> = b.calls().iter().map(|c| crate::apply::fd_path(c)).collect();
        let sent = match v {
            // `cp --mode` keeps the file's mode: one call.
            "1.9.3" => vec![
                "smolvm machine cp --mode 644 /proc/PID/fd/N agent:/workspace/README.md"
                    .to_string(),
            ],
            _ => {
                let id = calls[2]
                    .rsplit_once("/tmp/bottle-copy-")
                    .and_then(|(_, rest)| rest.strip_suffix(".tar"))
                    .expect("an archive")
                    .to_string();
                let archive = b.path(&format!("cache/uploads/agent-{id}.tar"));
                assert!(!archive.exists(), "the archive is removed");
                let shown = b.normalize(&archive.display().to_string());
                vec![
                    format!("smolvm machine cp {shown} agent:/tmp/bottle-copy-{id}.tar"),
                    format!(
                        "smolvm machine exec --name agent -- sh -c 'tar -xf \
                         /tmp/bottle-copy-{id}.tar -C / && rm -f /tmp/bottle-copy-{id}.tar'"
                    ),
                ]
            }
        };
        let mut want = vec![
            "smolvm --version".to_string(),
            "smolvm machine ls --json".into(),
        ];
        want.extend(sent);
        assert_eq!(
            calls, want,
            "smolvm {v}: only the edited file, no exec step, no replacement"
        );
        let guest = |p| b.guest("agent", p);
        assert_eq!(guest("/workspace/README.md").as_deref(), Some("# edited\n"));
        assert_eq!(guest("/work.txt").as_deref(), Some("mine\n"), "smolvm {v}");
        assert_eq!(
            guest("/done").as_deref(),
            Some("# hello\nhttp://192.168.50.2:8888\n"),
            "the exec step did not run again"
        );
        b.clear_calls();
        b.run(&["apply", "--allow-unenforced-egress", spec])
            .status(0)
            .stderr_has("agent: unchanged");
        assert_eq!(b.calls().len(), 2);
    }
}

#[test]
fn an_added_exec_step_runs_alone_and_once() {
    let b = Bottle::new();
    let spec = b.agent();
    let spec = spec.to_str().unwrap();
    b.run(&["apply", spec]).status(0);
    agent_writes(&b, "/work.txt", "mine");
    b.write("spec.toml", &with_step("echo two >> /two"));
    b.run(&["plan", spec])
        .status(0)
        .stdout_has("agent: update in place: exec[1] new\n");
    b.clear_calls();
    b.run(&["apply", spec])
        .status(0)
        .stderr_has("agent: update in place: exec[1] new");
    assert_eq!(
        b.calls(),
        [
            "smolvm --version",
            "smolvm machine ls --json",
            "smolvm machine exec --name agent --stream -- sh -c 'echo two >> /two'",
        ]
    );
    b.run(&["apply", spec]).status(0).stderr_has("unchanged");
    assert_eq!(b.guest("agent", "/two").as_deref(), Some("two\n"));
    assert_eq!(b.guest("agent", "/work.txt").as_deref(), Some("mine\n"));
    let record = b.record("agent").unwrap();
    assert_eq!(record["fingerprint"]["execs"].as_array().unwrap().len(), 2);
}

#[test]
fn rerun_exec_runs_every_step_again_and_nothing_else() {
    let b = Bottle::new();
    b.agent();
    let spec = b.write("spec.toml", &with_step("echo ran >> /count"));
    let spec = spec.to_str().unwrap();
    b.run(&["apply", spec]).status(0);
    b.clear_calls();
    b.run(&["apply", "--rerun-exec", spec])
        .status(0)
        .stderr_has("exec[0] run again (--rerun-exec); exec[1] run again (--rerun-exec)");
    let calls = b.calls();
    assert_eq!(calls.len(), 4, "{calls:#?}");
    assert!(
        calls[2..].iter().all(|c| c.contains("--stream")),
        "{calls:#?}"
    );
    assert_eq!(b.guest("agent", "/count").as_deref(), Some("ran\nran\n"));
}

#[test]
fn a_changed_exec_step_runs_and_the_others_do_not() {
    let b = Bottle::new();
    b.agent();
    let spec = b.write("spec.toml", &with_step("echo one >> /count"));
    let spec = spec.to_str().unwrap();
    b.run(&["apply", spec]).status(0);
    b.write("spec.toml", &with_step("echo two >> /count"));
    b.run(&["apply", spec])
        .status(0)
        .stderr_has("agent: update in place: exec[1] new");
    assert_eq!(b.guest("agent", "/count").as_deref(), Some("one\ntwo\n"));
}

/// The agent spec on image `img:2`.
fn on_img_2() -> String {
    AGENT_SPEC.replace("ref = \"img:1\"", "ref = \"img:2\"")
}

#[test]
fn an_image_change_replaces_only_with_consent() {
    for v in VERSIONS {
        let b = Bottle::on(v);
        let spec = b.agent();
        let spec = spec.to_str().unwrap();
        let apply = ["apply", "--allow-unenforced-egress", spec];
        b.run(&apply).status(0);
        agent_writes(&b, "/work.txt", "mine");
        b.write("spec.toml", &on_img_2());
        let record = b.record("agent");
        b.clear_calls();
        let refused = b.run(&apply);
        refused.status(3);
        insta::assert_snapshot!(format!("replace_refused_{v}"), b.normalize(&refused.stderr));
        assert_eq!(
            b.calls(),
            ["smolvm --version", "smolvm machine ls --json"],
            "refused before any mutating call"
        );
        assert_eq!(b.record("agent"), record, "the record is untouched");
        assert_eq!(b.guest("agent", "/work.txt").as_deref(), Some("mine\n"));
        b.run(&["plan", spec])
            .status(0)
            .stdout_has("agent: replacing (changed: image [forces replacement]; `apply` asks first, or pass --replace)");
        b.clear_calls();
        b.run(&["apply", "--allow-unenforced-egress", "--replace", spec])
            .status(0)
            .stderr_has("agent: replacing (changed: image [forces replacement])");
        let calls = b.calls();
        let stop = calls
            .iter()
            .position(|c| c == "smolvm machine stop --name agent")
            .expect("stop");
        assert!(calls[stop - 1].starts_with("smolvm pack create --image img:2"));
        assert_eq!(calls[stop + 1], delete_line(v, "agent"));
        assert!(calls[stop + 2].starts_with("smolvm machine create"));
        assert_eq!(b.guest("agent", "/work.txt"), None, "a new machine");
    }
}

/// `bottle apply` in a pseudo-terminal (util-linux `script`), answering
/// `answer` to its question.
fn apply_on_a_terminal(b: &Bottle, spec: &str, answer: &str) -> crate::support::Run {
    use std::io::{Read, Write};
    let line = format!("{} apply {spec}", crate::support::BOTTLE);
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &line, "/dev/null"])
        .env("BOTTLE_SMOLVM", crate::support::SIM)
        .env("BOTTLE_STATE_DIR", b.path("state"))
        .env("BOTTLE_CACHE_DIR", b.path("cache"))
        .env("SMOLVM_SIM_HOME", b.path("sim"))
        .env("SMOLVM_SIM_VERSION", "1.9.3")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("script (util-linux)");
    let mut stdout = child.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    // Answer once the question is shown: what is typed before is dropped.
    let asked = || String::from_utf8_lossy(&seen.lock().unwrap()).contains("[y/N]");
    for _ in 0..2000 {
        if asked() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(answer.as_bytes()).unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let stdout = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    crate::support::Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr: String::new(),
    }
}

#[test]
fn on_a_terminal_apply_asks_before_replacing_and_no_is_the_default() {
    let b = Bottle::new();
    let spec = b.agent();
    let spec = spec.to_str().unwrap();
    b.run(&["apply", spec]).status(0);
    agent_writes(&b, "/work.txt", "mine");
    b.write("spec.toml", &on_img_2());
    let no = apply_on_a_terminal(&b, spec, "\n");
    assert!(
        no.stdout.contains(
            "agent: replace machine `agent`? Its disk, and everything written in it since it \
             was created, will be lost (changed: image [forces replacement]) [y/N]"
        ),
        "{no:?}"
    );
    assert_eq!(no.code, 3, "{no:?}");
    assert_eq!(b.guest("agent", "/work.txt").as_deref(), Some("mine\n"));
    let yes = apply_on_a_terminal(&b, spec, "y\n");
    assert_eq!(yes.code, 0, "{yes:?}");
    assert!(yes.stdout.contains("agent: replacing"), "{yes:?}");
    assert_eq!(b.guest("agent", "/work.txt"), None);
}

#[test]
fn a_failed_update_keeps_the_machine_and_the_next_apply_does_only_the_rest() {
    let b = Bottle::new();
    let spec = b.agent();
    let spec = spec.to_str().unwrap();
    b.run(&["apply", spec]).status(0);
    let failing = format!(
        "{}\n[[exec]]\nrun = [\"sh\", \"-c\", \"test -f /fixed\"]\n",
        with_step("echo two >> /two")
    );
    b.write("spec.toml", &failing);
    b.write("ws/README.md", "# edited\n");
    let run = b.run(&["apply", spec]);
    run.status(1).stderr_has(
        "agent: updated in place up to the failed step and kept as it is, with its work",
    );
    let world = b.world();
    assert_eq!(world.machines["agent"].state, "running");
    assert_eq!(b.record("agent").unwrap()["phase"], "complete");
    assert_eq!(
        b.guest("agent", "/workspace/README.md").as_deref(),
        Some("# edited\n")
    );
    agent_writes(&b, "/fixed", "yes");
    b.clear_calls();
    b.run(&["apply", spec])
        .status(0)
        .stderr_has("agent: update in place: exec[2] new");
    assert_eq!(
        b.calls()[2..],
        ["smolvm machine exec --name agent --stream -- sh -c 'test -f /fixed'"],
        "neither the copy nor exec[1] again"
    );
    assert_eq!(b.guest("agent", "/two").as_deref(), Some("two\n"));
}

/// The agent spec copied into two projects, `one/` and `two/`, both
/// copying `ws`: the same machine name in two spec files.
fn two_projects(b: &Bottle) -> (String, String) {
    b.agent();
    let text = AGENT_SPEC.replace("src = \"ws\"", "src = \"../ws\"");
    let path = |dir: &str| {
        let p = b.write(&format!("{dir}/spec.toml"), &text);
        p.to_str().unwrap().to_string()
    };
    (path("one"), path("two"))
}

#[test]
fn a_machine_another_spec_owns_is_refused_then_adopted_or_replaced() {
    let b = Bottle::new();
    let (one, two) = two_projects(&b);
    let (one, two) = (one.as_str(), two.as_str());
    b.run(&["apply", one]).status(0);
    agent_writes(&b, "/work.txt", "mine");
    b.clear_calls();
    let refused = b.run(&["apply", two]);
    refused.status(3);
    insta::assert_snapshot!("owned_elsewhere", b.normalize(&refused.stderr));
    assert_eq!(b.calls().len(), 2, "{:#?}", b.calls());
    b.run(&["plan", two]).status(3);
    b.run(&["apply", "--adopt", two])
        .status(0)
        .stderr_has(&format!(
            "agent: adopted: it belonged to {one}, now to {two}"
        ))
        .stderr_has("agent: unchanged");
    assert_eq!(b.record("agent").unwrap()["spec_file"], two);
    assert_eq!(b.guest("agent", "/work.txt").as_deref(), Some("mine\n"));
    b.run(&["apply", one]).status(3).stderr_has(&format!(
        "machine `agent` belongs to the spec {two}, not to {one}"
    ));
    b.run(&["apply", "--replace", one])
        .status(0)
        .stderr_has(&format!(
            "agent: replacing (--replace: it belonged to {two})"
        ));
    assert_eq!(b.record("agent").unwrap()["spec_file"], one);
    assert_eq!(b.guest("agent", "/work.txt"), None);
}

#[test]
fn stop_and_start_keep_the_disk_and_run_no_step() {
    for v in VERSIONS {
        let b = Bottle::on(v);
        let spec = b.agent();
        let spec = spec.to_str().unwrap();
        b.run(&["apply", "--allow-unenforced-egress", spec])
            .status(0);
        agent_writes(&b, "/work.txt", "mine");
        b.clear_calls();
        b.run(&["stop", "agent"])
            .status(0)
            .stderr_has("agent: stopped (its disk is kept");
        assert_eq!(
            b.calls(),
            [
                "smolvm --version",
                "smolvm machine status --name agent --json",
                "smolvm machine stop --name agent"
            ]
        );
        assert_eq!(b.world().machines["agent"].state, "stopped");
        b.run(&["stop", "agent"])
            .status(0)
            .stderr_has("agent: already stopped");
        b.clear_calls();
        b.run(&["start", spec])
            .status(0)
            .stderr_has("agent: started");
        assert_eq!(
            b.calls(),
            [
                "smolvm --version",
                "smolvm machine status --name agent --json",
                "smolvm machine start --name agent",
                "smolvm machine exec --name agent -- true"
            ]
        );
        b.run(&["start", "agent"])
            .status(0)
            .stderr_has("agent: already running");
        assert_eq!(b.guest("agent", "/work.txt").as_deref(), Some("mine\n"));
        b.run(&["stop", spec]).status(0);
        b.clear_calls();
        b.run(&["apply", "--allow-unenforced-egress", spec])
            .status(0)
            .stderr_has("agent: restarting (it is stopped)");
        assert_eq!(b.calls().len(), 4, "start and wait-ready only");
        assert_eq!(
            b.guest("agent", "/done").as_deref(),
            Some("# hello\nhttp://192.168.50.2:8888\n")
        );
        assert_eq!(b.record("agent").unwrap()["phase"], "complete");
    }
}

#[test]
fn stop_and_start_touch_only_machines_bottle_owns() {
    let b = Bottle::new();
    b.sim(&["machine", "create", "--name", "theirs"]).status(0);
    b.sim(&["machine", "start", "--name", "theirs"]).status(0);
    b.clear_calls();
    b.run(&["stop", "theirs"])
        .status(3)
        .stderr_has("bottle has no record of machine `theirs`");
    b.run(&["start", "theirs"]).status(3);
    assert!(
        b.calls()
            .iter()
            .all(|c| !c.contains("stop") && !c.contains("start")),
        "{:#?}",
        b.calls()
    );
    assert_eq!(b.world().machines["theirs"].state, "running");
    let spec = b.agent();
    b.run(&["apply", spec.to_str().unwrap()]).status(0);
    b.sim(&["machine", "delete", "-f", "--name", "agent"])
        .status(0);
    b.run(&["start", "agent"])
        .status(1)
        .stderr_has("machine `agent` is gone (bottle's record names it)");
}

/// A record as the previous bottle (schema 1) wrote it for `spec.toml`,
/// with the first fingerprint form bottle still computes for it.
fn schema_1_record(b: &Bottle) -> serde_json::Value {
    let d = bottle::spec::load(&b.path("spec.toml"))
        .and_then(bottle::spec::resolve)
        .expect("spec");
    let now = b.record("agent").expect("record");
    serde_json::json!({
        "name": "agent",
        "spec_file": "spec.toml",
        "spec_hash": "from bottle 0.1.0",
        "fingerprint": d.legacy().expect("the first form"),
        "phase": "complete",
        "completed": now["completed"],
        "pack": now["pack"],
        "smolvm_version": "1.9.3",
    })
}

#[test]
fn a_record_of_the_previous_schema_is_migrated_and_nothing_is_replaced() {
    let b = Bottle::new();
    let spec = b.agent();
    let spec = spec.to_str().unwrap();
    b.run(&["apply", spec]).status(0);
    let v1 = schema_1_record(&b);
    let path = b.path("state/machines/agent.json");
    std::fs::write(&path, v1.to_string()).unwrap();
    b.clear_calls();
    b.run(&["apply", spec])
        .status(0)
        .stderr_has("agent: unchanged");
    assert_eq!(b.calls().len(), 2);
    b.write("ws/README.md", "# edited\n");
    b.run(&["apply", spec])
        .status(0)
        .stderr_has("agent: update in place: copy /workspace (1 file changed)");
    let record = b.record("agent").unwrap();
    assert_eq!(record["schema"], 3);
    assert_eq!(record["spec_file"], spec, "made canonical");
    assert_eq!(
        b.guest("agent", "/done").as_deref(),
        Some("# hello\nhttp://192.168.50.2:8888\n"),
        "the step that ran under the old record does not run again"
    );
}

#[test]
fn a_record_from_a_newer_bottle_is_refused_and_nothing_is_touched() {
    let b = Bottle::new();
    let spec = b.agent();
    let spec = spec.to_str().unwrap();
    b.run(&["apply", spec]).status(0);
    let path = b.path("state/machines/agent.json");
    std::fs::write(&path, r#"{"schema": 9, "name": "agent"}"#).unwrap();
    b.clear_calls();
    for args in [&["apply", spec][..], &["down", "agent"], &["stop", "agent"]] {
        b.run(args)
            .status(3)
            .stderr_has("is of schema 9, written by a newer bottle");
    }
    assert!(
        b.calls()
            .iter()
            .all(|c| !c.contains("stop") && !c.contains("delete")),
        "{:#?}",
        b.calls()
    );
    assert_eq!(b.world().machines["agent"].state, "running");
}

/// A spec of machine `m` with these copies (`src` → `dest`) and steps.
fn spec_of(copies: &[(&str, &str)], steps: &[&str]) -> String {
    let mut s = String::from("name = \"m\"\n[image]\nref = \"img:1\"\n");
    for (src, dest) in copies {
        s.push_str(&format!("[[copy]]\nsrc = \"{src}\"\ndest = \"{dest}\"\n"));
    }
    for step in steps {
        s.push_str(&format!("[[exec]]\nrun = [\"sh\", \"-c\", \"{step}\"]\n"));
    }
    s
}

#[test]
fn two_copies_to_one_destination_stay_unchanged_and_the_agents_edit_stays() {
    let b = Bottle::new();
    b.write("a/f", "A\n");
    b.write("b/g", "B\n");
    let spec = b.write("m.toml", &spec_of(&[("a", "/d"), ("b", "/d")], &[]));
    let spec = spec.to_str().unwrap();
    b.run(&["apply", spec]).status(0);
    let script = "echo edit > /d/g";
    b.sim(&["machine", "exec", "--name", "m", "--", "sh", "-c", script])
        .status(0);
    b.run(&["apply", spec]).status(0).stderr_has("m: unchanged");
    assert_eq!(b.guest("m", "/d/g").as_deref(), Some("edit\n"));
}

#[test]
fn a_change_beside_a_later_overlapping_copy_sends_only_itself_and_the_spec_order_holds() {
    let b = Bottle::new();
    b.write("a/sub/x", "from a\n");
    b.write("a/g", "1\n");
    b.write("b/x", "from b\n");
    let spec = b.write("m.toml", &spec_of(&[("a", "/d"), ("b", "/d/sub")], &[]));
    let spec = spec.to_str().unwrap();
    b.run(&["apply", spec]).status(0);
    b.write("a/g", "2\n");
    b.run(&["apply", spec])
        .status(0)
        .stderr_has("m: update in place: copy /d (1 file changed)\n");
    b.write("a/sub/x", "from a, edited\n");
    b.run(&["apply", spec])
        .status(0)
        .stderr_has("m: update in place: only bottle's record changes (nothing is sent or run)");
    assert_eq!(b.guest("m", "/d/g").as_deref(), Some("2\n"));
    assert_eq!(b.guest("m", "/d/sub/x").as_deref(), Some("from b\n"));
    b.run(&["apply", spec]).status(0).stderr_has("m: unchanged");
}

#[test]
fn a_step_that_ran_never_runs_again_when_removed_and_added_back() {
    let b = Bottle::new();
    let write = |steps: &[&str]| b.write("m.toml", &spec_of(&[], steps));
    let spec = write(&["echo a >> /log", "echo b >> /log", "echo c >> /log"]);
    let spec = spec.to_str().unwrap();
    b.run(&["apply", spec]).status(0);
    write(&["echo a >> /log", "echo c >> /log"]);
    b.run(&["apply", spec]).status(0).stderr_has("m: unchanged");
    write(&["echo c >> /log", "echo b >> /log", "echo a >> /log"]);
    b.run(&["apply", spec]).status(0).stderr_has("m: unchanged");
    assert_eq!(b.guest("m", "/log").as_deref(), Some("a\nb\nc\n"));
    write(&["echo a >> /log", "echo a >> /log"]);
    b.run(&["apply", spec])
        .status(0)
        .stderr_has("m: update in place: exec[1] new");
    assert_eq!(
        b.guest("m", "/log").as_deref(),
        Some("a\nb\nc\na\n"),
        "a second identical step is a step of its own, as on a new machine"
    );
}

#[test]
fn down_stop_and_start_by_a_spec_refuse_a_machine_another_spec_owns() {
    let b = Bottle::new();
    let (one, two) = two_projects(&b);
    let (one, two) = (one.as_str(), two.as_str());
    b.run(&["apply", one]).status(0);
    b.clear_calls();
    for cmd in ["down", "stop", "start"] {
        b.run(&[cmd, two]).status(3).stderr_has(&format!(
            "machine `agent` belongs to the spec {one}, not to {two}; name the machine (`agent`)"
        ));
    }
    assert_eq!(
        b.calls().len(),
        6,
        "only --version and status: {:#?}",
        b.calls()
    );
    assert_eq!(b.world().machines["agent"].state, "running");
    b.run(&["stop", one]).status(0);
    b.run(&["down", "agent"]).status(0);
}

#[test]
fn a_spec_read_through_a_symlink_reads_its_paths_from_the_real_file() {
    let b = Bottle::new();
    let spec = b.agent();
    std::fs::create_dir_all(b.path("x/y")).unwrap();
    std::os::unix::fs::symlink(&spec, b.path("x/y/link.toml")).unwrap();
    b.write("x/y/ws/README.md", "# not this one\n");
    let link = b.path("x/y/link.toml");
    b.run(&["apply", link.to_str().unwrap()]).status(0);
    assert_eq!(
        b.guest("agent", "/workspace/README.md").as_deref(),
        Some("# hello\n"),
        "ws next to the real spec file"
    );
    b.run(&["apply", spec.to_str().unwrap()])
        .status(0)
        .stderr_has("agent: unchanged");
}

#[test]
fn status_escapes_control_characters_in_the_owners_path() {
    let b = Bottle::new();
    b.agent();
    let dir = "evil\u{1b}[31mdir";
    let spec = b.write(
        &format!("{dir}/spec.toml"),
        &AGENT_SPEC.replace("src = \"ws\"", "src = \"../ws\""),
    );
    b.run(&["apply", spec.to_str().unwrap()]).status(0);
    let run = b.run(&["status", "agent"]);
    run.status(0).stdout_has("evil\\x1b[31mdir");
    assert!(!run.stdout.contains('\u{1b}'), "{:?}", run.stdout);
}

#[test]
fn a_schema_1_record_of_another_project_s_spec_of_the_same_name_is_not_taken_over() {
    let b = Bottle::new();
    let (one, two) = two_projects(&b);
    b.run(&["apply", &one]).status(0);
    let mut v1 = schema_1_record(&b);
    v1["spec_file"] = "spec.toml".into();
    v1["fingerprint"]["exec"] = "project one's steps".into();
    std::fs::write(b.path("state/machines/agent.json"), v1.to_string()).unwrap();
    b.clear_calls();
    b.run(&["apply", &two])
        .status(3)
        .stderr_has("machine `agent` belongs to the spec spec.toml, not to");
    assert_eq!(b.calls().len(), 2);
}

/// Edited since the upgrade, a schema-1 machine's spec must be adopted
/// (its recorded path, as typed, is no proof); then only the steps added
/// at the end run.
#[test]
fn a_schema_1_machine_runs_only_the_steps_added_to_its_spec_since() {
    let b = Bottle::new();
    let spec = b.agent();
    let spec = spec.to_str().unwrap();
    b.run(&["apply", spec]).status(0);
    agent_writes(&b, "/done", "agent-work");
    let v1 = schema_1_record(&b);
    std::fs::write(b.path("state/machines/agent.json"), v1.to_string()).unwrap();
    b.write("spec.toml", &with_step("echo two >> /two"));
    b.run(&["apply", spec])
        .status(3)
        .stderr_has("machine `agent` belongs to the spec spec.toml");
    b.clear_calls();
    b.run(&["apply", "--adopt", spec])
        .status(0)
        .stderr_has("agent: adopted: it belonged to spec.toml")
        .stderr_has("agent: update in place: exec[1] new");
    assert_eq!(
        b.calls()[2..],
        ["smolvm machine exec --name agent --stream -- sh -c 'echo two >> /two'"]
    );
    assert_eq!(b.guest("agent", "/done").as_deref(), Some("agent-work\n"));
}
