//! End-to-end tests: the real `bottle` binary against the real
//! `smolvm-sim` binary, through real processes. One test binary.

mod support;

mod apply;
mod classify;
mod copies;
mod down_status;
mod egress;
mod failures;
mod fault_matrix;
mod fleet;
mod gc_locks;
mod invalid;
mod leftovers;
mod limits;
mod network;
mod packs;
mod parallel;
mod pipes;
mod processes;
mod readme;
mod reapply;
mod render;
mod secrets;
mod signals;
mod sim;
mod store;
mod update;
mod views;

/// `autotests = false` lets a file under `tests/runner/` be forgotten:
/// every one must be a module of this binary.
#[test]
fn every_file_under_tests_runner_is_compiled() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/runner");
    let main = std::fs::read_to_string(format!("{dir}/main.rs")).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some(module) = name.strip_suffix(".rs") else {
            continue;
        };
        if module != "main" {
            assert!(
                main.lines().any(|l| l.trim() == format!("mod {module};")),
                "tests/runner/{name} is not a module of tests/runner/main.rs"
            );
        }
    }
}

/// The simulator is an oracle: it must not import the wrapper (whose argv,
/// dialect and version tables it would then share), and the wrapper must
/// not import it.
#[test]
fn the_simulator_and_the_wrapper_do_not_import_each_other() {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let read_all = |dir: &str| -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut stack = vec![std::path::PathBuf::from(format!("{src}/{dir}"))];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    out.push((p.display().to_string(), text));
                }
            }
        }
        out
    };
    for (file, text) in read_all("sim") {
        let code = text.lines().filter(|l| !l.trim_start().starts_with("//"));
        for line in code.filter(|l| l.contains("crate::")) {
            let foreign = line
                .split("crate::")
                .skip(1)
                .any(|rest| !rest.starts_with("sim"));
            assert!(!foreign, "{file} reaches outside the simulator: {line}");
        }
    }
    for (file, text) in read_all("smolvm") {
        assert!(!text.contains("sim::"), "{file} imports the simulator");
    }
}
