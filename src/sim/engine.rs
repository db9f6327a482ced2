//! The simulator's semantics: what each smolvm command does to the world,
//! with the messages and exit codes of the contract.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::smolvm::{Dialect, Output, Version};

use super::args::{self, Cmd};
use super::guest::{self, Guest};
use super::knobs::Knobs;
use super::world::{Home, Machine, Orphan, World};

/// What a call does: return, or never return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Done(Output),
    Hang,
}

/// The first bytes of every pack the simulator writes.
pub const PACK_MAGIC: &str = "SMOLVM-SIM-PACK v1\n";
/// Marks `--version` output as the simulator's.
pub const VERSION_MARK: &str = "smolvm-sim";

fn out(code: i32, stdout: impl Into<String>, stderr: impl Into<String>) -> Output {
    Output {
        code,
        stdout: stdout.into(),
        stderr: stderr.into(),
    }
}

fn ok(stdout: impl Into<String>) -> Output {
    out(0, stdout, "")
}

fn fail(msg: impl std::fmt::Display) -> Output {
    out(1, "", format!("Error: {msg}\n"))
}

fn not_found(name: &str) -> Output {
    fail(format!("vm not found: {name}"))
}

/// A simulated smolvm.
#[derive(Debug, Clone)]
pub struct Engine {
    pub knobs: Knobs,
    pub home: Home,
}

impl Engine {
    pub fn new(knobs: Knobs) -> Self {
        let home = Home::new(&knobs.home);
        Engine { knobs, home }
    }

    fn version(&self) -> Version {
        self.knobs.version.clone()
    }

    fn dialect(&self) -> Dialect {
        self.version().dialect().unwrap_or(Dialect::NameFlag)
    }

    /// Handle one invocation; `argv[0]` is the program.
    pub fn call(&self, argv: &[String]) -> Reply {
        std::thread::sleep(self.knobs.latency);
        let parsed = args::parse(argv.get(1..).unwrap_or_default(), self.dialect());
        if matches!(parsed, Ok(Cmd::Start { .. })) {
            std::thread::sleep(self.knobs.boot);
        }
        let result = self.home.with_world(|w| {
            let _ = self.home.log_call(argv);
            match parsed {
                Ok(cmd) => self
                    .faulted(w, &cmd)
                    .unwrap_or_else(|| Reply::Done(self.apply(w, cmd))),
                Err(msg) => Reply::Done(out(
                    2,
                    "",
                    format!("error: {msg}\n\nFor more information, try '--help'.\n"),
                )),
            }
        });
        result.unwrap_or_else(|e| {
            Reply::Done(fail(format!(
                "smolvm-sim state at {}: {e}",
                self.home.dir.display()
            )))
        })
    }

    /// Count the call and fire an injected fault, if one is due.
    fn faulted(&self, w: &mut World, cmd: &Cmd) -> Option<Reply> {
        let step = cmd.step();
        let count = w.counts.entry(step.to_string()).or_insert(0);
        *count += 1;
        let n = *count;
        if self.knobs.hang.get(step).is_some_and(|when| when.fires(n)) {
            return Some(Reply::Hang);
        }
        if self.knobs.fail.get(step).is_some_and(|when| when.fires(n)) {
            return Some(Reply::Done(fail(format!(
                "simulated failure of {step} (call {n})"
            ))));
        }
        None
    }

    fn apply(&self, w: &mut World, cmd: Cmd) -> Output {
        match cmd {
            Cmd::Version => ok(format!(
                "smolvm {} ({VERSION_MARK}: simulated, no VM runs)\n",
                self.version()
            )),
            Cmd::PackImage { image, out } => self.pack(&out, &format!("image {image}")),
            Cmd::PackVm { vm, out } => match w.machines.contains_key(&vm) {
                true => self.pack(&out, &format!("vm {vm}")),
                false => not_found(&vm),
            },
            Cmd::Create {
                name,
                from,
                net,
                cidrs,
                env,
            } => self.create(w, name, from, net, cidrs, env),
            Cmd::Start { name } => self.start(w, &name),
            Cmd::Stop { name } => self.stop(w, &name),
            Cmd::Delete { name, force } => self.delete(w, &name, force),
            Cmd::Exec {
                name,
                env,
                workdir,
                cmd,
            } => self.exec(w, &name, &env, workdir, &cmd),
            Cmd::Cp { src, dst } => self.cp(w, &src, &dst),
            Cmd::Status { name } => match w.machines.get(&name) {
                Some(m) => ok(format!("{:#}\n", view(&name, m))),
                None => fail(format!(
                    "config operation failed: machine status: machine '{name}' not found"
                )),
            },
            Cmd::Ls => {
                let all: Vec<_> = w.machines.iter().map(|(n, m)| view(n, m)).collect();
                ok(format!("{:#}\n", serde_json::Value::Array(all)))
            }
        }
    }

