//! Strict parsing of the smolvm grammar, as clap would do it: an unknown
//! flag, a missing value or a bad value is a usage error (exit 2).

use std::net::IpAddr;

use crate::smolvm::Dialect;

/// A parsed smolvm command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    Version,
    PackImage {
        image: String,
        out: String,
    },
    PackVm {
        vm: String,
        out: String,
    },
    Create {
        name: String,
        from: Option<String>,
        net: bool,
        cidrs: Vec<String>,
        env: Vec<String>,
    },
    Start {
        name: String,
    },
    Stop {
        name: String,
    },
    Delete {
        name: String,
        force: bool,
    },
    Exec {
        name: String,
        env: Vec<String>,
        workdir: Option<String>,
        cmd: Vec<String>,
    },
    Cp {
        src: String,
        dst: String,
    },
    Status {
        name: String,
    },
    Ls,
}

impl Cmd {
    /// The fault-injection step this command belongs to.
    pub fn step(&self) -> &'static str {
        match self {
            Cmd::Version => "version",
            Cmd::PackImage { .. } | Cmd::PackVm { .. } => "pack",
            Cmd::Create { .. } => "create",
            Cmd::Start { .. } => "start",
            Cmd::Stop { .. } => "stop",
            Cmd::Delete { .. } => "delete",
            Cmd::Exec { cmd, .. } if cmd.len() == 1 && cmd[0] == "true" => "probe",
            Cmd::Exec { .. } => "exec",
            Cmd::Cp { .. } => "cp",
            Cmd::Status { .. } => "status",
            Cmd::Ls => "ls",
        }
    }
}

/// What a flag takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Takes {
    Value,
    Switch,
}

/// The flags and positionals found in argv.
#[derive(Default)]
struct Found {
    values: Vec<(&'static str, String)>,
    switches: Vec<&'static str>,
    positionals: Vec<String>,
    trailing: Option<Vec<String>>,
}

impl Found {
    fn one(&self, flag: &str) -> Option<String> {
        self.values
            .iter()
            .rev()
            .find(|(f, _)| *f == flag)
            .map(|(_, v)| v.clone())
    }
    fn all(&self, flag: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(f, _)| *f == flag)
            .map(|(_, v)| v.clone())
            .collect()
    }
    fn has(&self, flag: &str) -> bool {
        self.switches.contains(&flag)
    }
    fn required(&self, flag: &'static str, shown: &str) -> Result<String, String> {
        self.one(flag).ok_or_else(|| {
            format!("the following required arguments were not provided:\n  {shown}")
        })
    }
}

/// `spec` lists (names…, canonical, takes); `dashdash` allows a trailing command.
fn scan(
    args: &[String],
    spec: &[(&[&str], &'static str, Takes)],
    dashdash: bool,
) -> Result<Found, String> {
    let mut found = Found::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" && dashdash {
            found.trailing = Some(args[i..].to_vec());
            break;
        }
        if !a.starts_with('-') || a == "-" {
            found.positionals.push(a.clone());
            continue;
        }
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let Some((_, canon, takes)) = spec.iter().find(|(names, _, _)| names.contains(&flag))
        else {
            return Err(format!("unexpected argument '{a}' found"));
        };
        match takes {
            Takes::Switch => found.switches.push(canon),
            Takes::Value => {
                let v = match inline {
                    Some(v) => v,
                    None if i < args.len() => {
                        i += 1;
                        args[i - 1].clone()
                    }
                    None => {
                        return Err(format!(
                            "a value is required for '{flag}' but none was supplied"
                        ));
                    }
                };
                found.values.push((canon, v));
            }
        }
    }
    Ok(found)
}

fn no_positionals(f: &Found) -> Result<(), String> {
    match f.positionals.first() {
        Some(p) => Err(format!("unexpected argument '{p}' found")),
        None => Ok(()),
    }
}

fn check_cidr(c: &str) -> Result<(), String> {
    let ok = match c.split_once('/') {
        Some((ip, prefix)) => {
            let max = match ip.parse::<IpAddr>() {
                Ok(IpAddr::V4(_)) => 32,
                Ok(IpAddr::V6(_)) => 128,
                Err(_) => -1,
            };
            prefix.parse::<i32>().is_ok_and(|p| (0..=max).contains(&p))
        }
        None => c.parse::<IpAddr>().is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid value '{c}' for '--allow-cidr <CIDR>': invalid CIDR"
        ))
    }
}

