//! The command line each release accepts and refuses, as the contract
//! states it. A refusal is clap's own usage error: exit 2 and clap's text.

use std::time::Duration;

use clap::error::ErrorKind;

use super::super::cmd::{Cmd, Create, Exec, Owner, Pack, PackSource};
use super::super::grammar::parse;
use super::super::release::Release;
use super::super::secrets::{SecretEnv, SecretFile, Secrets};

/// Both ends of each grammar era.
const POSITIONAL: [&str; 4] = ["0.8.0", "0.9.5", "1.0.0", "1.0.1"];
const NAME_FLAG: [&str; 4] = ["1.0.2", "1.7.9", "1.8.0", "1.9.3"];

fn argv(line: &str) -> Vec<String> {
    std::iter::once("smolvm")
        .chain(line.split_whitespace())
        .map(String::from)
        .collect()
}

fn on(version: &str, line: &str) -> Result<Cmd, clap::Error> {
    let release = Release(semver::Version::parse(version).unwrap());
    parse(&release, &argv(line))
}

#[track_caller]
fn accepted(version: &str, line: &str) -> Cmd {
    on(version, line).unwrap_or_else(|e| panic!("{version}: `{line}` refused:\n{}", e.render()))
}

/// Refused with exit 2, clap's `error: …` first line containing `wanted`,
/// and clap's closing help line.
#[track_caller]
fn refused(version: &str, line: &str, wanted: &str) -> clap::Error {
    let Err(e) = on(version, line) else {
        panic!("{version}: `{line}` was accepted");
    };
    let text = e.render().to_string();
    assert_eq!(e.exit_code(), 2, "{version}: `{line}`:\n{text}");
    assert!(e.use_stderr(), "{version}: `{line}`");
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: ") && first.contains(wanted),
        "{version}: `{line}`:\n{text}"
    );
    assert!(
        text.ends_with("For more information, try '--help'.\n"),
        "{text}"
    );
    e
}

/// Refused as an argument that does not exist in this release, with
/// clap's usage line of the subcommand.
#[track_caller]
fn unknown(version: &str, line: &str, arg: &str) {
    let e = refused(version, line, &format!("unexpected argument '{arg}' found"));
    assert_eq!(e.kind(), ErrorKind::UnknownArgument, "{version}: `{line}`");
    let text = e.render().to_string();
    assert!(
        text.contains("\nUsage: smolvm machine "),
        "{version}: `{line}`:\n{text}"
    );
}

fn create(name: &str) -> Create {
    Create {
        name: name.into(),
        ..Create::default()
    }
}

#[test]
fn the_positional_dialect_names_the_machine_last_in_create_and_delete() {
    for v in POSITIONAL {
        assert_eq!(accepted(v, "machine create vm"), Cmd::Create(create("vm")));
        let full = "machine create --from /p.smolmachine --net --allow-cidr 10.0.0.0/8 \
                    --allow-cidr 192.168.50.2 --allow-host proxy -e A=b --env C=d vm";
        let want = Create {
            from: Some("/p.smolmachine".into()),
            net: true,
            cidrs: vec!["10.0.0.0/8".into(), "192.168.50.2/32".into()],
            hosts: vec!["proxy".into()],
            env: vec!["A=b".into(), "C=d".into()],
            ..create("vm")
        };
        assert_eq!(accepted(v, full), Cmd::Create(want));
        for line in ["machine delete -f vm", "machine delete --force vm"] {
            let want = Cmd::Delete {
                name: "vm".into(),
                force: true,
            };
            assert_eq!(accepted(v, line), want, "{v}: {line}");
        }
        let asks = Cmd::Delete {
            name: "vm".into(),
            force: false,
        };
        assert_eq!(accepted(v, "machine delete vm"), asks);
    }
}

#[test]
fn the_positional_dialect_refuses_the_name_flag_forms() {
    for v in POSITIONAL {
        unknown(v, "machine create --name vm", "--name");
        unknown(v, "machine create -n vm", "-n");
        unknown(v, "machine delete -f --name vm", "--name");
        refused(v, "machine create", "required arguments were not provided");
    }
}

#[test]
fn the_name_flag_dialect_takes_dash_n_or_dash_dash_name_in_create_and_delete() {
    for v in NAME_FLAG {
        for line in ["machine create --name vm", "machine create -n vm"] {
            assert_eq!(accepted(v, line), Cmd::Create(create("vm")), "{v}: {line}");
        }
        let full = "machine create --name vm --from /p.smolmachine --net \
                    --allow-cidr fd00::/64 --allow-host 10.1.2.3 -e A=b";
        let want = Create {
            from: Some("/p.smolmachine".into()),
            net: true,
            cidrs: vec!["fd00::/64".into()],
            hosts: vec!["10.1.2.3".into()],
            env: vec!["A=b".into()],
            ..create("vm")
        };
        assert_eq!(accepted(v, full), Cmd::Create(want));
        for line in [
            "machine delete -f --name vm",
            "machine delete --force -n vm",
        ] {
            let want = Cmd::Delete {
                name: "vm".into(),
                force: true,
            };
            assert_eq!(accepted(v, line), want, "{v}: {line}");
        }
    }
}

