//! Reconciliation: bring a machine to what its spec says.
//!
//! Owns the decision (`decide`, pure), the step inputs (`prepared`, pure),
//! the egress rule (`egress`, pure) and the executor (`execute`), which is
//! the only part that calls smolvm or writes records. It never parses specs
//! and never spawns a process itself: all smolvm I/O goes through
//! [`Client`].

mod archive;
mod decide;
mod egress;
mod error;
mod execute;
mod prepared;
pub mod report;

use std::path::Path;
use std::time::Duration;

use crate::lifecycle::{DeleteKind, OnFailure, Rules, Step};
use crate::smolvm::{Argv, Client, Clock, Dialect, MachineState, Smolvm, argv};
use crate::spec::{CopyVia, Desired};
use crate::state::{Record, RecordPhase, Store};

pub use decide::{CopyShape, Decision, Observed, ReplaceReason, Shape, decide, steps};
pub use egress::{Egress, egress};
pub use error::{ApplyError, StepError};
pub use prepared::{PackOut, Prepared, pack_key};
pub use report::Report;

/// What an apply needs from the world.
pub struct Env<'e, S> {
    pub client: &'e Client<S>,
    pub store: &'e Store,
    pub cache_dir: &'e Path,
    pub clock: &'e dyn Clock,
    pub report: &'e dyn Report,
    /// How long to wait for another bottle's lock on a machine (none: fail
    /// at once).
    pub lock_wait: Option<Duration>,
}

/// What `gc` did with one machine.
#[derive(Debug)]
pub enum Collected {
    /// `--dry-run`: it would be removed.
    WouldRemove {
        name: String,
        phase: RecordPhase,
    },
    Removed {
        name: String,
    },
    /// It could not be removed or its record could not be read.
    Failed(ApplyError),
}

/// How an apply treats failures and unenforceable egress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub on_failure: OnFailure,
    pub allow_unenforced_egress: bool,
    /// Pack the image even if the cache holds it.
    pub repack: bool,
}

/// A plan: the decision and each step with the argv it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub name: String,
    pub decision: Decision,
    pub egress: Egress,
    /// Each step, what it does, and the argv of each of its calls.
    pub steps: Vec<(Step, String, Vec<Vec<String>>)>,
    /// The calls a failure after `create` would make.
    pub teardown: Vec<Vec<String>>,
}

fn shape(desired: &Desired, prep: &Prepared<'_>, repack: bool) -> Shape {
    Shape {
        pack: prep.pack.as_ref().is_some_and(|p| repack || !p.cached()),
        secrets: !desired.secrets.is_empty(),
        copy: match (desired.files.len(), desired.spec.copy_via) {
            (0, _) => CopyShape::None,
            (_, CopyVia::Archive) => CopyShape::Archive,
            (n, CopyVia::Cp) => CopyShape::Files(n),
        },
        execs: desired.spec.execs.len(),
    }
}

