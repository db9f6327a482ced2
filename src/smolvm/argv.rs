//! Every smolvm argv bottle runs or prints, built from typed inputs.
//!
//! Owns the argv of each subcommand in each dialect of the contract. This
//! is the only place a smolvm command line is made: the plan prints these
//! calls, the executor runs them, and hints name them. User values only
//! ever appear as a flag's value, after `--`, or as types that cannot be
//! read as a flag (a [`MachineName`] starts with a letter or digit; guest
//! and host paths are absolute). `NAME:path` is formatted by
//! [`GuestTarget`] alone. Must not run anything.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;

use super::call::{Call, Op};
use super::version::Dialect;
use crate::spec::{EnvVar, GuestPath, HostPath, ImageRef, MachineName};

/// A path in a machine's guest, as `machine cp` names it: `NAME:/path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestTarget<'a> {
    pub machine: &'a MachineName,
    pub path: &'a GuestPath,
}

impl fmt::Display for GuestTarget<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.machine, self.path)
    }
}

/// What `machine create` is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Create<'a> {
    pub name: &'a MachineName,
    pub from: Option<&'a Path>,
    pub allow_cidrs: &'a [IpNet],
    pub env: &'a [EnvVar],
}

/// What `machine exec` is given besides the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exec<'a> {
    pub name: &'a MachineName,
    pub env: &'a [EnvVar],
    pub workdir: Option<&'a GuestPath>,
    pub timeout: Option<Duration>,
    /// `--stream`: smolvm passes the output on as it arrives, rather than
    /// buffering each stream and cutting it at 11 MiB. For exec steps,
    /// whose whole output goes to bottle's log.
    pub stream: bool,
}

impl<'a> Exec<'a> {
    /// An exec with nothing but the machine.
    pub fn on(name: &'a MachineName) -> Self {
        Exec {
            name,
            env: &[],
            workdir: None,
            timeout: None,
            stream: false,
        }
    }
}

/// The command line of one smolvm binary in one dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    program: String,
    dialect: Dialect,
}