    fn pack(&self, out_path: &str, what: &str) -> Output {
        if self.version() >= Version::new(1, 7, 0) && out_path.ends_with(".smolmachine") {
            return fail("output path must not end in .smolmachine; the pack is written beside it");
        }
        let sidecar = format!("{out_path}.smolmachine");
        let stub = "#!/bin/sh\necho 'smolvm-sim pack stub: nothing to run' >&2\nexit 1\n";
        let written = fs::write(out_path, stub)
            .and_then(|()| fs::write(&sidecar, format!("{PACK_MAGIC}{what}\n")));
        match written {
            Ok(()) => ok(format!("Packed {what} into {sidecar}\n")),
            Err(e) => fail(format!("pack failed: {e}")),
        }
    }

    fn create(
        &self,
        w: &mut World,
        name: String,
        from: Option<String>,
        net: bool,
        cidrs: Vec<String>,
        env: Vec<String>,
    ) -> Output {
        if w.machines.contains_key(&name) {
            let tail = if self.dialect() == Dialect::NameFlag {
                " or is being created"
            } else {
                ""
            };
            return fail(format!(
                "config operation failed: create machine: machine '{name}' already exists{tail}"
            ));
        }
        if let Some(p) = &from {
            let is_pack = fs::read_to_string(p).is_ok_and(|t| t.starts_with(PACK_MAGIC));
            if !is_pack {
                return fail(format!("invalid pack {p}: no smolmachine footer"));
            }
        }
        let network = net || (!cidrs.is_empty() && from.is_none());
        let dropped = from.is_some() && self.version() < crate::smolvm::version::EGRESS_FIXED;
        let egress = match (network, cidrs.is_empty(), dropped) {
            (false, _, _) => "none",
            (true, true, _) | (true, false, true) => "open",
            (true, false, false) => "allow-list",
        };
        if let Err(e) = fs::create_dir_all(self.home.guest(&name)) {
            return fail(format!("create machine: {e}"));
        }
        let created_at = now_us() / 1_000_000;
        let m = Machine {
            state: "created".into(),
            network,
            egress: egress.into(),
            allow_cidrs: cidrs,
            env,
            from,
            created_at,
            pid: None,
            probes_failing: 0,
            ready_at_us: None,
            answered_at_us: None,
        };
        w.machines.insert(name, m);
        ok("")
    }

    fn start(&self, w: &mut World, name: &str) -> Output {
        let pid = w.next_pid;
        let Some(m) = w.machines.get_mut(name) else {
            return not_found(name);
        };
        if m.state == "running" {
            return ok(format!("Machine '{name}' is already running\n"));
        }
        m.state = "running".into();
        m.pid = Some(pid);
        m.probes_failing = self.knobs.ready_after;
        m.ready_at_us = Some(now_us() + self.knobs.ready_in.as_micros() as u64);
        m.answered_at_us = None;
        w.next_pid += 1;
        ok(format!("Started machine '{name}'\n"))
    }

    fn stop(&self, w: &mut World, name: &str) -> Output {
        match w.machines.get_mut(name) {
            None if self.version() == Version::new(0, 8, 0) => {
                ok(format!("Machine '{name}' not found or not running\n"))
            }
            None => not_found(name),
            Some(m) if m.state != "running" => {
                ok(format!("Machine '{name}' not found or not running\n"))
            }
            Some(m) => {
                m.state = "stopped".into();
                m.pid = None;
                ok(format!("Stopped machine '{name}'\n"))
            }
        }
    }

