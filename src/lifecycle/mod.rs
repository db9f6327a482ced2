//! The apply lifecycle as an explicit state machine.
//!
//! ```text
//!   Pack ─▶ [StopOld ─▶ DeleteOld] ─▶ Create ─▶ Start ─▶ WaitReady ─▶ [Secrets]
//!        ─▶ (Upload ─▶ Unpack | Copy…) ─▶ Exec… ─▶ Ready
//!     │            │                     │         │          │           │        │
//!     └────────────┴──── failure ────────┴─────────┴──────────┴───────────┴────────┘
//!                                         │
//!        nothing created ─▶ Failed(NothingCreated)
//!        created, --keep-on-failure ─▶ Failed(Kept)
//!        created ─▶ [TearDown(Stop) if start was issued] ─▶ TearDown(Delete)
//!                      ─▶ Failed(Removed) | Failed(Left)
//!        (a failed Stop goes straight to Failed(Left) where smolvm's
//!         `delete` would leave the VM process running: smolvm 0.8.x)
//! ```
//!
//! Owns the transition function [`next`] and nothing else: it performs no
//! I/O and reads no clock. The executor in `reconcile` runs the step a
//! [`Phase`] names and feeds back its [`Outcome`].
//!
//! Teardown contract: it tolerates a `create` that never succeeded (a
//! `delete` of a missing machine counts as done), `stop` is best effort and
//! always followed by `delete`, and it only ever runs for a machine whose
//! `create` this run issued.

use std::fmt;

/// One step of an apply, each one smolvm call (readiness: one call per
/// probe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// `pack create` of the spec's image into the cache.
    Pack,
    /// `stop` of the machine being replaced.
    StopOld,
    /// `delete -f` of the machine being replaced.
    DeleteOld,
    /// `machine create`.
    Create,
    /// `machine start`.
    Start,
    /// Probe `exec -- true` until it succeeds.
    WaitReady,
    /// Put the spec's secrets into the guest: one `exec` to make their
    /// directory private, one `cp` each, one `exec` to make them 0400.
    Secrets,
    /// `cp` of the i-th file to copy (`copy_via = "cp"`).
    Copy(usize),
    /// `cp` of one archive of every file to copy.
    Upload,
    /// `exec` of `tar -x` of that archive in the guest, then its removal.
    Unpack,
    /// The i-th `[[exec]]` step.
    Exec(usize),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Pack => f.write_str("pack"),
            Step::StopOld => f.write_str("stop-old"),
            Step::DeleteOld => f.write_str("delete-old"),
            Step::Create => f.write_str("create"),
            Step::Start => f.write_str("start"),
            Step::WaitReady => f.write_str("wait-ready"),
            Step::Secrets => f.write_str("secrets"),
            Step::Copy(i) => write!(f, "copy[{i}]"),
            Step::Upload => f.write_str("upload"),
            Step::Unpack => f.write_str("unpack"),
            Step::Exec(i) => write!(f, "exec[{i}]"),
        }
    }
}

/// What happened when a step (or teardown call) ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It did what was asked.
    Done,
    /// It failed; whatever it may have made is ours to clean up.
    Failed,
    /// `create` found the name taken by a machine that is not ours: nothing
    /// of this run exists, and the other machine must not be touched.
    NameTaken,
}

/// The two calls of a teardown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Teardown {
    Stop,
    Delete,
}

/// How a failed apply left things.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cleanup {
    /// The failure came before `create` was issued.
    NothingCreated,
    /// The machine this run created was deleted.
    Removed,
    /// The teardown's `delete` failed: the machine may still exist.
    Left,
    /// `--keep-on-failure`: the machine was left as it failed.
    Kept,
}

/// Where an apply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// About to run the step at this index of the plan.
    Run(usize),
    TearDown(Teardown),
    /// Every step succeeded.
    Ready,
    /// A step failed; no more calls.
    Failed(Cleanup),
}

/// What to do with a created machine when a later step fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnFailure {
    TearDown,
    Keep,
}

/// What smolvm's `delete` does to a VM that is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeleteKind {
    /// It stops the VM first (smolvm 1.0.2 and later).
    StopsVm,
    /// It removes the machine and leaves the VM process running, untracked
    /// (smolvm 0.8.x): never delete a machine whose stop failed.
    LeavesVmRunning,
}

/// The rules an apply follows on failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rules {
    pub on_failure: OnFailure,
    pub delete: DeleteKind,
}