fn check_env(e: &str) -> Result<(), String> {
    match e.split_once('=') {
        Some((k, _)) if !k.is_empty() => Ok(()),
        _ => Err(format!(
            "invalid value '{e}' for '--env <KEY=VALUE>': expected KEY=VALUE"
        )),
    }
}

const NAME: (&[&str], &str, Takes) = (&["-n", "--name"], "--name", Takes::Value);
const ENV: (&[&str], &str, Takes) = (&["-e", "--env"], "--env", Takes::Value);

/// Parse argv (without the program) in `dialect`.
pub fn parse(args: &[String], dialect: Dialect) -> Result<Cmd, String> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["--version"] | ["-V"] => Ok(Cmd::Version),
        ["pack", "create", ..] => pack(&args[2..]),
        ["machine", sub, ..] => machine(sub, &args[2..], dialect),
        [other, ..] => Err(format!("unrecognized subcommand '{other}'")),
        [] => Err("a subcommand is required".into()),
    }
}

fn pack(args: &[String]) -> Result<Cmd, String> {
    let f = scan(
        args,
        &[
            (&["-I", "--image"], "--image", Takes::Value),
            (&["--from-vm"], "--from-vm", Takes::Value),
            (&["-o", "--output"], "--output", Takes::Value),
        ],
        false,
    )?;
    no_positionals(&f)?;
    let out = f.required("--output", "--output <OUTPUT>")?;
    match (f.one("--image"), f.one("--from-vm")) {
        (Some(image), None) => Ok(Cmd::PackImage { image, out }),
        (None, Some(vm)) => Ok(Cmd::PackVm { vm, out }),
        (Some(_), Some(_)) => {
            Err("the argument '--image <IMAGE>' cannot be used with '--from-vm <VM>'".into())
        }
        (None, None) => Err("one of '--image <IMAGE>' or '--from-vm <VM>' is required".into()),
    }
}

fn machine(sub: &str, args: &[String], dialect: Dialect) -> Result<Cmd, String> {
    match sub {
        "create" => create(args, dialect),
        "start" | "stop" => {
            let f = scan(args, &[NAME], false)?;
            no_positionals(&f)?;
            let name = f.required("--name", "--name <NAME>")?;
            Ok(if sub == "start" {
                Cmd::Start { name }
            } else {
                Cmd::Stop { name }
            })
        }
        "delete" => delete(args, dialect),
        "exec" => exec(args),
        "cp" => {
            let f = scan(args, &[], false)?;
            match f.positionals.as_slice() {
                [src, dst] => Ok(Cmd::Cp {
                    src: src.clone(),
                    dst: dst.clone(),
                }),
                [_, _, extra, ..] => Err(format!("unexpected argument '{extra}' found")),
                _ => {
                    Err("the following required arguments were not provided:\n  <SRC> <DST>".into())
                }
            }
        }
        "status" => {
            let f = scan(args, &[NAME, (&["--json"], "--json", Takes::Switch)], false)?;
            no_positionals(&f)?;
            Ok(Cmd::Status {
                name: f.required("--name", "--name <NAME>")?,
            })
        }
        "ls" | "list" => {
            let f = scan(args, &[(&["--json"], "--json", Takes::Switch)], false)?;
            no_positionals(&f)?;
            Ok(Cmd::Ls)
        }
        other => Err(format!("unrecognized subcommand '{other}'")),
    }
}

/// The machine name: positional in the old dialect, `--name` in the new.
fn name_of(f: &Found, dialect: Dialect) -> Result<String, String> {
    match dialect {
        Dialect::Positional => match f.positionals.as_slice() {
            [name] => Ok(name.clone()),
            [] => Err("the following required arguments were not provided:\n  <NAME>".into()),
            [_, extra, ..] => Err(format!("unexpected argument '{extra}' found")),
        },
        Dialect::NameFlag => {
            no_positionals(f)?;
            f.required("--name", "--name <NAME>")
        }
    }
}

fn create(args: &[String], dialect: Dialect) -> Result<Cmd, String> {
    let mut spec = vec![
        (&["--from"][..], "--from", Takes::Value),
        (&["--net"][..], "--net", Takes::Switch),
        (&["--allow-cidr"][..], "--allow-cidr", Takes::Value),
        ENV,
    ];
    if dialect == Dialect::NameFlag {
        spec.push(NAME);
    }
    let f = scan(args, &spec, false)?;
    let name = name_of(&f, dialect)?;
    let cidrs = f.all("--allow-cidr");
    cidrs.iter().try_for_each(|c| check_cidr(c))?;
    let env = f.all("--env");
    env.iter().try_for_each(|e| check_env(e))?;
    Ok(Cmd::Create {
        name,
        from: f.one("--from"),
        net: f.has("--net"),
        cidrs,
        env,
    })
}