    fn delete(&self, w: &mut World, name: &str, force: bool) -> Output {
        if !force {
            let mut answer = String::new();
            let _ = std::io::stdin().read_line(&mut answer);
            if answer.trim() != "y" {
                return out(
                    1,
                    format!("Delete machine '{name}'? [y/N] "),
                    "Error: cancelled\n",
                );
            }
        }
        let Some(m) = w.machines.remove(name) else {
            return not_found(name);
        };
        if let (Dialect::Positional, Some(pid)) = (self.dialect(), m.pid) {
            w.orphans.push(Orphan {
                name: name.into(),
                pid,
            });
        }
        let _ = fs::remove_dir_all(self.home.guest(name));
        ok(format!("Deleted machine '{name}'\n"))
    }

    fn running<'w>(&self, w: &'w mut World, name: &str) -> Result<&'w mut Machine, Output> {
        match w.machines.get_mut(name) {
            None => Err(not_found(name)),
            Some(m) if m.state != "running" => Err(fail(format!(
                "agent operation failed: connect: machine '{name}' is not running. Use 'smolvm machine start --name {name}' first."
            ))),
            Some(m) => Ok(m),
        }
    }

    fn exec(
        &self,
        w: &mut World,
        name: &str,
        env: &[String],
        workdir: Option<String>,
        cmd: &[String],
    ) -> Output {
        let m = match self.running(w, name) {
            Ok(m) => m,
            Err(o) => return o,
        };
        let now = now_us();
        if m.probes_failing > 0 || m.ready_at_us.is_some_and(|t| now < t) {
            m.probes_failing = m.probes_failing.saturating_sub(1);
            return fail("agent operation failed: connect: guest agent is not answering yet");
        }
        m.answered_at_us.get_or_insert(now);
        let vars: BTreeMap<String, String> = m
            .env
            .iter()
            .chain(env)
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        let root = self.home.guest(name);
        let g = Guest {
            root: &root,
            cwd: workdir.unwrap_or_else(|| "/".into()),
            env: vars,
        };
        let r = g.run(cmd);
        out(r.code, r.stdout, r.stderr)
    }

    fn cp(&self, w: &mut World, src: &str, dst: &str) -> Output {
        match (src.split_once(':'), dst.split_once(':')) {
            (None, Some((name, guest_path))) => self.cp_in(w, src, name, guest_path),
            (Some((name, guest_path)), None) => self.cp_out(w, name, guest_path, dst),
            _ => fail("exactly one of SRC and DST must be NAME:/path"),
        }
    }

    fn cp_in(&self, w: &mut World, host: &str, name: &str, guest_path: &str) -> Output {
        if let Err(o) = self.running(w, name) {
            return o;
        }
        if !Path::new(host).is_file() {
            return fail(format!(
                "cp: {host}: not a regular file (one file per call)"
            ));
        }
        let root = self.home.guest(name);
        let copied = guest::host_path(&root, "/", guest_path).and_then(|to| {
            let staged = to.with_extension("smolvm-cp-tmp");
            fs::create_dir_all(to.parent().unwrap_or(&root))
                .and_then(|()| fs::copy(host, &staged))
                .and_then(|_| fs::rename(&staged, &to))
                .map_err(|e| e.to_string())
        });
        match copied {
            Ok(()) => ok(""),
            Err(e) => fail(format!("cp: {e}")),
        }
    }

    fn cp_out(&self, w: &mut World, name: &str, guest_path: &str, host: &str) -> Output {
        if let Err(o) = self.running(w, name) {
            return o;
        }
        let root = self.home.guest(name);
        let copied = guest::host_path(&root, "/", guest_path)
            .and_then(|from| fs::copy(from, host).map_err(|e| e.to_string()));
        match copied {
            Ok(_) => ok(""),
            Err(e) => fail(format!("cp: {e}")),
        }
    }
}

/// The `status --json` view of a machine (with the simulator's own
/// `sim_egress` key telling what the network really allows).
fn view(name: &str, m: &Machine) -> serde_json::Value {
    json!({
        "name": name,
        "state": m.state,
        "pid": m.pid,
        "image": serde_json::Value::Null,
        "network": m.network,
        "cpus": 4,
        "memory_mib": 8192,
        "created_at": m.created_at,
        "mounts": [],
        "ports": [],
        "ephemeral": false,
        "sim_egress": m.egress,
        "sim_allow_cidrs": m.allow_cidrs,
        "sim_env": m.env,
    })
}

/// Microseconds since the Unix epoch.
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
