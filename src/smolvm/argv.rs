//! Pure argv construction, one function per smolvm subcommand.
//!
//! Every function returns the full argv, program first. User values only
//! ever appear as a flag's value, after `--`, or in positions smolvm cannot
//! read as a flag (names and paths are validated upstream to start with a
//! letter, digit or `/`).

use std::time::Duration;

use super::version::Dialect;

fn argv(program: &str, parts: &[&str]) -> Vec<String> {
    std::iter::once(program)
        .chain(parts.iter().copied())
        .map(str::to_string)
        .collect()
}

/// `smolvm --version`
pub fn version(program: &str) -> Vec<String> {
    argv(program, &["--version"])
}

/// `smolvm pack create --image IMG -o OUT`
pub fn pack_create(program: &str, image: &str, out: &str) -> Vec<String> {
    argv(program, &["pack", "create", "--image", image, "-o", out])
}

/// `smolvm pack create --from-vm VM -o OUT`
pub fn pack_create_from_vm(program: &str, vm: &str, out: &str) -> Vec<String> {
    argv(program, &["pack", "create", "--from-vm", vm, "-o", out])
}

/// What `machine create` is given besides the name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Create<'a> {
    pub name: &'a str,
    pub from: Option<&'a str>,
    pub allow_cidrs: &'a [String],
    pub env: &'a [(String, String)],
}

/// `smolvm machine create [--name N] [--from P] [--net] [--allow-cidr C]… [-e K=V]… [N]`
///
/// `--net` appears iff there is at least one CIDR. The name is positional
/// and last in the positional dialect, `--name` first in the other.
pub fn machine_create(program: &str, dialect: Dialect, c: &Create<'_>) -> Vec<String> {
    let mut v = argv(program, &["machine", "create"]);
    if dialect == Dialect::NameFlag {
        v.extend(["--name".to_string(), c.name.to_string()]);
    }
    if let Some(from) = c.from {
        v.extend(["--from".to_string(), from.to_string()]);
    }
    if !c.allow_cidrs.is_empty() {
        v.push("--net".into());
    }
    for cidr in c.allow_cidrs {
        v.extend(["--allow-cidr".to_string(), cidr.clone()]);
    }
    push_env(&mut v, c.env);
    if dialect == Dialect::Positional {
        v.push(c.name.to_string());
    }
    v
}

fn push_env(v: &mut Vec<String>, env: &[(String, String)]) {
    for (k, val) in env {
        v.extend(["-e".to_string(), format!("{k}={val}")]);
    }
}

/// `smolvm machine start --name N`
pub fn machine_start(program: &str, name: &str) -> Vec<String> {
    argv(program, &["machine", "start", "--name", name])
}

/// `smolvm machine stop --name N`
pub fn machine_stop(program: &str, name: &str) -> Vec<String> {
    argv(program, &["machine", "stop", "--name", name])
}

/// `smolvm machine delete -f N` (positional) or `delete -f --name N`.
pub fn machine_delete(program: &str, dialect: Dialect, name: &str) -> Vec<String> {
    match dialect {
        Dialect::Positional => argv(program, &["machine", "delete", "-f", name]),
        Dialect::NameFlag => argv(program, &["machine", "delete", "-f", "--name", name]),
    }
}

/// What `machine exec` is given besides the command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exec<'a> {
    pub name: &'a str,
    pub env: &'a [(String, String)],
    pub workdir: Option<&'a str>,
    pub timeout: Option<Duration>,
}

/// `smolvm machine exec --name N [-e K=V]… [-w DIR] [--timeout D] -- CMD…`
pub fn machine_exec(program: &str, e: &Exec<'_>, cmd: &[String]) -> Vec<String> {
    let mut v = argv(program, &["machine", "exec", "--name", e.name]);
    push_env(&mut v, e.env);
    if let Some(w) = e.workdir {
        v.extend(["-w".to_string(), w.to_string()]);
    }
    if let Some(t) = e.timeout {
        v.extend(["--timeout".to_string(), format_duration(t)]);
    }
    v.push("--".into());
    v.extend(cmd.iter().cloned());
    v
}

/// A duration as smolvm's humantime parser reads it, without spaces.
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

/// `smolvm machine cp SRC DST`
pub fn machine_cp(program: &str, src: &str, dst: &str) -> Vec<String> {
    argv(program, &["machine", "cp", src, dst])
}

/// `smolvm machine status --name N --json`
pub fn machine_status(program: &str, name: &str) -> Vec<String> {
    argv(program, &["machine", "status", "--name", name, "--json"])
}

/// `smolvm machine ls --json`
pub fn machine_ls(program: &str) -> Vec<String> {
    argv(program, &["machine", "ls", "--json"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_in_name_flag_dialect_puts_name_first() {
        let cidrs = ["10.0.0.0/8".to_string()];
        let c = Create {
            name: "vm",
            from: Some("/p.smolmachine"),
            allow_cidrs: &cidrs,
            env: &[],
        };
        assert_eq!(
            machine_create("smolvm", Dialect::NameFlag, &c),
            [
                "smolvm",
                "machine",
                "create",
                "--name",
                "vm",
                "--from",
                "/p.smolmachine",
                "--net",
                "--allow-cidr",
                "10.0.0.0/8"
            ]
        );
    }

    #[test]
    fn delete_in_name_flag_dialect_uses_the_flag() {
        assert_eq!(
            machine_delete("smolvm", Dialect::NameFlag, "vm"),
            ["smolvm", "machine", "delete", "-f", "--name", "vm"]
        );
    }

    #[test]
    fn exec_keeps_flag_like_command_words_after_the_separator() {
        let e = Exec {
            name: "vm",
            ..Exec::default()
        };
        let cmd = ["ls".to_string(), "--name".to_string(), "-e".to_string()];
        assert_eq!(
            machine_exec("smolvm", &e, &cmd),
            [
                "smolvm", "machine", "exec", "--name", "vm", "--", "ls", "--name", "-e"
            ]
        );
    }

    #[test]
    fn durations_have_no_spaces() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
    }

    #[test]
    fn observation_argv() {
        assert_eq!(
            machine_status("smolvm", "vm"),
            ["smolvm", "machine", "status", "--name", "vm", "--json"]
        );
        assert_eq!(machine_ls("s"), ["s", "machine", "ls", "--json"]);
        assert_eq!(version("s"), ["s", "--version"]);
    }
}