fn delete(args: &[String], dialect: Dialect) -> Result<Cmd, String> {
    let mut spec = vec![(&["-f", "--force"][..], "--force", Takes::Switch)];
    if dialect == Dialect::NameFlag {
        spec.push(NAME);
    }
    let f = scan(args, &spec, false)?;
    Ok(Cmd::Delete {
        name: name_of(&f, dialect)?,
        force: f.has("--force"),
    })
}

fn exec(args: &[String]) -> Result<Cmd, String> {
    let f = scan(
        args,
        &[
            (&["--name"], "--name", Takes::Value),
            ENV,
            (&["-w", "--workdir"], "--workdir", Takes::Value),
            (&["--timeout"], "--timeout", Takes::Value),
        ],
        true,
    )?;
    no_positionals(&f)?;
    let name = f.required("--name", "--name <NAME>")?;
    let env = f.all("--env");
    env.iter().try_for_each(|e| check_env(e))?;
    if let Some(t) = f.one("--timeout") {
        match humantime::parse_duration(&t) {
            Ok(d) if !d.is_zero() => {}
            _ => return Err(format!("invalid value '{t}' for '--timeout <TIMEOUT>'")),
        }
    }
    let workdir = f.one("--workdir");
    let cmd = f.trailing.unwrap_or_default();
    if cmd.is_empty() {
        return Err(
            "the following required arguments were not provided:\n  -- <COMMAND>...".into(),
        );
    }
    Ok(Cmd::Exec {
        name,
        env,
        workdir,
        cmd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str, d: Dialect) -> Result<Cmd, String> {
        let v: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        parse(&v, d)
    }

    #[test]
    fn create_follows_the_dialect() {
        let c = p(
            "machine create --from /p --net --allow-cidr 10.0.0.0/8 -e A=b vm",
            Dialect::Positional,
        )
        .unwrap();
        assert_eq!(
            c,
            Cmd::Create {
                name: "vm".into(),
                from: Some("/p".into()),
                net: true,
                cidrs: vec!["10.0.0.0/8".into()],
                env: vec!["A=b".into()]
            }
        );
        assert!(
            p("machine create vm", Dialect::NameFlag)
                .unwrap_err()
                .contains("unexpected argument 'vm'")
        );
        assert!(
            p("machine create --name vm", Dialect::Positional)
                .unwrap_err()
                .contains("'--name'")
        );
        assert!(p("machine create --name vm", Dialect::NameFlag).is_ok());
    }

    #[test]
    fn bad_values_and_flags_are_usage_errors() {
        let d = Dialect::NameFlag;
        assert!(
            p("machine create --name vm --allow-cidr 10.0.0.0/33", d)
                .unwrap_err()
                .contains("invalid CIDR")
        );
        assert!(p("machine create --name vm --allow-cidr 1.2.3.4", d).is_ok());
        assert!(
            p("machine create --name vm -e NOEQUALS", d)
                .unwrap_err()
                .contains("KEY=VALUE")
        );
        assert!(
            p("machine start --name vm --bogus", d)
                .unwrap_err()
                .contains("'--bogus'")
        );
        assert!(
            p("machine exec --name vm true", d)
                .unwrap_err()
                .contains("unexpected argument 'true'")
        );
        assert!(
            p("machine exec --name vm --", d)
                .unwrap_err()
                .contains("<COMMAND>")
        );
        assert!(
            p("machine exec --name vm --timeout 0s -- true", d)
                .unwrap_err()
                .contains("--timeout")
        );
        assert!(
            p("pack create --image x", d)
                .unwrap_err()
                .contains("--output")
        );
        assert!(
            p("machine frobnicate", d)
                .unwrap_err()
                .contains("unrecognized subcommand")
        );
    }

    #[test]
    fn exec_takes_everything_after_the_separator() {
        let c = p(
            "machine exec --name vm -w /w -- ls --name -e",
            Dialect::NameFlag,
        )
        .unwrap();
        let Cmd::Exec { cmd, workdir, .. } = &c else {
            panic!("{c:?}")
        };
        assert_eq!(cmd, &["ls", "--name", "-e"]);
        assert_eq!(workdir.as_deref(), Some("/w"));
        assert_eq!(c.step(), "exec");
        assert_eq!(
            p("machine exec --name vm -- true", Dialect::NameFlag)
                .unwrap()
                .step(),
            "probe"
        );
    }
}
