//! A parsed smolvm command, the same whatever grammar it was parsed with.
//!
//! Owns the vocabulary between the grammar (`grammar.rs`) and the
//! semantics (`engine.rs` and the files it delegates to). It holds values
//! only: no parsing and no behaviour beyond naming the fault step.

use std::time::Duration;

use super::secrets::Secrets;

/// A parsed smolvm command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// `pack create (--image IMG | --from-vm VM) -o OUT`
    Pack(Pack),
    /// `machine create …`
    Create(Create),
    /// `machine start --name N`
    Start { name: String },
    /// `machine stop --name N`
    Stop { name: String },
    /// `machine delete [-f] (NAME | --name N)`
    Delete { name: String, force: bool },
    /// `machine exec --name N … -- CMD…`
    Exec(Exec),
    /// `machine cp SRC DST …`
    Cp(Cp),
    /// `machine status --name N [--json]`
    Status { name: String, json: bool },
    /// `machine ls [--json]`
    Ls { json: bool },
}

/// What a pack is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackSource {
    Image(String),
    Vm(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pack {
    pub source: PackSource,
    /// The stub path; the pack itself goes to `OUT.smolmachine`.
    pub out: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Create {
    pub name: String,
    pub from: Option<String>,
    pub image: Option<String>,
    pub net: bool,
    /// `--allow-cidr` values, bare IPs widened to `/32` or `/128`.
    pub cidrs: Vec<String>,
    /// `--allow-host` values as given.
    pub hosts: Vec<String>,
    /// `-e KEY=VALUE` values.
    pub env: Vec<String>,
    pub secrets: Secrets,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exec {
    pub name: String,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub timeout: Option<Duration>,
    /// `-d/--detach` (1.9.x): run in the background, print nothing.
    pub detach: bool,
    /// `-i` and `-t`: accepted; the simulator has no terminal. Without
    /// `--stream` each output stream is cut at 11 MiB.
    pub interactive: bool,
    pub tty: bool,
    pub stream: bool,
    pub secrets: Secrets,
    /// Everything after `--`.
    pub cmd: Vec<String>,
}

/// Ownership and mode given to an uploaded file (`cp`, 1.9.0 on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owner {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Owner {
    pub fn is_empty(&self) -> bool {
        *self == Owner::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cp {
    pub src: String,
    pub dst: String,
    pub owner: Owner,
}

impl Cmd {
    /// The fault-injection step this command belongs to: `exec -- true`
    /// alone is a readiness `probe`.
    pub fn step(&self) -> &'static str {
        match self {
            Cmd::Pack(_) => "pack",
            Cmd::Create(_) => "create",
            Cmd::Start { .. } => "start",
            Cmd::Stop { .. } => "stop",
            Cmd::Delete { .. } => "delete",
            Cmd::Exec(e) if e.cmd == ["true"] => "probe",
            Cmd::Exec(_) => "exec",
            Cmd::Cp(_) => "cp",
            Cmd::Status { .. } => "status",
            Cmd::Ls { .. } => "ls",
        }
    }
}
