//! The kernel's argument limit: a spec whose `create` call would not start
//! is a located spec error before any smolvm call, and a long argv in a
//! message is shortened.

use std::os::unix::process::CommandExt;

use crate::support::{Bottle, Run};

/// A spec named `big` whose `[env]` has an entry per value in `values`.
fn spec_with_env(b: &Bottle, values: &[usize]) -> String {
    let mut text = "name = \"big\"\n[image]\nref = \"img:1\"\n[env]\n".to_string();
    for (i, n) in values.iter().enumerate() {
        text.push_str(&format!("V{i} = \"{}\"\n", "v".repeat(*n)));
    }
    let path = b.write("big.toml", &text);
    path.to_str().expect("utf-8").to_string()
}

/// Run bottle with a stack size limit of `stack` bytes, which sets the
/// kernel's argument limit to a quarter of it.
fn run_with_stack(b: &Bottle, stack_bytes: u64, args: &[&str]) -> Run {
    let mut command = b.bottle_command(args);
    let stack = rustix::process::Resource::Stack;
    let limit = rustix::process::Rlimit {
        current: Some(stack_bytes),
        maximum: rustix::process::getrlimit(stack).maximum,
    };
    // SAFETY: setrlimit is a plain system call, safe between fork and exec.
    unsafe {
        command.pre_exec(move || Ok(rustix::process::setrlimit(stack, limit)?));
    }
    let out = command.output().expect("spawn bottle");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

#[test]
fn an_env_value_longer_than_one_argument_may_be_is_refused_before_any_call() {
    let b = Bottle::new();
    let spec = spec_with_env(&b, &[10, 200_000]);
    let mut shown = String::new();
    for command in ["apply", "plan"] {
        let run = b.run(&[command, &spec]);
        run.status(2);
        assert!(b.calls().is_empty(), "{command}: {:?}", b.calls());
        assert!(
            run.stderr.len() < 1000,
            "{command}: {} bytes",
            run.stderr.len()
        );
        shown = b.normalize(&run.stderr);
    }
    insta::assert_snapshot!(shown);
}

#[test]
fn a_command_line_over_a_quarter_of_the_stack_limit_is_refused_before_any_call() {
    let b = Bottle::new();
    let spec = spec_with_env(&b, &[100_000, 100_000, 10, 100_001]);
    let run = run_with_stack(&b, 1 << 20, &["apply", &spec]);
    run.status(2)
        .stderr_has("big.toml:8:1: `env`: smolvm's `create` command line would take")
        .stderr_has("over this system's limit of 262144 bytes (a quarter of the stack size limit")
        .stderr_has("`[env]` takes 300");
    assert!(b.calls().is_empty(), "{:?}", b.calls());
    assert!(run.stderr.len() < 1500, "{} bytes", run.stderr.len());
    run_with_stack(&b, 8 << 20, &["apply", &spec]).status(0);
    let m = &b.world().machines["big"];
    assert_eq!(m.env.len(), 4, "the same spec runs under a larger limit");
}

#[test]
fn a_long_argv_in_an_error_is_shortened() {
    let b = Bottle::new();
    let script = format!("echo {}", "x".repeat(50_000));
    let text = format!(
        "name = \"long\"\n[image]\nref = \"img:1\"\n[[exec]]\nrun = [\"sh\", \"-c\", \"{script}\"]\n"
    );
    let spec = b.write("long.toml", &text);
    let run = b.run_with(
        &[("SMOLVM_SIM_FAIL", "exec")],
        &["apply", spec.to_str().unwrap()],
    );
    run.status(1)
        .stderr_has("long: exec sh -c echo xxx")
        .stderr_has("…(50011 bytes)");
    let stderr = b.normalize(&run.stderr);
    let argv = "`smolvm machine exec --name long --stream -- sh -c 'echo xxx";
    let at = stderr.find(argv).expect(&stderr);
    let shown = &stderr[at..];
    let end = shown.find(" bytes)` exited with code 1").expect(&stderr);
    assert!(shown[..end].contains("xxx…("), "{stderr}");
    assert!(end < 400, "{stderr}");
    assert!(
        run.stderr.len() < 3000,
        "{} bytes:\n{}",
        run.stderr.len(),
        run.stderr
    );
}
