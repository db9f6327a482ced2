//! One simulated smolvm call from argv to reply: parse with the release's
//! grammar, log the call, fire an injected fault if one is due, otherwise
//! dispatch to the command's semantics (`lifecycle.rs`, `exec.rs`,
//! `cp.rs`, `pack.rs`, `view.rs`), all under the world lock; waits
//! (latency, boot, a timed-out `exec`) happen outside the lock.
//!
//! Owns the call protocol and fault injection. It must not import the
//! wrapper (bottle's `smolvm` module or any other outside `sim`): the
//! simulator is the oracle bottle is tested against.

use std::time::{SystemTime, UNIX_EPOCH};

use super::cmd::Cmd;
use super::grammar;
use super::knobs::Knobs;
use super::messages;
use super::release::Release;
use super::reply::{Outcome, Reply, SimOutput};
use super::stream::GuestStream;
use super::world::{Home, State, World};

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

    /// The release this simulator plays.
    pub(super) fn release(&self) -> Release {
        Release(self.knobs.version.clone())
    }

    /// Handle one invocation; `argv[0]` is the program. A streamed guest
    /// output is read into the reply whole (in-process callers take output
    /// whole; the binary streams it, see [`Engine::call_streamed`]).
    pub fn call(&self, argv: &[String]) -> Reply {
        match self.call_streamed(argv) {
            (Reply::Done(mut out), Some(stream)) => match stream.to_text() {
                Ok(text) => {
                    out.stdout.push_str(&text);
                    Reply::Done(out)
                }
                Err(e) => Reply::Done(SimOutput::error(format!("smolvm-sim stream: {e}"))),
            },
            (reply, _) => reply,
        }
    }

    /// Handle one invocation; a guest command's streamed output comes
    /// back apart from the reply, to be written after its stdout with no
    /// lock held.
    pub fn call_streamed(&self, argv: &[String]) -> (Reply, Option<GuestStream>) {
        std::thread::sleep(self.knobs.latency);
        let parsed = grammar::parse(&self.release(), argv);
        if matches!(parsed, Ok(Cmd::Start { .. })) {
            std::thread::sleep(self.knobs.boot);
        }
        let decided = self.home.with_world(|w| {
            let _ = self.home.log_call(argv);
            match parsed {
                Ok(cmd) => self.faulted(w, &cmd).unwrap_or_else(|| self.apply(w, cmd)),
                Err(e) => Outcome::Done(usage(&e)),
            }
        });
        let reply = match decided {
            Ok(Outcome::Done(out)) => Reply::Done(out),
            Ok(Outcome::Streamed(out, stream)) => return (Reply::Done(out), Some(stream)),
            Ok(Outcome::Hang) => Reply::Hang,
            Ok(Outcome::TimedOut(after)) => {
                std::thread::sleep(after);
                Reply::Done(messages::timed_out(after))
            }
            Err(e) => Reply::Done(SimOutput::error(format!(
                "smolvm-sim state at {}: {e}",
                self.home.dir.display()
            ))),
        };
        (reply, None)
    }

    /// Count the call and fire an injected fault, if one is due. A hung
    /// `exec --timeout` is a guest command that never finishes: smolvm
    /// kills it when the timeout fires.
    fn faulted(&self, w: &mut World, cmd: &Cmd) -> Option<Outcome> {
        let step = cmd.step();
        let count = w.counts.entry(step.to_string()).or_insert(0);
        *count += 1;
        let n = *count;
        if self.knobs.hang.get(step).is_some_and(|when| when.fires(n)) {
            return Some(match cmd {
                Cmd::Exec(e) => e.timeout.map_or(Outcome::Hang, Outcome::TimedOut),
                _ => Outcome::Hang,
            });
        }
        if self.knobs.fail.get(step).is_some_and(|when| when.fires(n)) {
            let out = SimOutput::error(format!("simulated failure of {step} (call {n})"));
            return Some(Outcome::Done(match cmd {
                Cmd::Start { name } if w.machines.contains_key(name) => {
                    out.after_stderr(&messages::starting(name))
                }
                _ => out,
            }));
        }
        None
    }

    fn apply(&self, w: &mut World, cmd: Cmd) -> Outcome {
        if let Some(refused) = self.impossible(w) {
            return refused.into();
        }
        match cmd {
            Cmd::Pack(p) => self.pack(w, &p).into(),
            Cmd::Create(c) => self.create(w, c).into(),
            Cmd::Start { name } => self.start(w, &name).into(),
            Cmd::Stop { name } => self.stop(w, &name).into(),
            Cmd::Delete { name, force } => self.delete(w, &name, force).into(),
            Cmd::Exec(e) => self.exec(w, &e),
            Cmd::Cp(c) => self.cp(w, &c).into(),
            Cmd::Status { name, json } => self.status(w, &name, json).into(),
            Cmd::Ls { json } => self.ls(w, json).into(),
        }
    }
}

impl Engine {
    /// A world this release cannot have (a test put a machine in a state
    /// the release lacks): every command refuses it rather than guess.
    fn impossible(&self, w: &World) -> Option<SimOutput> {
        let release = self.release();
        let (name, _) = w
            .machines
            .iter()
            .find(|(_, m)| m.state == State::Frozen && !release.has_frozen())?;
        Some(SimOutput::error(format!(
            "smolvm-sim: machine '{name}' is frozen, a state smolvm {} does not have (1.9.0 on)",
            release.0
        )))
    }
}

/// A clap error as real smolvm prints it: usage errors on stderr with exit
/// 2; `--help` and `--version` on stdout with exit 0.
fn usage(e: &clap::Error) -> SimOutput {
    let text = e.render().to_string();
    let code = e.exit_code();
    match e.use_stderr() {
        true => SimOutput {
            code,
            stdout: String::new(),
            stderr: text,
        },
        false => SimOutput {
            code,
            stdout: text,
            stderr: String::new(),
        },
    }
}

/// Microseconds since the Unix epoch.
pub(super) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
