//! `machine create`, `start`, `stop` and `delete`: what each does to the
//! world and what it prints, per release.
//!
//! ```text
//!            create          start            stop
//!   (none) ─────────▶ created ─────▶ running ─────▶ stopped
//!                                       ▲               │
//!                                       └─────start─────┘
//!   delete -f from any state ─▶ (none); from running on 0.8.0 the VM
//!   process lives on, recorded as an orphan
//! ```
//!
//! A `frozen` machine (1.9.x; only a test editing the world puts one
//! there) counts as running for `start` and `stop`; `exec` and `cp` refuse
//! it as not running. Owns the lifecycle semantics of the contract. It must not import the
//! wrapper's lifecycle or teardown logic, which it is meant to check.

use std::fs;
use std::io::BufRead;

use super::cmd::Create;
use super::egress;
use super::engine::{Engine, now_us};
use super::messages;
use super::pack::PACK_MAGIC;
use super::release::{DeleteRunning, StopMissing};
use super::reply::SimOutput;
use super::world::{Machine, Orphan, State, World};

impl Engine {
    pub(super) fn create(&self, w: &mut World, c: Create) -> SimOutput {
        if w.machines.contains_key(&c.name) {
            return messages::already_exists(&c.name, self.release().exists_wording());
        }
        if let Some(path) = &c.from
            && let Err(refused) = check_pack(path)
        {
            return refused;
        }
        for host in &c.hosts {
            if let Err(why) = egress::resolve(host, &self.knobs.hosts) {
                return messages::unresolved_host(host, &why);
            }
        }
        if let Err(e) = fs::create_dir_all(self.home.guest(&c.name)) {
            return SimOutput::error(format!("create machine: {e}"));
        }
        let network = egress::decide(&c, &self.release());
        let shown = match c.from {
            Some(_) => format!("{}{}", messages::EXTRACTING, messages::created(&c.name)),
            None => messages::created(&c.name),
        };
        let m = Machine {
            state: State::Created,
            network: network.on,
            egress: network.egress,
            allow_cidrs: c.cidrs,
            allow_hosts: c.hosts,
            env: c.env,
            secrets: c.secrets,
            from: c.from,
            image: c.image,
            created_at: now_us() / 1_000_000,
            pid: None,
            probes_failing: 0,
            ready_at_us: None,
            answered_at_us: None,
            received_bytes: 0,
        };
        w.machines.insert(c.name, m);
        SimOutput::ok(shown)
    }

    pub(super) fn start(&self, w: &mut World, name: &str) -> SimOutput {
        let pid = w.next_pid;
        let Some(m) = w.machines.get_mut(name) else {
            return messages::vm_not_found(name);
        };
        let starting = messages::starting(name);
        match m.state {
            State::Running | State::Frozen => {
                return SimOutput::ok(messages::already_running(name)).after_stderr(&starting);
            }
            State::Created | State::Stopped => {}
        }
        m.state = State::Running;
        m.pid = Some(pid);
        m.probes_failing = self.knobs.ready_after;
        m.ready_at_us = Some(now_us() + self.knobs.ready_in.as_micros() as u64);
        m.answered_at_us = None;
        w.next_pid += 1;
        SimOutput::ok(messages::started(name)).after_stderr(&starting)
    }

    pub(super) fn stop(&self, w: &mut World, name: &str) -> SimOutput {
        let Some(m) = w.machines.get_mut(name) else {
            return match self.release().stop_missing() {
                StopMissing::Quiet => SimOutput::ok(messages::stop_missing_quiet(name)),
                StopMissing::NotFound => messages::vm_not_found(name),
            };
        };
        match m.state {
            State::Created | State::Stopped => {
                SimOutput::ok(messages::stop_not_running(name, m.state.as_str()))
            }
            State::Running | State::Frozen => {
                m.state = State::Stopped;
                m.pid = None;
                SimOutput::ok(messages::stopped(name))
            }
        }
    }

    pub(super) fn delete(&self, w: &mut World, name: &str, force: bool) -> SimOutput {
        if !force && !confirmed() {
            return messages::delete_cancelled().after_stdout(&messages::delete_prompt(name));
        }
        let Some(m) = w.machines.remove(name) else {
            return messages::vm_not_found(name);
        };
        if let (DeleteRunning::LeavesProcess, Some(pid)) = (self.release().delete_running(), m.pid)
        {
            w.orphans.push(Orphan {
                name: name.into(),
                pid,
            });
        }
        let _ = fs::remove_dir_all(self.home.guest(name));
        SimOutput::ok(messages::deleted(name))
    }
}

/// Whether `path` is a pack the simulator wrote, or the refusal. Only its
/// first bytes are read: a pack may be large, and the world is locked.
fn check_pack(path: &str) -> Result<(), SimOutput> {
    let head = fs::File::open(path).and_then(|f| {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(f, PACK_MAGIC.len() as u64),
            &mut bytes,
        )
        .map(|_| bytes)
    });
    match head {
        Ok(bytes) if bytes.starts_with(PACK_MAGIC.as_bytes()) => Ok(()),
        Ok(_) => Err(messages::not_a_pack()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(messages::pack_missing(path)),
        Err(e) => Err(SimOutput::error(format!(
            "read .smolmachine: I/O error: {e}"
        ))),
    }
}

/// The answer to `Delete machine 'NAME'? [y/N]` on stdin.
fn confirmed() -> bool {
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}
