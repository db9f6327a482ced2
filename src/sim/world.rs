//! The simulator's persistent world: machines, orphaned VM processes and
//! call counters in one JSON file, read and written under an exclusive
//! lock so concurrent simulator processes see a consistent world.
//!
//! Owns the world's shape and its file layout under `SMOLVM_SIM_HOME`
//! (`state.json`, `calls.jsonl`, `guests/NAME/`). It decides nothing about
//! smolvm's behaviour, and must never store a resolved secret.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::secrets::Secrets;

/// The lifecycle state of a simulated machine, as `status --json` words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Created, never started.
    Created,
    Running,
    Stopped,
    /// Paused in memory (1.9.x only). No simulated command enters it; a
    /// test puts a machine there through [`Home::with_world`].
    Frozen,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Stopped => "stopped",
            State::Frozen => "frozen",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for State {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What a machine's network really allows (the simulator's own knowledge:
/// real smolvm shows only `network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Egress {
    /// No network at all.
    None,
    /// Only the allow-list (`--allow-cidr` and resolved `--allow-host`).
    AllowList,
    /// Unrestricted: `--net` without a list, or a list dropped by
    /// `create --from` before 1.8.0.
    Open,
}

impl Egress {
    pub fn as_str(self) -> &'static str {
        match self {
            Egress::None => "none",
            Egress::AllowList => "allow-list",
            Egress::Open => "open",
        }
    }
}

impl fmt::Display for Egress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Egress {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A simulated machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    pub state: State,
    pub network: bool,
    pub egress: Egress,
    /// `--allow-cidr` as given (bare IPs widened), even when dropped.
    pub allow_cidrs: Vec<String>,
    /// `--allow-host` as given, even when dropped.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// `KEY=VALUE` given at create.
    pub env: Vec<String>,
    /// `--secret-env`/`--secret-file` given at create: references only,
    /// resolved at each `exec`.
    #[serde(default)]
    pub secrets: Secrets,
    pub from: Option<String>,
    /// `--image` given at create.
    #[serde(default)]
    pub image: Option<String>,
    pub created_at: u64,
    pub pid: Option<i64>,
    /// Probes that will still fail before the guest answers.
    pub probes_failing: u32,
    /// When (µs since the epoch) the guest agent answers after the last
    /// start (`SMOLVM_SIM_READY_MS`); probes before then fail.
    #[serde(default)]
    pub ready_at_us: Option<u64>,
    /// When the first probe after the last start was answered.
    #[serde(default)]
    pub answered_at_us: Option<u64>,
    /// Bytes uploaded into the guest by `cp`, over the machine's life.
    #[serde(default)]
    pub received_bytes: u64,
}

/// A VM process left running by a `delete` that did not stop it (0.8.x).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Orphan {
    pub name: String,
    pub pid: i64,
}

/// Everything the simulator remembers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct World {
    pub machines: BTreeMap<String, Machine>,
    pub orphans: Vec<Orphan>,
    /// Calls so far per step, for `step@n` faults.
    pub counts: BTreeMap<String, u32>,
    pub next_pid: i64,
}

/// The files of a simulator home.
#[derive(Debug, Clone)]
pub struct Home {
    pub dir: PathBuf,
}

impl Home {
    pub fn new(dir: &Path) -> Self {
        Home {
            dir: dir.to_path_buf(),
        }
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn calls(&self) -> PathBuf {
        self.dir.join("calls.jsonl")
    }
    /// The guest filesystem root of machine `name`.
    pub fn guest(&self, name: &str) -> PathBuf {
        self.dir.join("guests").join(name)
    }

    /// Run `f` on the world under the lock, saving what it leaves.
    pub fn with_world<T>(&self, f: impl FnOnce(&mut World) -> T) -> io::Result<T> {
        fs::create_dir_all(&self.dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("lock"))?;
        lock.lock()?;
        let mut world = self.read()?;
        let before = world.clone();
        let out = f(&mut world);
        if world != before {
            self.write(&world)?;
        }
        Ok(out)
    }

    /// The world as last saved (no lock: for tests and inspection).
    pub fn read(&self) -> io::Result<World> {
        match fs::read_to_string(self.state()) {
            Ok(t) => serde_json::from_str(&t).map_err(io::Error::other),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(World {
                next_pid: 40000,
                ..World::default()
            }),
            Err(e) => Err(e),
        }
    }

    fn write(&self, world: &World) -> io::Result<()> {
        let tmp = self.dir.join(format!(".state.{}.tmp", std::process::id()));
        let mut f = File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(world).map_err(io::Error::other)?)?;
        f.sync_all()?;
        fs::rename(&tmp, self.state())
    }

    /// Append one argv to the call log (call under the lock).
    pub fn log_call(&self, argv: &[String]) -> io::Result<()> {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.calls())?;
        let line = serde_json::to_string(argv).map_err(io::Error::other)?;
        writeln!(f, "{line}")
    }

    /// Every call logged so far.
    pub fn calls_made(&self) -> io::Result<Vec<Vec<String>>> {
        match fs::read_to_string(self.calls()) {
            Ok(t) => t
                .lines()
                .map(|l| serde_json::from_str(l).map_err(io::Error::other))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}
