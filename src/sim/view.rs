//! `machine status` and `machine ls`: how a machine looks from outside.
//!
//! Owns the JSON view of the contract: the listed fields, `mounts` and
//! `ports` as integer counts, `labels` from 1.8.0, values the contract does
//! not give as `null`, and `ls` in an order that is neither by name nor by
//! creation (as smolvm's). The `sim_*` keys are the simulator's own, for
//! tests: `sim_egress` (what the network really allows), `sim_allow_cidrs`,
//! `sim_allow_hosts` and `sim_env`. Without `--json` each machine is one
//! `NAME STATE` line (the contract gives no table format). It must not
//! reuse the wrapper's parser types.

use serde_json::{Value, json};

use super::engine::Engine;
use super::messages;
use super::release::Release;
use super::reply::SimOutput;
use super::world::{Machine, World};

/// The `status --json` object of machine `name`.
pub fn view(name: &str, m: &Machine, release: &Release) -> Value {
    let mut v = json!({
        "name": name,
        "state": m.state.as_str(),
        "pid": m.pid,
        "image": m.image,
        "network": m.network,
        "cpus": 4,
        "memory_mib": 8192,
        "created_at": m.created_at,
        "mounts": 0,
        "ports": 0,
        "storage_gb": null,
        "overlay_gb": null,
        "entrypoint": null,
        "cmd": null,
        "ephemeral": false,
        "gpu": false,
        "gpu_vram_mib": null,
        "restart_policy": null,
        "restart_max_retries": null,
        "restart_count": 0,
        "sim_egress": m.egress.as_str(),
        "sim_allow_cidrs": m.allow_cidrs,
        "sim_allow_hosts": m.allow_hosts,
        "sim_env": m.env,
    });
    if release.has_labels() {
        v["labels"] = json!({});
    }
    v
}

/// A stable order that is neither by name nor by creation: FNV-1a of the
/// name (smolvm keys machine directories by a hash of the name).
fn scrambled(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn line(name: &str, m: &Machine) -> String {
    format!("{name}  {}\n", m.state)
}

impl Engine {
    pub(super) fn status(&self, w: &World, name: &str, json: bool) -> SimOutput {
        let Some(m) = w.machines.get(name) else {
            return messages::status_missing(name);
        };
        match json {
            true => SimOutput::ok(format!("{:#}\n", view(name, m, &self.release()))),
            false => SimOutput::ok(line(name, m)),
        }
    }

    pub(super) fn ls(&self, w: &World, json: bool) -> SimOutput {
        let mut all: Vec<(&String, &Machine)> = w.machines.iter().collect();
        all.sort_by_key(|(name, _)| scrambled(name));
        let release = self.release();
        match json {
            true => {
                let views = all.iter().map(|(n, m)| view(n, m, &release)).collect();
                SimOutput::ok(format!("{:#}\n", Value::Array(views)))
            }
            false => SimOutput::ok(all.iter().map(|(n, m)| line(n, m)).collect::<String>()),
        }
    }
}
