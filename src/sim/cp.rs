//! `machine cp SRC DST`: one file into or out of a running machine.
//!
//! Owns the cp semantics of the contract: the side containing `:` is the
//! machine side, split at the first `:` (so a host path with a `:` is
//! misread, as smolvm misreads it); one regular file per call; the guest's
//! parent directories are created and the write is staged and renamed.
//! `--mode` (1.9.0 on) sets the uploaded file's permission bits; `--uid`
//! and `--gid` are accepted and not applied (the simulator runs
//! unprivileged); all three are refused on a download. Every guest path
//! stays inside the guest root (`rootfs`: the guest's links are followed
//! inside it; the renamed upload replaces a link at its path). Each
//! upload's size is added to the machine's `received_bytes`, for tests and
//! benchmarks to see what was sent.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::cmd::{Cp, Owner};
use super::engine::Engine;
use super::exec::running;
use super::reply::SimOutput;
use super::rootfs::{self, Last};
use super::world::World;

impl Engine {
    pub(super) fn cp(&self, w: &mut World, c: &Cp) -> SimOutput {
        match (c.src.split_once(':'), c.dst.split_once(':')) {
            (None, Some((name, to))) => self.cp_in(w, &c.src, name, to, c.owner),
            (Some((name, from)), None) if c.owner.is_empty() => self.cp_out(w, name, from, &c.dst),
            (Some(_), None) => SimOutput::error("--mode, --uid and --gid apply to uploads only"),
            (None, None) | (Some(_), Some(_)) => {
                SimOutput::error("exactly one of SRC and DST must be NAME:/path")
            }
        }
    }

    fn cp_in(&self, w: &mut World, host: &str, name: &str, to: &str, owner: Owner) -> SimOutput {
        if let Err(refused) = running(w, name) {
            return refused;
        }
        if !Path::new(host).is_file() {
            return SimOutput::error(format!(
                "cp: {host}: not a regular file (one file per call)"
            ));
        }
        let root = self.home.guest(name);
        let copied = rootfs::resolve(&root, "/", to, Last::Keep).and_then(|to| {
            let staged = to.with_extension("smolvm-cp-tmp");
            fs::create_dir_all(to.parent().unwrap_or(&root))
                .and_then(|()| remove_if_present(&staged))
                .and_then(|()| fs::copy(host, &staged))
                .and_then(|bytes| {
                    if let Some(mode) = owner.mode {
                        fs::set_permissions(&staged, fs::Permissions::from_mode(mode))?;
                    }
                    fs::rename(&staged, &to).map(|()| bytes)
                })
                .map_err(|e| e.to_string())
        });
        match copied {
            Ok(bytes) => {
                if let Some(m) = w.machines.get_mut(name) {
                    m.received_bytes += bytes;
                }
                SimOutput::ok("")
            }
            Err(e) => SimOutput::error(format!("cp: {e}")),
        }
    }

    fn cp_out(&self, w: &mut World, name: &str, from: &str, host: &str) -> SimOutput {
        if let Err(refused) = running(w, name) {
            return refused;
        }
        let root = self.home.guest(name);
        let copied = rootfs::resolve(&root, "/", from, Last::Follow)
            .and_then(|from| fs::copy(from, host).map_err(|e| e.to_string()));
        match copied {
            Ok(_) => SimOutput::ok(""),
            Err(e) => SimOutput::error(format!("cp: {e}")),
        }
    }
}

/// Remove `path` if there is anything there (a guest's link included), so
/// that the staged copy is a new file and never written through a link.
fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