impl Cli {
    pub fn new(program: &str, dialect: Dialect) -> Self {
        Cli {
            program: program.to_string(),
            dialect,
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn call<'w>(&self, op: Op, words: impl IntoIterator<Item = &'w str>) -> Call {
        let argv = std::iter::once(self.program.clone())
            .chain(words.into_iter().map(str::to_string))
            .collect();
        Call { op, argv }
    }

    /// `smolvm --version`
    pub fn version(&self) -> Call {
        self.call(Op::Version, ["--version"])
    }

    /// `smolvm pack create --image IMG -o OUT`
    pub fn pack_create(&self, image: &ImageRef, out: &Path) -> Call {
        let out = out.to_string_lossy();
        let words = ["pack", "create", "--image", image.as_str(), "-o", &out];
        self.call(Op::Pack, words)
    }

    /// `smolvm pack create --from-vm VM -o OUT`
    pub fn pack_create_from_vm(&self, vm: &MachineName, out: &Path) -> Call {
        let out = out.to_string_lossy();
        let words = ["pack", "create", "--from-vm", vm.as_str(), "-o", &out];
        self.call(Op::Pack, words)
    }

    /// `smolvm machine create [--name N] [--from P] [--net] [--allow-cidr C]… [-e K=V]… [N]`
    ///
    /// `--net` appears iff there is at least one CIDR. The name is
    /// positional and last in the positional dialect, `--name` first in
    /// the other.
    pub fn machine_create(&self, c: &Create<'_>) -> Call {
        let mut v: Vec<String> = vec!["machine".into(), "create".into()];
        if self.dialect == Dialect::NameFlag {
            v.extend(["--name".into(), c.name.to_string()]);
        }
        if let Some(from) = c.from {
            v.extend(["--from".into(), from.to_string_lossy().into_owned()]);
        }
        if !c.allow_cidrs.is_empty() {
            v.push("--net".into());
        }
        for cidr in c.allow_cidrs {
            v.extend(["--allow-cidr".into(), cidr.to_string()]);
        }
        push_env(&mut v, c.env);
        if self.dialect == Dialect::Positional {
            v.push(c.name.to_string());
        }
        self.call(Op::Create, v.iter().map(String::as_str))
    }

    /// `smolvm machine start --name N`
    pub fn machine_start(&self, name: &MachineName) -> Call {
        self.call(Op::Start, ["machine", "start", "--name", name.as_str()])
    }

    /// `smolvm machine stop --name N`
    pub fn machine_stop(&self, name: &MachineName) -> Call {
        self.call(Op::Stop, ["machine", "stop", "--name", name.as_str()])
    }

    /// `smolvm machine delete -f N` (positional) or `delete -f --name N`.
    pub fn machine_delete(&self, name: &MachineName) -> Call {
        match self.dialect {
            Dialect::Positional => {
                self.call(Op::Delete, ["machine", "delete", "-f", name.as_str()])
            }
            Dialect::NameFlag => self.call(
                Op::Delete,
                ["machine", "delete", "-f", "--name", name.as_str()],
            ),
        }
    }

    /// `smolvm machine exec --name N [-e K=V]… [-w DIR] [--timeout D] [--stream] -- CMD…`
    pub fn machine_exec(&self, e: &Exec<'_>, cmd: &[String]) -> Call {
        let mut v: Vec<String> = vec!["machine".into(), "exec".into(), "--name".into()];
        v.push(e.name.to_string());
        push_env(&mut v, e.env);
        if let Some(w) = e.workdir {
            v.extend(["-w".into(), w.to_string()]);
        }
        if let Some(t) = e.timeout {
            v.extend(["--timeout".into(), format_duration(t)]);
        }
        if e.stream {
            v.push("--stream".into());
        }
        v.push("--".into());
        v.extend(cmd.iter().cloned());
        let op = Op::Exec { timeout: e.timeout };
        self.call(op, v.iter().map(String::as_str))
    }

    /// The readiness probe: `smolvm machine exec --name N -- true`.
    pub fn probe(&self, name: &MachineName) -> Call {
        let words = ["machine", "exec", "--name", name.as_str(), "--", "true"];
        self.call(Op::Probe, words)
    }

    /// `smolvm machine cp HOST NAME:/path`
    pub fn machine_cp(&self, src: &HostPath, dst: GuestTarget<'_>) -> Call {
        let dst = dst.to_string();
        self.call(Op::Cp, ["machine", "cp", src.as_str(), &dst])
    }

    /// `smolvm machine status --name N --json`
    pub fn machine_status(&self, name: &MachineName) -> Call {
        let words = ["machine", "status", "--name", name.as_str(), "--json"];
        self.call(Op::Status, words)
    }

    /// `smolvm machine ls --json`
    pub fn machine_ls(&self) -> Call {
        self.call(Op::Ls, ["machine", "ls", "--json"])
    }
}

fn push_env(v: &mut Vec<String>, env: &[EnvVar]) {
    for var in env {
        v.extend(["-e".to_string(), var.to_string()]);
    }
}

/// A duration as smolvm's humantime parser reads it, without spaces.
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::EnvKey;

    fn name(s: &str) -> MachineName {
        MachineName::parse(s).unwrap()
    }

