//! Every message the simulator prints, in one place.
//!
//! Those marked *contract* are verbatim from the "Observed from the real
//! CLI" section and the tables of `smolvm-cli.md`; bottle's parser is tested
//! against them through the simulator, so they must never be paraphrased.
//! Those marked *simulator* are the simulator's own wording where the
//! contract records none; nothing should match them exactly.
//!
//! Owns message text only; it must not decide when a message applies.

use super::release::ExistsWording;
use super::reply::SimOutput;

/// *contract* — `create`, first line with `--from`.
pub const EXTRACTING: &str = "Extracting .smolmachine assets...\n";

/// *contract* — `create` succeeded.
pub fn created(name: &str) -> String {
    format!("Created machine: {name}\n")
}

/// *contract* — `delete` succeeded.
pub fn deleted(name: &str) -> String {
    format!("Deleted machine: {name}\n")
}

/// *contract* — `delete` without `-f` asks on stdin.
pub fn delete_prompt(name: &str) -> String {
    format!("Delete machine '{name}'? [y/N] ")
}

/// *simulator* — the answer to the prompt was not `y`.
pub fn delete_cancelled() -> SimOutput {
    SimOutput::error("cancelled")
}

/// *contract* — stderr of `start` before anything else (a failed start
/// shows it before its error).
pub fn starting(name: &str) -> String {
    format!("Starting machine '{name}'...\n")
}

/// *simulator* — `start` succeeded.
pub fn started(name: &str) -> String {
    format!("Started machine '{name}'\n")
}

/// *contract* (the words "already running") — `start` of a running machine.
pub fn already_running(name: &str) -> String {
    format!("Machine '{name}' is already running\n")
}

/// *simulator* — `stop` of a running machine succeeded.
pub fn stopped(name: &str) -> String {
    format!("Stopped machine '{name}'\n")
}

/// *contract* — `stop` of a machine that exists but is not running
/// (`state: created` for one never started), exit 0.
pub fn stop_not_running(name: &str, state: &str) -> String {
    format!("Machine '{name}' is not running (state: {state})\n")
}

/// *contract* — `stop` of a missing machine on 0.8.0, exit 0.
pub fn stop_missing_quiet(name: &str) -> String {
    format!("Machine '{name}' not found or not running\n")
}

/// *contract* — `start`, `stop` (0.8.1 on), `exec`, `cp`, `delete -f` or
/// `pack create --from-vm` of a missing machine.
pub fn vm_not_found(name: &str) -> SimOutput {
    SimOutput::error(format!("vm not found: {name}"))
}

/// *contract* — `status` of a missing machine.
pub fn status_missing(name: &str) -> SimOutput {
    SimOutput::error(format!(
        "config operation failed: machine status: machine '{name}' not found"
    ))
}

/// *contract* — `exec` or `cp` on a machine that is not running.
pub fn agent_not_running(name: &str) -> SimOutput {
    SimOutput::error(format!(
        "agent operation failed: connect: machine '{name}' is not running. Use 'smolvm machine start --name {name}' first."
    ))
}

/// *simulator* — `exec` before the guest agent answers
/// (`SMOLVM_SIM_READY_AFTER`, `SMOLVM_SIM_READY_MS`).
pub fn agent_not_answering() -> SimOutput {
    SimOutput::error("agent operation failed: connect: guest agent is not answering yet")
}

/// *contract* — `create` of an existing name, worded by release.
pub fn already_exists(name: &str, wording: ExistsWording) -> SimOutput {
    let tail = match wording {
        ExistsWording::Exists => "",
        ExistsWording::ExistsOrBeingCreated => " or is being created",
    };
    SimOutput::error(format!(
        "config operation failed: create machine: machine '{name}' already exists{tail}"
    ))
}

/// *contract* — `create --from PATH` of a file that does not exist.
pub fn pack_missing(path: &str) -> SimOutput {
    SimOutput::error(format!("create from .smolmachine: file not found: {path}"))
}

/// *contract* — `create --from PATH` of a file that is not a pack.
pub fn not_a_pack() -> SimOutput {
    SimOutput::error("read .smolmachine: I/O error: sidecar file too small to contain footer")
}

/// *contract* (up to `: `; the reason is the simulator's) — an
/// `--allow-host` name that does not resolve.
pub fn unresolved_host(host: &str, why: &str) -> SimOutput {
    SimOutput::error(format!(
        "config operation failed: --allow-host: failed to resolve '{host}': {why}"
    ))
}

/// *contract* (the first clause) — `pack create -o X.smolmachine`, 1.7.0 on.
pub fn sidecar_output() -> SimOutput {
    SimOutput::error(
        "--output names the executable stub, not the .smolmachine sidecar (which is written next to it as OUTPUT.smolmachine)",
    )
}

/// *simulator* — `exec --timeout` fired (exit 124).
pub fn timed_out(after: std::time::Duration) -> SimOutput {
    SimOutput {
        code: 124,
        stdout: String::new(),
        stderr: format!(
            "Error: command timed out after {}\n",
            humantime::format_duration(after)
        ),
    }
}
