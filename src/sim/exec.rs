//! `machine exec`: run a built-in guest command in a running machine.
//!
//! Owns the exec semantics of the contract: the guest command's exit code
//! is smolvm's exit code; a machine that is missing or not running is
//! refused with the recorded messages; the agent answers only once ready
//! (`SMOLVM_SIM_READY_AFTER`, `SMOLVM_SIM_READY_MS`); `--secret-env` and
//! `--secret-file` (of `create` and of `exec`) are resolved on the host
//! now and reach only the command's environment; `-d` runs it and prints
//! nothing. Without `--stream` each stream is cut at 11 MiB, as smolvm's
//! buffered exec does; a streaming command's output (`head -c N FILE`) is
//! written after the world lock is released. A timed-out `exec` is decided
//! in `engine.rs`. Nothing here runs a host program.

use std::collections::BTreeMap;

use super::cmd::Exec;
use super::engine::{Engine, now_us};
use super::guest::Guest;
use super::messages;
use super::reply::{Outcome, SimOutput};
use super::stream::GuestStream;
use super::world::{Machine, State, World};

/// The machine `name` if its guest agent can be reached, or the refusal.
pub(super) fn running<'w>(w: &'w mut World, name: &str) -> Result<&'w mut Machine, SimOutput> {
    let Some(m) = w.machines.get_mut(name) else {
        return Err(messages::vm_not_found(name));
    };
    match m.state {
        State::Running => Ok(m),
        State::Created | State::Stopped | State::Frozen => Err(messages::agent_not_running(name)),
    }
}

/// Whether the guest agent answers now; a probe before then uses up one
/// of the failures `SMOLVM_SIM_READY_AFTER` asked for.
fn answers(m: &mut Machine) -> bool {
    let now = now_us();
    if m.probes_failing > 0 || m.ready_at_us.is_some_and(|t| now < t) {
        m.probes_failing = m.probes_failing.saturating_sub(1);
        return false;
    }
    m.answered_at_us.get_or_insert(now);
    true
}

/// `KEY=VALUE` pairs as a map; later pairs win.
fn pairs<'a>(kvs: impl Iterator<Item = &'a String>) -> impl Iterator<Item = (String, String)> {
    kvs.filter_map(|kv| {
        kv.split_once('=')
            .map(|(k, v)| (k.to_string(), v.to_string()))
    })
}

/// The command's environment: the machine's `-e`, its secrets, then the
/// exec's `-e` and its secrets, later ones winning.
fn environment(m: &Machine, e: &Exec) -> Result<BTreeMap<String, String>, String> {
    let mut vars: BTreeMap<String, String> = pairs(m.env.iter()).collect();
    vars.extend(m.secrets.resolve()?);
    vars.extend(pairs(e.env.iter()));
    vars.extend(e.secrets.resolve()?);
    Ok(vars)
}

impl Engine {
    pub(super) fn exec(&self, w: &mut World, e: &Exec) -> Outcome {
        let m = match running(w, &e.name) {
            Ok(m) => m,
            Err(refused) => return refused.into(),
        };
        if !answers(m) {
            return messages::agent_not_answering().into();
        }
        let env = match environment(m, e) {
            Ok(env) => env,
            Err(msg) => return SimOutput::error(msg).into(),
        };
        let root = self.home.guest(&e.name);
        let guest = Guest {
            root: &root,
            cwd: e.workdir.clone().unwrap_or_else(|| "/".into()),
            env,
        };
        let ran = match guest.streamed(&e.cmd) {
            Some(Ok(_)) if e.detach => return SimOutput::ok("").into(),
            Some(Ok(stream)) => return streamed(e.stream, stream),
            Some(Err(refused)) => refused,
            None => guest.run(&e.cmd),
        };
        match e.detach {
            true => SimOutput::ok("").into(),
            false => SimOutput {
                code: ran.code,
                stdout: buffered(e.stream, ran.stdout),
                stderr: buffered(e.stream, ran.stderr),
            }
            .into(),
        }
    }
}

/// How much of each stream smolvm keeps without `--stream`: it buffers
/// the output and cuts each stream at 11 MiB (the contract; the simulator
/// keeps the first 11 MiB).
const BUFFERED_CAP: usize = 11 * 1024 * 1024;

/// A stream as smolvm passes it on: whole with `--stream`, else cut.
fn buffered(stream: bool, mut text: String) -> String {
    if !stream && text.len() > BUFFERED_CAP {
        let mut end = BUFFERED_CAP;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// A streaming guest command's reply: exit 0, its output cut as
/// [`buffered`] says.
fn streamed(stream: bool, out: GuestStream) -> Outcome {
    let out = match stream {
        true => out,
        false => out.capped(BUFFERED_CAP as u64),
    };
    Outcome::Streamed(SimOutput::ok(""), out)
}