    #[test]
    fn create_in_name_flag_dialect_puts_name_first() {
        let cidrs = ["10.0.0.0/8".parse().unwrap()];
        let env = [EnvVar::new(EnvKey::parse("A").unwrap(), "b c").unwrap()];
        let vm = name("vm");
        let c = Create {
            name: &vm,
            from: Some(Path::new("/p.smolmachine")),
            allow_cidrs: &cidrs,
            env: &env,
        };
        let cli = Cli::new("smolvm", Dialect::NameFlag);
        assert_eq!(
            cli.machine_create(&c).to_string(),
            "smolvm machine create --name vm --from /p.smolmachine --net --allow-cidr 10.0.0.0/8 -e 'A=b c'"
        );
        let old = Cli::new("smolvm", Dialect::Positional);
        assert_eq!(
            old.machine_create(&c).to_string(),
            "smolvm machine create --from /p.smolmachine --net --allow-cidr 10.0.0.0/8 -e 'A=b c' vm"
        );
        let no_net = Create {
            allow_cidrs: &[],
            env: &[],
            ..c
        };
        assert_eq!(
            cli.machine_create(&no_net).to_string(),
            "smolvm machine create --name vm --from /p.smolmachine"
        );
    }

    #[test]
    fn delete_follows_the_dialect() {
        let vm = name("vm");
        let new = Cli::new("smolvm", Dialect::NameFlag).machine_delete(&vm);
        assert_eq!(
            new.argv,
            ["smolvm", "machine", "delete", "-f", "--name", "vm"]
        );
        let old = Cli::new("smolvm", Dialect::Positional).machine_delete(&vm);
        assert_eq!(old.argv, ["smolvm", "machine", "delete", "-f", "vm"]);
        assert_eq!(old.op, Op::Delete);
    }

    #[test]
    fn exec_keeps_flag_like_command_words_after_the_separator() {
        let vm = name("vm");
        let cmd = ["ls".to_string(), "--name".to_string(), "-e".to_string()];
        let cli = Cli::new("smolvm", Dialect::NameFlag);
        assert_eq!(
            cli.machine_exec(&Exec::on(&vm), &cmd).argv,
            [
                "smolvm", "machine", "exec", "--name", "vm", "--", "ls", "--name", "-e"
            ]
        );
        let w = GuestPath::parse("/w").unwrap();
        let e = Exec {
            workdir: Some(&w),
            timeout: Some(Duration::from_secs(90)),
            ..Exec::on(&vm)
        };
        let call = cli.machine_exec(&e, &cmd);
        assert_eq!(
            call.to_string(),
            "smolvm machine exec --name vm -w /w --timeout 1m30s -- ls --name -e"
        );
        let streamed = Exec { stream: true, ..e };
        assert_eq!(
            cli.machine_exec(&streamed, &cmd).to_string(),
            "smolvm machine exec --name vm -w /w --timeout 1m30s --stream -- ls --name -e"
        );
        assert_eq!(
            call.op,
            Op::Exec {
                timeout: Some(Duration::from_secs(90))
            }
        );
        assert_eq!(
            cli.probe(&vm).to_string(),
            "smolvm machine exec --name vm -- true"
        );
    }

    #[test]
    fn cp_names_the_guest_side_by_its_target() {
        let vm = name("vm");
        let p = GuestPath::parse("/a:b").unwrap();
        let src = HostPath::parse(Path::new("/h/f")).unwrap();
        let target = GuestTarget {
            machine: &vm,
            path: &p,
        };
        let call = Cli::new("s", Dialect::NameFlag).machine_cp(&src, target);
        assert_eq!(call.argv, ["s", "machine", "cp", "/h/f", "vm:/a:b"]);
    }

    #[test]
    fn durations_have_no_spaces() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
    }

    #[test]
    fn observation_argv() {
        let cli = Cli::new("s", Dialect::Positional);
        let vm = name("vm");
        assert_eq!(
            cli.machine_status(&vm).argv,
            ["s", "machine", "status", "--name", "vm", "--json"]
        );
        assert_eq!(cli.machine_ls().argv, ["s", "machine", "ls", "--json"]);
        assert_eq!(cli.version().argv, ["s", "--version"]);
        let img = ImageRef::parse("alpine:3").unwrap();
        assert_eq!(
            cli.pack_create(&img, Path::new("/c/k")).argv,
            ["s", "pack", "create", "--image", "alpine:3", "-o", "/c/k"]
        );
    }
}
