//! `smolvm-sim`: a simulator of the smolvm CLI, and an independent oracle
//! of its behaviour.
//!
//! It plays one smolvm release (`SMOLVM_SIM_VERSION`, semver), parses argv
//! with that release's grammar (clap derive, as smolvm itself), keeps its
//! world in one JSON file under `$SMOLVM_SIM_HOME`, gives each machine a
//! directory as its guest filesystem, runs a small built-in command set for
//! `exec` (never a host program), logs every argv to `calls.jsonl`, and
//! injects faults and latency on request. It is for tests and for trying
//! specs where smolvm is not installed; bottle never picks it on its own.
//!
//! Everything it knows about smolvm comes from the contract
//! (`smolvm-cli.md`), encoded here once: nothing under `sim` may use a
//! `crate::` path outside `crate::sim`. A simulator that imported the
//! wrapper's argv, dialect or version tables would agree with any mistake
//! in them. A test that needs bottle's `Smolvm` trait wraps
//! [`Engine::call`] itself.
//!
//! Files: `release` (which release changed what), `grammar` and `values`
//! (the command line), `cmd` (a parsed command), `engine` (one call, fault
//! injection), `lifecycle`, `egress`, `exec`, `secrets`, `cp`, `pack` and
//! `view` (the commands' semantics), `messages` (every text printed),
//! `reply`, `knobs`, `world`, `guest` (the built-in commands), `rootfs`
//! (guest paths on the host, links followed inside the guest root only),
//! `untar` (`tar -x`) and `stream` (guest output written in chunks rather
//! than held, e.g. `head -c 200000000 /dev/zero`).

mod cmd;
mod cp;
mod egress;
mod engine;
mod exec;
mod grammar;
mod guest;
mod knobs;
mod lifecycle;
mod messages;
mod pack;
mod release;
mod reply;
mod rootfs;
mod secrets;
mod stream;
mod untar;
mod values;
mod view;
mod world;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use engine::Engine;
pub use grammar::VERSION_MARK;
pub use knobs::{DEFAULT_VERSION, Knobs, When, parse_faults, parse_hosts};
pub use pack::PACK_MAGIC;
pub use reply::{Reply, SimOutput};
pub use secrets::{SecretEnv, SecretFile, Secrets};
pub use stream::GuestStream;
pub use world::{Egress, Home, Machine, Orphan, State, World};

/// The `smolvm-sim` binary.
pub fn main() -> i32 {
    let knobs = match Knobs::from_env() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("smolvm-sim: {e}");
            return 2;
        }
    };
    let argv: Vec<String> = std::env::args().collect();
    match Engine::new(knobs).call_streamed(&argv) {
        (Reply::Done(out), stream) => {
            print!("{}", out.stdout);
            if let Some(stream) = stream {
                let mut stdout = std::io::stdout().lock();
                if stream.write_to(&mut stdout).is_err() {
                    return 141;
                }
            }
            eprint!("{}", out.stderr);
            out.code
        }
        (Reply::Hang, _) => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
    }
}
