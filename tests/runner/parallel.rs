//! `apply -j N`: independent specs applied by bounded workers, each line
//! prefixed by its machine, a failure torn down alone, the worst exit code.

use crate::support::Bottle;

/// A spec whose exec leaves `/done` holding the machine's own name.
fn spec(b: &Bottle, name: &str) -> String {
    let text = format!(
        r#"name = "{name}"
[image]
ref = "img:1"

[[exec]]
run = ["sh", "-c", "echo {name} > /done"]
"#
    );
    b.write(&format!("{name}.toml"), &text)
        .to_string_lossy()
        .into_owned()
}

fn position(calls: &[String], pred: impl Fn(&str) -> bool) -> usize {
    calls
        .iter()
        .position(|c| pred(c))
        .unwrap_or_else(|| panic!("no such call in {calls:#?}"))
}

#[test]
fn specs_run_at_once_and_a_failure_tears_down_only_its_own_machine() {
    for version in crate::support::VERSIONS {
        let b = Bottle::on(version);
        let specs: Vec<String> = ["a", "b", "c"].iter().map(|n| spec(&b, n)).collect();
        let mut args = vec!["apply", "-j", "3", "--step-timeout", "4s"];
        args.extend(specs.iter().map(String::as_str));
        // The first `create` of the run hangs until its step times out.
        let run = b.run_with(&[("SMOLVM_SIM_HANG", "create@1")], &args);
        run.status(1)
            .stderr_has("create failed")
            .stderr_has("did not finish within 4s");

        let world = b.world();
        let hung: Vec<&str> = ["a", "b", "c"]
            .into_iter()
            .filter(|n| !world.machines.contains_key(*n))
            .collect();
        assert_eq!(hung.len(), 1, "{version}: exactly one torn down: {world:?}");
        let hung = hung[0];
        for name in ["a", "b", "c"].into_iter().filter(|n| *n != hung) {
            assert_eq!(
                b.guest(name, "/done").as_deref(),
                Some(format!("{name}\n").as_str()),
                "{version}: {name} is applied"
            );
            assert_eq!(b.record(name).expect("record")["phase"], "complete");
            run.stderr_has(&format!("{name}: ready"));
        }
        assert!(b.record(hung).is_none(), "{version}: {hung} forgotten");
        assert!(world.orphans.is_empty(), "{version}: {:?}", world.orphans);

        // The others finished while the hung create was still waiting for
        // its deadline: they did not queue behind it.
        let calls = b.calls();
        let torn = position(&calls, |c| {
            c.contains("machine delete") && c.ends_with(hung)
        });
        for name in ["a", "b", "c"].into_iter().filter(|n| *n != hung) {
            let done = position(&calls, |c| {
                c.contains(&format!("echo {name} > /done")) && c.contains("machine exec")
            });
            assert!(
                done < torn,
                "{version}: {name} waited for {hung}: {calls:#?}"
            );
        }
        assert_eq!(
            calls.iter().filter(|c| c.contains("pack create")).count(),
            1,
            "{version}: the shared image is packed once"
        );
        for line in run.stderr.lines() {
            let machine = line.split(':').next().unwrap_or_default();
            assert!(
                ["a", "b", "c", "note", "error", "  caused by", "hint"].contains(&machine),
                "{version}: a line without its machine: {line:?}"
            );
        }
    }
}

#[test]
fn one_job_applies_in_file_order_and_jobs_must_be_positive() {
    let b = Bottle::new();
    let (a, c) = (spec(&b, "a"), spec(&b, "c"));
    b.run(&["apply", "-j", "1", &c, &a]).status(0);
    let calls = b.calls();
    let create = |n: &str| position(&calls, |c| c.contains("machine create") && c.contains(n));
    let last_c = position(&calls, |x| x.contains("echo c > /done"));
    assert!(
        last_c < create(" a"),
        "c is applied before a starts: {calls:#?}"
    );
    b.run(&["apply", "-j", "0", &a])
        .status(2)
        .stderr_has("--jobs");
}

#[test]
fn more_jobs_than_specs_is_fine_and_a_converged_fleet_is_unchanged() {
    let b = Bottle::new();
    let specs: Vec<String> = ["a", "b"].iter().map(|n| spec(&b, n)).collect();
    let mut args = vec!["apply", "-j", "8"];
    args.extend(specs.iter().map(String::as_str));
    b.run(&args).status(0);
    b.clear_calls();
    let again = b.run(&args);
    again
        .status(0)
        .stderr_has("a: unchanged")
        .stderr_has("b: unchanged");
    assert_eq!(
        b.calls(),
        ["smolvm --version", "smolvm machine ls --json"],
        "one look at the whole fleet, nothing else"
    );
}

#[test]
fn a_signal_tears_down_every_machine_the_workers_were_making() {
    let b = Bottle::new();
    let specs: Vec<String> = ["a", "b", "c", "d"].iter().map(|n| spec(&b, n)).collect();
    let mut args = vec!["apply", "-j", "3"];
    args.extend(specs.iter().map(String::as_str));
    let child = b.spawn(&[("SMOLVM_SIM_HANG", "exec")], &args);
    // Three workers, each stuck in its machine's exec step.
    for _ in 0..2000 {
        let hung = b.calls().iter().filter(|c| c.contains("> /done")).count();
        if hung == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    crate::support::signal(&child, rustix::process::Signal::INT);
    let run = crate::support::finish(child);
    run.status(130).stderr_has("bottle: SIGINT received");
    let calls = b.calls();
    let started: Vec<&String> = calls.iter().filter(|c| c.contains("> /done")).collect();
    assert_eq!(
        started.len(),
        3,
        "the fourth spec never started: {calls:#?}"
    );
    assert!(!calls.iter().any(|c| c.contains("--name d")), "{calls:#?}");
    let world = b.world();
    assert!(world.machines.is_empty(), "{world:?}");
    assert!(world.orphans.is_empty(), "{world:?}");
    for name in ["a", "b", "c", "d"] {
        assert!(b.record(name).is_none(), "{name}");
    }
    assert_eq!(b.processes_left(), Vec::<String>::new());
}
