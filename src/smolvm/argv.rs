//! Every smolvm argv bottle runs or prints, built from typed inputs.
//!
//! Owns the argv of each subcommand in each dialect of the contract. This
//! is the only place a smolvm command line is made: the plan prints these
//! calls, the executor runs them, and hints name them. User values only
//! ever appear as a flag's value, after `--`, or as types that cannot be
//! read as a flag (a [`MachineName`] starts with a letter or digit; guest
//! and host paths are absolute). `NAME:path` is formatted by
//! [`GuestTarget`] alone. A secret never appears in an argv: `exec` names
//! it as `--secret-env GUEST_VAR=BOTTLE_SECRET_GUEST_VAR` and the value
//! goes into the call's environment ([`Call::env`]). Must not run anything.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;

use super::call::{Call, ChildVar, Op};
use super::version::Dialect;
use crate::spec::{EnvKey, EnvVar, GuestPath, HostName, HostPath, ImageRef, MachineName, Secret};

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

/// One `--allow-host` value: a host name, or an address (which smolvm
/// takes as it is). Neither can be read as a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowHost<'a> {
    Name(&'a HostName),
    Addr(IpAddr),
}

impl fmt::Display for AllowHost<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowHost::Name(n) => f.write_str(n.as_str()),
            AllowHost::Addr(a) => a.fmt(f),
        }
    }
}

/// What `machine create` is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Create<'a> {
    pub name: &'a MachineName,
    pub from: Option<&'a Path>,
    pub allow_cidrs: &'a [IpNet],
    pub allow_hosts: &'a [AllowHost<'a>],
    pub env: &'a [EnvVar],
}

impl Create<'_> {
    /// Whether there is an allow-list (and so a network).
    fn has_allow_list(&self) -> bool {
        !self.allow_cidrs.is_empty() || !self.allow_hosts.is_empty()
    }
}

/// What `machine exec` is given besides the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exec<'a> {
    pub name: &'a MachineName,
    pub env: &'a [EnvVar],
    /// Secrets given through smolvm's environment (`--secret-env`, which
    /// only smolvm 1.0.0 and later have: see `Version::has_secret_env`).
    pub secrets: &'a [Secret],
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
            secrets: &[],
            workdir: None,
            timeout: None,
            stream: false,
        }
    }
}

