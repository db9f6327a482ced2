//! `smolvm-sim`: a simulator of the smolvm CLI.
//!
//! Speaks the grammar of both argv dialects (the version comes from
//! `SMOLVM_SIM_VERSION`), keeps its world in one JSON file under
//! `$SMOLVM_SIM_HOME`, gives each machine a directory as its guest
//! filesystem, runs a small built-in command set for `exec` (never a host
//! program), logs every argv to `calls.jsonl`, and injects faults and
//! latency on request. It is for tests and for trying specs where smolvm
//! is not installed; bottle never picks it on its own.
//!
//! [`SimSmolvm`] runs the same engine in process behind the
//! [`Smolvm`](crate::smolvm::Smolvm) trait.

mod args;
mod engine;
mod guest;
mod knobs;
mod world;

use std::time::Duration;

use crate::smolvm::{Output, RunFailure, Smolvm};

pub use engine::{Engine, PACK_MAGIC, Reply, VERSION_MARK};
pub use knobs::{DEFAULT_VERSION, Knobs, When, parse_faults};
pub use world::{Home, Machine, Orphan, World};

/// The simulator as an in-process [`Smolvm`]. A hanging call returns
/// [`RunFailure::TimedOut`] at once instead of sleeping.
#[derive(Debug, Clone)]
pub struct SimSmolvm(pub Engine);

impl Smolvm for SimSmolvm {
    fn run(&self, call: &crate::smolvm::Call, limit: Duration) -> Result<Output, RunFailure> {
        match self.0.call(&call.argv) {
            Reply::Done(out) => Ok(out),
            Reply::Hang => Err(RunFailure::TimedOut(limit)),
        }
    }
}

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
    match Engine::new(knobs).call(&argv) {
        Reply::Done(out) => {
            print!("{}", out.stdout);
            eprint!("{}", out.stderr);
            out.code
        }
        Reply::Hang => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
    }
}
