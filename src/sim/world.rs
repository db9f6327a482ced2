//! The simulator's persistent world: machines, orphaned VM processes and
//! call counters in one JSON file, read and written under an exclusive
//! lock so concurrent simulator processes see a consistent world.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A simulated machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// `created`, `running` or `stopped`.
    pub state: String,
    pub network: bool,
    /// What the network really allows: `none`, `allow-list` or `open`.
    pub egress: String,
    pub allow_cidrs: Vec<String>,
    /// `KEY=VALUE` given at create.
    pub env: Vec<String>,
    pub from: Option<String>,
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
