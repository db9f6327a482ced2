//! `pack create`: two files, `OUT` (an executable stub) and
//! `OUT.smolmachine` (the pack, which `create --from` takes).
//!
//! Owns the simulated pack format (a magic first line) and the `-o` rule:
//! an output ending in `.smolmachine` is refused from 1.7.0. It must not
//! share the wrapper's pack cache or naming code.

use std::fs;

use super::cmd::{Pack, PackSource};
use super::engine::Engine;
use super::messages;
use super::reply::SimOutput;
use super::world::World;

/// The first bytes of every pack the simulator writes.
pub const PACK_MAGIC: &str = "SMOLVM-SIM-PACK v1\n";

const STUB: &str = "#!/bin/sh\necho 'smolvm-sim pack stub: nothing to run' >&2\nexit 1\n";

impl Engine {
    pub(super) fn pack(&self, w: &World, p: &Pack) -> SimOutput {
        if self.release().refuses_sidecar_output() && p.out.ends_with(".smolmachine") {
            return messages::sidecar_output();
        }
        let what = match &p.source {
            PackSource::Image(image) => format!("image {image}"),
            PackSource::Vm(vm) if w.machines.contains_key(vm) => format!("vm {vm}"),
            PackSource::Vm(vm) => return messages::vm_not_found(vm),
        };
        let sidecar = format!("{}.smolmachine", p.out);
        let written = fs::write(&p.out, STUB)
            .and_then(|()| fs::write(&sidecar, format!("{PACK_MAGIC}{what}\n")));
        match written {
            Ok(()) => SimOutput::ok(format!("Packed {what} into {sidecar}\n")),
            Err(e) => SimOutput::error(format!("pack failed: {e}")),
        }
    }
}