/// The state the transition function carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct State {
    pub phase: Phase,
    /// `create` was issued (whatever its outcome, unless the name was taken).
    pub created: bool,
    /// `start` was issued.
    pub started: bool,
    /// The index of the step that failed, once one has.
    pub failed_at: Option<usize>,
}

impl State {
    /// The state before the first step of a plan of `len` steps.
    pub fn initial(len: usize) -> Self {
        State {
            phase: if len == 0 {
                Phase::Ready
            } else {
                Phase::Run(0)
            },
            created: false,
            started: false,
            failed_at: None,
        }
    }

    /// Whether no further call will be made.
    pub fn is_terminal(&self) -> bool {
        matches!(self.phase, Phase::Ready | Phase::Failed(_))
    }
}

/// The transition function: where an apply goes after `outcome`.
///
/// `steps` is the plan; `state.phase` must be `Run(i)` with `i` in range or
/// a teardown phase. Terminal states map to themselves.
pub fn next(steps: &[Step], rules: Rules, state: State, outcome: Outcome) -> State {
    match state.phase {
        Phase::Run(i) => after_step(steps, rules.on_failure, state, i, outcome),
        Phase::TearDown(Teardown::Stop) => State {
            phase: match (outcome, rules.delete) {
                (Outcome::Done, _) | (_, DeleteKind::StopsVm) => Phase::TearDown(Teardown::Delete),
                (Outcome::Failed | Outcome::NameTaken, DeleteKind::LeavesVmRunning) => {
                    Phase::Failed(Cleanup::Left)
                }
            },
            ..state
        },
        Phase::TearDown(Teardown::Delete) => State {
            phase: Phase::Failed(match outcome {
                Outcome::Done => Cleanup::Removed,
                Outcome::Failed | Outcome::NameTaken => Cleanup::Left,
            }),
            ..state
        },
        Phase::Ready | Phase::Failed(_) => state,
    }
}

fn after_step(
    steps: &[Step],
    on_failure: OnFailure,
    state: State,
    i: usize,
    outcome: Outcome,
) -> State {
    let Some(&step) = steps.get(i) else {
        return State {
            phase: Phase::Ready,
            ..state
        };
    };
    let issued = State {
        created: state.created || (step == Step::Create && outcome != Outcome::NameTaken),
        started: state.started || step == Step::Start,
        ..state
    };
    match outcome {
        Outcome::Done if i + 1 < steps.len() => State {
            phase: Phase::Run(i + 1),
            ..issued
        },
        Outcome::Done => State {
            phase: Phase::Ready,
            ..issued
        },
        Outcome::Failed | Outcome::NameTaken => State {
            phase: failure_phase(&issued, on_failure),
            failed_at: Some(i),
            ..issued
        },
    }
}

fn failure_phase(s: &State, on_failure: OnFailure) -> Phase {
    match (s.created, on_failure, s.started) {
        (false, _, _) => Phase::Failed(Cleanup::NothingCreated),
        (true, OnFailure::Keep, _) => Phase::Failed(Cleanup::Kept),
        (true, OnFailure::TearDown, true) => Phase::TearDown(Teardown::Stop),
        (true, OnFailure::TearDown, false) => Phase::TearDown(Teardown::Delete),
    }
}

/// Every phase that may follow `from` (for checking [`next`] against a
/// table written independently of it).
pub fn allowed_successors(steps: &[Step], from: Phase) -> Vec<Phase> {
    let failed = [
        Phase::Failed(Cleanup::NothingCreated),
        Phase::Failed(Cleanup::Kept),
        Phase::TearDown(Teardown::Stop),
        Phase::TearDown(Teardown::Delete),
    ];
    match from {
        Phase::Run(i) if i + 1 < steps.len() => {
            [Phase::Run(i + 1)].into_iter().chain(failed).collect()
        }
        Phase::Run(_) => [Phase::Ready].into_iter().chain(failed).collect(),
        Phase::TearDown(Teardown::Stop) => {
            vec![
                Phase::TearDown(Teardown::Delete),
                Phase::Failed(Cleanup::Left),
            ]
        }
        Phase::TearDown(Teardown::Delete) => {
            vec![
                Phase::Failed(Cleanup::Removed),
                Phase::Failed(Cleanup::Left),
            ]
        }
        Phase::Ready | Phase::Failed(_) => vec![from],
    }
}

#[cfg(test)]
mod tests;