/// The variable of smolvm's environment that carries secret `name`:
/// `BOTTLE_SECRET_NAME`, a prefix no smolvm setting uses.
pub fn secret_env_var(name: &EnvKey) -> String {
    format!("BOTTLE_SECRET_{name}")
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
        Call {
            op,
            argv,
            env: Vec::new(),
        }
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

    /// `smolvm machine create [--name N] [--from P] [--net] [--allow-cidr C]… [--allow-host H]… [-e K=V]… [N]`
    ///
    /// `--net` appears iff there is an allow-list (a CIDR or a host): on
    /// the `--from` path a list alone does not switch networking on. The
    /// name is positional and last in the positional dialect, `--name`
    /// first in the other.
    pub fn machine_create(&self, c: &Create<'_>) -> Call {
        let mut v: Vec<String> = vec!["machine".into(), "create".into()];
        if self.dialect == Dialect::NameFlag {
            v.extend(["--name".into(), c.name.to_string()]);
        }
        if let Some(from) = c.from {
            v.extend(["--from".into(), from.to_string_lossy().into_owned()]);
        }
        if c.has_allow_list() {
            v.push("--net".into());
        }
        for cidr in c.allow_cidrs {
            v.extend(["--allow-cidr".into(), cidr.to_string()]);
        }
        for host in c.allow_hosts {
            v.extend(["--allow-host".into(), host.to_string()]);
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

    /// `smolvm machine exec --name N [-e K=V]… [--secret-env K=BOTTLE_SECRET_K]…
    /// [-w DIR] [--timeout D] [--stream] -- CMD…`, each secret's value in the
    /// call's environment as `BOTTLE_SECRET_K`.
    pub fn machine_exec(&self, e: &Exec<'_>, cmd: &[String]) -> Call {
        let mut v: Vec<String> = vec!["machine".into(), "exec".into(), "--name".into()];
        v.push(e.name.to_string());
        push_env(&mut v, e.env);
        for s in e.secrets {
            v.extend([
                "--secret-env".into(),
                format!("{}={}", s.name, secret_env_var(&s.name)),
            ]);
        }
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
        let mut call = self.call(op, v.iter().map(String::as_str));
        call.env = e.secrets.iter().map(child_var).collect();
        call
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

    /// `smolvm machine cp --mode OCTAL SRC NAME:/path` (smolvm 1.9.0 on):
    /// an upload given these permission bits.
    pub fn machine_cp_mode(&self, src: &HostPath, dst: GuestTarget<'_>, mode: u32) -> Call {
        let (dst, mode) = (dst.to_string(), format!("{:o}", mode & 0o7777));
        self.call(
            Op::Cp,
            ["machine", "cp", "--mode", &mode, src.as_str(), &dst],
        )
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

fn child_var(s: &Secret) -> ChildVar {
    ChildVar {
        name: secret_env_var(&s.name),
        value: s.value.clone(),
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
            allow_hosts: &[],
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
    fn allow_hosts_follow_the_cidrs_and_switch_networking_on() {
        let vm = name("vm");
        let cidrs = ["10.0.0.0/8".parse().unwrap()];
        let proxy = HostName::parse("proxy.internal").unwrap();
        let hosts = [
            AllowHost::Addr("10.0.0.0".parse().unwrap()),
            AllowHost::Name(&proxy),
            AllowHost::Addr("fd00::1".parse().unwrap()),
        ];
        let c = Create {
            name: &vm,
            from: None,
            allow_cidrs: &cidrs,
            allow_hosts: &hosts,
            env: &[],
        };
        let old = Cli::new("smolvm", Dialect::Positional);
        assert_eq!(
            old.machine_create(&c).to_string(),
            "smolvm machine create --net --allow-cidr 10.0.0.0/8 --allow-host 10.0.0.0 \
             --allow-host proxy.internal --allow-host fd00::1 vm"
        );
        let hosts_only = Create {
            allow_cidrs: &[],
            allow_hosts: &hosts[1..2],
            ..c
        };
        assert_eq!(
            old.machine_create(&hosts_only).to_string(),
            "smolvm machine create --net --allow-host proxy.internal vm"
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
    fn exec_secrets_are_named_in_argv_and_valued_only_in_the_environment() {
        let vm = name("vm");
        let secret = |n: &str, v: &str| Secret {
            name: EnvKey::parse(n).unwrap(),
            value: crate::spec::SecretValue::new(v.as_bytes().to_vec()),
        };
        let secrets = [secret("API_KEY", "v4lue-one"), secret("TOKEN", "v4lue-two")];
        let env = [EnvVar::new(EnvKey::parse("A").unwrap(), "b").unwrap()];
        let e = Exec {
            env: &env,
            secrets: &secrets,
            ..Exec::on(&vm)
        };
        let cmd = ["sh".to_string(), "-c".to_string(), "agent".to_string()];
        let call = Cli::new("smolvm", Dialect::NameFlag).machine_exec(&e, &cmd);
        assert_eq!(
            call.to_string(),
            "smolvm machine exec --name vm -e A=b --secret-env API_KEY=BOTTLE_SECRET_API_KEY \
             --secret-env TOKEN=BOTTLE_SECRET_TOKEN -- sh -c agent"
        );
        let env: Vec<(&str, &[u8])> = call
            .env
            .iter()
            .map(|v| (v.name.as_str(), v.value.expose()))
            .collect();
        assert_eq!(
            env,
            [
                ("BOTTLE_SECRET_API_KEY", &b"v4lue-one"[..]),
                ("BOTTLE_SECRET_TOKEN", &b"v4lue-two"[..])
            ]
        );
        let shown = format!("{call} {call:?}");
        assert!(!shown.contains("v4lue"), "{shown}");
    }

    #[test]
    fn calls_without_secrets_set_no_environment() {
        let vm = name("vm");
        let cli = Cli::new("smolvm", Dialect::Positional);
        let calls = [
            cli.machine_exec(&Exec::on(&vm), &["true".to_string()]),
            cli.probe(&vm),
            cli.machine_start(&vm),
        ];
        for c in calls {
            assert!(c.env.is_empty(), "{c:?}");
            assert!(!c.argv.iter().any(|w| w == "--secret-env"), "{c}");
        }
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