#[test]
fn the_name_flag_dialect_refuses_the_positional_forms() {
    for v in NAME_FLAG {
        unknown(v, "machine create vm", "vm");
        unknown(v, "machine create --from /p.smolmachine --net vm", "vm");
        unknown(v, "machine delete -f vm", "vm");
        refused(v, "machine create", "required arguments were not provided");
    }
}

#[test]
fn the_forms_both_dialects_share() {
    for v in POSITIONAL.iter().chain(&NAME_FLAG) {
        let start = Cmd::Start { name: "vm".into() };
        assert_eq!(accepted(v, "machine start --name vm"), start);
        assert_eq!(accepted(v, "machine start -n vm"), start);
        let stop = Cmd::Stop { name: "vm".into() };
        assert_eq!(accepted(v, "machine stop --name vm"), stop);
        assert_eq!(accepted(v, "machine stop -n vm"), stop);
        let status = Cmd::Status {
            name: "vm".into(),
            json: true,
        };
        assert_eq!(accepted(v, "machine status --name vm --json"), status);
        assert_eq!(accepted(v, "machine ls --json"), Cmd::Ls { json: true });
        let cp = accepted(v, "machine cp /host/f vm:/guest/f");
        let Cmd::Cp(cp) = cp else { panic!("{cp:?}") };
        assert_eq!(
            (cp.src.as_str(), cp.dst.as_str()),
            ("/host/f", "vm:/guest/f")
        );
        let pack = Cmd::Pack(Pack {
            source: PackSource::Image("img:1".into()),
            out: "/c/p".into(),
        });
        assert_eq!(accepted(v, "pack create --image img:1 -o /c/p"), pack);
        assert_eq!(accepted(v, "pack create -I img:1 --output /c/p"), pack);
        let from_vm = Cmd::Pack(Pack {
            source: PackSource::Vm("vm".into()),
            out: "/c/p".into(),
        });
        assert_eq!(accepted(v, "pack create --from-vm vm -o /c/p"), from_vm);
        unknown(v, "machine start --name vm --bogus", "--bogus");
        unknown(v, "machine start vm", "vm");
        refused(v, "machine start", "required arguments were not provided");
        refused(
            v,
            "machine frobnicate",
            "unrecognized subcommand 'frobnicate'",
        );
    }
}

#[test]
fn exec_takes_long_only_name_its_flags_and_a_command_after_the_separator() {
    for v in POSITIONAL.iter().chain(&NAME_FLAG) {
        let line = "machine exec --name vm -e A=b -w /work --timeout 1m30s -i -t --stream \
                    -- ls --name -e";
        let want = Exec {
            name: "vm".into(),
            env: vec!["A=b".into()],
            workdir: Some("/work".into()),
            timeout: Some(Duration::from_secs(90)),
            interactive: true,
            tty: true,
            stream: true,
            cmd: vec!["ls".into(), "--name".into(), "-e".into()],
            ..Exec::default()
        };
        assert_eq!(accepted(v, line), Cmd::Exec(want));
        assert_eq!(
            accepted(v, "machine exec --name vm --workdir /w --env K=V -- true").step(),
            "probe"
        );
        unknown(v, "machine exec -n vm -- true", "-n");
        unknown(v, "machine exec --name vm true", "true");
        refused(
            v,
            "machine exec --name vm --",
            "required arguments were not provided",
        );
        refused(
            v,
            "machine exec --name vm",
            "required arguments were not provided",
        );
    }
}

#[test]
fn secret_flags_exist_from_1_0_0() {
    let exec =
        "machine exec --name vm --secret-env TOKEN=HOST_TOKEN --secret-file K=/run/k -- true";
    for v in ["0.8.0", "0.9.9", "1.0.0-rc.1"] {
        unknown(v, exec, "--secret-env");
        unknown(
            v,
            "machine create --secret-file K=/run/k vm",
            "--secret-file",
        );
    }
    let secrets = Secrets {
        env: vec![SecretEnv {
            guest: "TOKEN".into(),
            host: "HOST_TOKEN".into(),
        }],
        files: vec![SecretFile {
            guest: "K".into(),
            path: "/run/k".into(),
        }],
    };
    for v in ["1.0.0", "1.0.1", "1.9.3"] {
        let Cmd::Exec(e) = accepted(v, exec) else {
            panic!("{v}")
        };
        assert_eq!(e.secrets, secrets, "{v}");
    }
    let c = accepted("1.0.1", "machine create --secret-env TOKEN=HOST_TOKEN vm");
    let Cmd::Create(c) = c else { panic!("{c:?}") };
    assert_eq!(c.secrets.env, secrets.env);
    refused(
        "1.9.3",
        "machine exec --name vm --secret-file K=run/k -- true",
        "must be absolute",
    );
    refused(
        "1.9.3",
        "machine exec --name vm --secret-env TOKEN -- true",
        "GUEST_VAR=",
    );
}

