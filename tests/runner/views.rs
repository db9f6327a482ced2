//! What users read, as whole-output snapshots: `plan` in both dialects and
//! on a replace, `status` (text and JSON), `down`, `gc`, and the error
//! blocks of a refusal. Paths are normalised to `[TMP]`, the simulator to
//! `smolvm`, timings to `N ms`.

use crate::support::{AGENT_SPEC, Bottle, VERSIONS};

/// `bottle plan` of the standard agent spec: decision, egress, every step
/// with its exact calls, the teardown, in the dialect of each version.
#[test]
fn plan_output() {
    for version in VERSIONS {
        let b = Bottle::on(version);
        let spec = b.agent();
        let run = b.run(&["plan", spec.to_str().unwrap()]);
        run.status(0);
        insta::assert_snapshot!(
            format!("plan_{version}"),
            format!(
                "stdout:\n{}\nstderr:\n{}",
                b.normalize(&run.stdout),
                b.normalize(&run.stderr)
            )
        );
    }
}

/// A plan of a spec whose image changed: pack, stop and delete of the old
/// machine, then a full apply; the field that forces it is marked, and
/// `apply` will ask.
#[test]
fn plan_of_a_replace() {
    let b = Bottle::new();
    let spec = b.agent();
    let spec = spec.to_str().unwrap();
    b.run(&["apply", spec]).status(0);
    b.write("spec.toml", &AGENT_SPEC.replace("img:1", "img:2"));
    b.write("ws/README.md", "# changed\n");
    let run = b.run(&["plan", spec]);
    run.status(0);
    insta::assert_snapshot!(b.normalize(&run.stdout));
}

/// A plan of an edited copy and an added exec step: the update in place,
/// and only its calls.
#[test]
fn plan_of_an_update() {
    let b = Bottle::new();
    let spec = b.agent();
    let spec = spec.to_str().unwrap();
    b.run(&["apply", spec]).status(0);
    let added = format!("{AGENT_SPEC}\n[[exec]]\nrun = [\"make\", \"test\"]\n");
    b.write("spec.toml", &added);
    b.write("ws/README.md", "# changed\n");
    b.write("ws/NEW.md", "new\n");
    let run = b.run(&["plan", spec]);
    run.status(0);
    insta::assert_snapshot!(b.normalize(&run.stdout));
}

/// `status` of a machine bottle owns, one it does not, and one missing.
#[test]
fn status_views() {
    let b = Bottle::new();
    let spec = b.agent();
    b.run(&["apply", spec.to_str().unwrap()]).status(0);
    b.sim(&["machine", "create", "--name", "other"]).status(0);
    let mut text = String::new();
    for (args, what) in [
        (vec!["status", "agent"], "owned"),
        (vec!["status", "agent", "--json"], "owned, json"),
        (vec!["status", "other"], "not owned"),
        (vec!["status", "nothing", "--json"], "missing, json"),
    ] {
        let run = b.run(&args);
        run.status(0);
        text.push_str(&format!("# {what}\n{}", b.normalize(&run.stdout)));
    }
    insta::assert_snapshot!(text);
}

/// `down` and the refusals around it: a machine bottle does not own, and
/// one that is not a name at all.
#[test]
fn down_and_refusals() {
    let b = Bottle::new();
    let spec = b.agent();
    b.run(&["apply", spec.to_str().unwrap()]).status(0);
    b.sim(&["machine", "create", "--name", "other"]).status(0);
    let mut text = String::new();
    for (args, code) in [
        (vec!["down", "agent"], 0),
        (vec!["down", "other"], 3),
        (vec!["down", "-bad"], 2),
        (vec!["down", "not/a/name"], 2),
    ] {
        let run = b.run(&args);
        run.status(code);
        text.push_str(&format!(
            "$ bottle {}  (exit {code})\n{}",
            args.join(" "),
            b.normalize(&run.stderr)
        ));
    }
    insta::assert_snapshot!(text);
}

/// An apply refused because another machine holds the name, and because
/// the allow-list cannot be enforced.
#[test]
fn refusals_of_apply() {
    for version in VERSIONS {
        let b = Bottle::on(version);
        let spec = b.agent();
        let create: Vec<&str> = match version {
            "0.8.0" => vec!["machine", "create", "agent"],
            _ => vec!["machine", "create", "--name", "agent"],
        };
        b.sim(&create).status(0);
        let run = b.run(&["apply", spec.to_str().unwrap()]);
        run.status(3);
        insta::assert_snapshot!(format!("refusal_{version}"), b.normalize(&run.stderr));
    }
}

/// `gc --dry-run` and `gc` of a machine whose apply was kept after failing.
#[test]
fn gc_views() {
    let b = Bottle::new();
    let spec = b.agent();
    b.run_with(
        &[("SMOLVM_SIM_FAIL", "exec")],
        &["apply", "--keep-on-failure", spec.to_str().unwrap()],
    )
    .status(1);
    let dry = b.run(&["gc", "--dry-run"]);
    dry.status(0);
    let real = b.run(&["gc"]);
    real.status(0);
    let empty = b.run(&["gc"]);
    empty.status(0);
    insta::assert_snapshot!(format!(
        "$ bottle gc --dry-run\n{}{}$ bottle gc\n{}{}$ bottle gc\n{}{}",
        b.normalize(&dry.stdout),
        b.normalize(&dry.stderr),
        b.normalize(&real.stdout),
        b.normalize(&real.stderr),
        b.normalize(&empty.stdout),
        b.normalize(&empty.stderr),
    ));
}