impl<S: Smolvm> Env<'_, S> {
    /// Observe the machine and read its record; refuse an unmanaged one.
    fn look(&self, name: &str) -> Result<(Option<Record>, Observed), ApplyError> {
        let record = self.store.load(name)?;
        let observed = match self.client.machine_status(name) {
            Ok(Some(s)) => Observed::Present(s.state),
            Ok(None) => Observed::Missing,
            Err(cause) => {
                return Err(ApplyError::Observe {
                    name: name.into(),
                    cause,
                });
            }
        };
        Ok((record, observed))
    }

    fn decide(&self, desired: &Desired, opts: Options) -> Result<(Decision, Egress), ApplyError> {
        let egress = egress(
            &desired.spec,
            self.client.version(),
            opts.allow_unenforced_egress,
        )?;
        let name = desired.spec.name.as_str();
        let (record, observed) = self.look(name)?;
        match decide(&desired.fingerprint, record.as_ref(), &observed) {
            Decision::Unmanaged { state } => Err(ApplyError::Unmanaged {
                name: name.into(),
                state,
            }),
            d => Ok((d, egress)),
        }
    }

    /// Bring the machine of `desired` to its spec; returns what was decided.
    /// Holds the machine's lock throughout.
    pub fn apply(&self, desired: &Desired, opts: Options) -> Result<Decision, ApplyError> {
        let name = desired.spec.name.as_str();
        let _lock = self.store.lock(name, self.lock_wait)?;
        let (decision, egress) = self.decide(desired, opts)?;
        if let Some(w) = egress.warning(name, self.client.version()) {
            self.report.line(name, &w);
        }
        self.report.line(name, &describe(&decision));
        let prep = Prepared::new(desired, self.cache_dir, self.client.version());
        let steps = steps(&decision, shape(desired, &prep, opts.repack));
        let exec = execute::Execution {
            env: self,
            prep: &prep,
            steps: &steps,
            rules: Rules {
                on_failure: opts.on_failure,
                delete: self.delete_kind(),
            },
            record: None,
            done: Vec::new(),
        };
        exec.run()?;
        Ok(decision)
    }

    /// What `apply` would do, with the argv of each step; no mutating call.
    /// An allow-list smolvm cannot enforce is shown as `Egress::Unenforced`
    /// whatever `opts` say; `apply` is where it is refused.
    pub fn plan(&self, desired: &Desired, repack: bool) -> Result<Plan, ApplyError> {
        let opts = Options {
            on_failure: OnFailure::TearDown,
            allow_unenforced_egress: true,
            repack,
        };
        let (decision, egress) = self.decide(desired, opts)?;
        let prep = Prepared::new(desired, self.cache_dir, self.client.version());
        let (program, dialect) = (self.client.program(), self.client.dialect());
        let steps = steps(&decision, shape(desired, &prep, opts.repack))
            .into_iter()
            .map(|s| (s, prep.describe(s), prep.calls(program, dialect, s)))
            .collect();
        let name = prep.name();
        Ok(Plan {
            name: name.into(),
            decision,
            egress,
            steps,
            teardown: vec![
                argv::machine_stop(program, name),
                argv::machine_delete(program, dialect, name),
            ],
        })
    }

    /// Stop and delete a machine bottle owns, then forget it.
    pub fn down(&self, name: &str) -> Result<Observed, ApplyError> {
        let _lock = self.store.lock(name, self.lock_wait)?;
        let (record, observed) = self.look(name)?;
        if record.is_none() {
            return Err(ApplyError::NotOwned { name: name.into() });
        }
        if let Observed::Present(state) = &observed {
            if !matches!(state, MachineState::Created | MachineState::Stopped) {
                match (self.client.machine_stop(name), self.delete_kind()) {
                    (Ok(()), _) => self.report.line(name, "stop: ok"),
                    (Err(cause), DeleteKind::LeavesVmRunning) => {
                        // Deleting now would leave the VM running, untracked.
                        return Err(ApplyError::Down {
                            name: name.into(),
                            cause,
                        });
                    }
                    (Err(e), DeleteKind::StopsVm) => {
                        self.report.line(name, &format!("stop: failed: {e}"))
                    }
                }
            }
            match self.client.machine_delete(name) {
                Ok(()) => self.report.line(name, "delete: ok"),
                Err(e) if e.known() == crate::smolvm::Known::NotFound => {}
                Err(cause) => {
                    return Err(ApplyError::Down {
                        name: name.into(),
                        cause,
                    });
                }
            }
        }
        self.store.remove(name)?;
        Ok(observed)
    }

    /// Remove every machine bottle owns whose apply never completed (a
    /// crash, a kill, a teardown that failed, `--keep-on-failure`), and
    /// forget it. Complete machines are left alone.
    pub fn gc(&self, dry_run: bool) -> Result<Vec<Collected>, ApplyError> {
        let mut out = Vec::new();
        for name in self.store.names()? {
            let record = match self.store.load(&name) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    out.push(Collected::Failed(e.into()));
                    continue;
                }
            };
            if record.phase == RecordPhase::Complete {
                continue;
            }
            if dry_run {
                out.push(Collected::WouldRemove {
                    name,
                    phase: record.phase,
                });
                continue;
            }
            out.push(match self.down(&name) {
                Ok(_) => Collected::Removed { name },
                Err(e) => Collected::Failed(e),
            });
        }
        Ok(out)
    }

    /// Remove cached packs that no record names (every record counts,
    /// complete or not). A pack being written (its lock held) is skipped.
    pub fn gc_packs(&self, dry_run: bool) -> Result<Vec<std::path::PathBuf>, ApplyError> {
        let mut used = std::collections::HashSet::new();
        for name in self.store.names()? {
            if let Some(p) = self.store.load(&name)?.and_then(|r| r.pack) {
                used.insert(p);
            }
        }
        let dir = self.cache_dir.join("packs");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(Vec::new());
        };
        let mut pruned: Vec<std::path::PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "smolmachine") && !used.contains(p))
            .filter(|p| !p.to_string_lossy().ends_with(".partial.smolmachine"))
            .collect();
        pruned.sort();
        if dry_run {
            return Ok(pruned);
        }
        pruned.retain(|sidecar| {
            let stub = sidecar.with_extension("");
            let lock = sidecar.with_extension("lock");
            let Ok(_held) = crate::state::lock_file(lock, "pack", None) else {
                return false;
            };
            let removed = std::fs::remove_file(sidecar).is_ok();
            let _ = std::fs::remove_file(&stub);
            removed
        });
        Ok(pruned)
    }

    /// What this smolvm's `delete` does to a running VM.
    fn delete_kind(&self) -> DeleteKind {
        match self.client.dialect() {
            Dialect::Positional => DeleteKind::LeavesVmRunning,
            Dialect::NameFlag => DeleteKind::StopsVm,
        }
    }

    /// The record and observed state of a machine.
    pub fn status(&self, name: &str) -> Result<(Option<Record>, Observed), ApplyError> {
        self.look(name)
    }
}

/// A one-line account of a decision.
pub fn describe(d: &Decision) -> String {
    match d {
        Decision::Create {
            stale_record: false,
        } => "creating".into(),
        Decision::Create { stale_record: true } => {
            "creating (bottle's record names it, but the machine is gone)".into()
        }
        Decision::Unchanged => "unchanged".into(),
        Decision::Restart { state } => format!("restarting (it is {})", state.as_str()),
        Decision::Replace {
            reason: ReplaceReason::Incomplete,
            ..
        } => "replacing (its last apply did not complete)".into(),
        Decision::Replace {
            reason: ReplaceReason::Changed(fields),
            ..
        } => {
            let names: Vec<String> = fields.iter().map(ToString::to_string).collect();
            format!("replacing (changed: {})", names.join(", "))
        }
        Decision::Unmanaged { state } => {
            format!("not managed by bottle (it is {})", state.as_str())
        }
    }
}

/// An argv as a shell line.
pub fn shell_line(argv: &[String]) -> String {
    Argv(argv.to_vec()).to_string()
}