#[test]
fn cp_ownership_and_exec_detach_exist_from_1_9_0() {
    for v in ["1.8.9", "1.9.0-rc.1"] {
        unknown(v, "machine cp /f vm:/f --mode 644", "--mode");
        unknown(v, "machine cp /f vm:/f --uid 1000", "--uid");
        unknown(v, "machine exec --name vm -d -- true", "-d");
        unknown(v, "machine exec --name vm --detach -- true", "--detach");
    }
    for v in ["1.9.0", "1.9.3"] {
        let cp = accepted(v, "machine cp /f vm:/f --mode 0640 --uid 1000 --gid 100");
        let Cmd::Cp(cp) = cp else { panic!("{cp:?}") };
        let want = Owner {
            mode: Some(0o640),
            uid: Some(1000),
            gid: Some(100),
        };
        assert_eq!(cp.owner, want);
        let Cmd::Exec(e) = accepted(v, "machine exec --name vm -d -- true") else {
            panic!("{v}")
        };
        assert!(e.detach);
        refused(
            v,
            "machine cp /f vm:/f --mode rwx",
            "invalid value 'rwx' for '--mode <OCTAL>'",
        );
    }
}

#[test]
fn values_smolvm_refuses_are_clap_value_errors() {
    let v = "1.9.3";
    let bad_cidr = refused(
        v,
        "machine create --name vm --allow-cidr 10.0.0.0/40",
        "invalid value '10.0.0.0/40' for '--allow-cidr <CIDR>'",
    );
    assert_eq!(bad_cidr.kind(), ErrorKind::ValueValidation);
    refused(
        v,
        "machine create --name vm --allow-cidr proxy.internal",
        "'--allow-cidr <CIDR>'",
    );
    refused(
        v,
        "machine create --name vm -e NOVALUE",
        "invalid value 'NOVALUE' for '--env <KEY=VALUE>'",
    );
    refused(
        v,
        "machine exec --name vm -e NOVALUE -- true",
        "'--env <KEY=VALUE>'",
    );
    refused(
        v,
        "machine exec --name vm --timeout 0s -- true",
        "invalid value '0s' for '--timeout <TIMEOUT>'",
    );
    refused(
        v,
        "machine exec --name vm --timeout soon -- true",
        "'--timeout <TIMEOUT>'",
    );
    refused(
        v,
        "machine create --name vm --allow-host proxy:8080",
        "'--allow-host <HOST>'",
    );
    refused(
        v,
        "machine create --name a--b",
        "invalid value 'a--b' for '--name <NAME>'",
    );
    refused("0.8.0", "machine create -x", "unexpected argument '-x'");
    refused(
        "0.8.0",
        "machine create bad.name",
        "invalid value 'bad.name' for '<NAME>'",
    );
}

#[test]
fn pack_create_needs_one_source_and_an_output() {
    for v in ["0.8.0", "1.9.3"] {
        refused(
            v,
            "pack create --image img:1",
            "required arguments were not provided",
        );
        refused(
            v,
            "pack create -o /c/p",
            "required arguments were not provided",
        );
        refused(
            v,
            "pack create --image img:1 --from-vm vm -o /c/p",
            "cannot be used with",
        );
    }
}

#[test]
fn create_from_a_pack_conflicts_with_an_image() {
    refused(
        "1.9.3",
        "machine create --name vm --from /p.smolmachine --image alpine",
        "cannot be used with",
    );
    let c = accepted("1.9.3", "machine create --name vm --image alpine");
    let Cmd::Create(c) = c else { panic!("{c:?}") };
    assert_eq!(c.image.as_deref(), Some("alpine"));
}

#[test]
fn version_and_help_print_on_stdout_and_exit_0() {
    for (v, shown) in [
        ("0.8.0", "smolvm 0.8.0 ("),
        ("1.8.0-rc.1", "smolvm 1.8.0-rc.1 ("),
    ] {
        for flag in ["--version", "-V"] {
            let e = on(v, flag).unwrap_err();
            assert_eq!(
                (e.kind(), e.exit_code(), e.use_stderr()),
                (ErrorKind::DisplayVersion, 0, false)
            );
            let text = e.render().to_string();
            assert_eq!(text, format!("{shown}smolvm-sim: simulated, no VM runs)\n"));
        }
    }
    let help = on("1.9.3", "machine exec --help").unwrap_err();
    assert_eq!((help.exit_code(), help.use_stderr()), (0, false));
    assert!(help.render().to_string().contains("--secret-env"));
    let old_help = on("0.8.0", "machine exec --help")
        .unwrap_err()
        .render()
        .to_string();
    assert!(!old_help.contains("--secret-env"), "{old_help}");
}
