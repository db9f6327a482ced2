//! The apply lifecycle as an explicit state machine, and teardown as one of
//! its runs.
//!
//! ```text
//!   Pack ─▶ [StopOld ─▶ DeleteOld] ─▶ Record ─▶ Create ─▶ Start ─▶ WaitReady
//!        ─▶ [Secrets] ─▶ (Upload ─▶ Unpack | Copy…) ─▶ Exec… ─▶ Ended(Ready)
//!     │         │            │           │        │        │         │
//!     └─────────┴──── failure or interrupt ───────┴────────┴─────────┘
//!                                │
//!        nothing created ─▶ Ended(NothingCreated)
//!        created, --keep-on-failure ─▶ Ended(Kept)
//!        created ─▶ [TearDown(Stop) if start was issued] ─▶ TearDown(Delete)
//!                      ─▶ Ended(Removed) | Ended(Left)
//!        (a failed Stop goes straight to Ended(Left) where smolvm's
//!         `delete` would leave the VM process running: smolvm 0.8.x)
//!
//!   down, gc:  [TearDown(Stop) if it may run] ─▶ TearDown(Delete)
//!                      ─▶ Ended(Removed) | Ended(Left)
//!
//!   update in place (the machine exists; no Record, no Create):
//!     [Start ─▶ WaitReady] ─▶ [Secrets] ─▶ (Upload ─▶ Unpack | Copy…) ─▶ Exec…
//!        ─▶ Ended(Ready), or on failure Ended(NothingCreated): nothing of
//!           this run is torn down, and the machine is kept as it is
//! ```
//!
//! Owns the transition function [`next`] and nothing else: it performs no
//! I/O and reads no clock. The executor in `reconcile` runs the step or
//! teardown call a [`Phase`] names and feeds back its [`Outcome`]; an
//! interrupt is an outcome too. A failed outcome carries its error, and the
//! state keeps it: the error an apply reports is the one that happened.
//!
//! Teardown contract: it tolerates a `create` that never succeeded (a
//! `delete` of a missing machine counts as done), `stop` is best effort and
//! followed by `delete` unless that would leave a VM running untracked, and
//! it only ever runs for a machine whose `create` this run issued (after
//! its [`Step::Record`]) or, for `down` and `gc`, one bottle's record says
//! it owns. Every version rule of teardown lives here, once.

use crate::plan::Step;

/// What happened when a step (or teardown call) ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome<E> {
    /// It did what was asked.
    Done,
    /// It failed; whatever it may have made is ours to clean up.
    Failed(E),
    /// `create` found the name taken by a machine that is not ours: nothing
    /// of this run exists, and the other machine must not be touched.
    NameTaken(E),
    /// The user asked bottle to stop (this signal) before the step ran.
    Interrupted(i32),
}

/// Why an apply failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure<E> {
    Error(E),
    Interrupted(i32),
}

/// The step that failed (its index in the plan) and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Failed<E> {
    pub at: usize,
    pub cause: Failure<E>,
}

/// The two calls of a teardown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Teardown {
    Stop,
    Delete,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum End {
    /// Every step succeeded.
    Ready,
    /// A step failed before `create` was issued (in an update, which issues
    /// none: the machine is kept).
    NothingCreated,
    /// `--keep-on-failure`: the machine was left as it failed.
    Kept,
    /// The machine was deleted.
    Removed,
    /// A teardown call failed: the machine may still exist.
    Left,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// About to run the step at this index of the plan.
    Run(usize),
    TearDown(Teardown),
    /// No more calls.
    Ended(End),
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

/// The rules a run follows on failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rules {
    pub on_failure: OnFailure,
    pub delete: DeleteKind,
}

/// The state the transition function carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State<E> {
    pub phase: Phase,
    /// `create` was issued (whatever its outcome, unless the name was
    /// taken), or, for a teardown run, the machine exists.
    pub created: bool,
    /// `start` was issued, or, for a teardown run, the VM may be running.
    pub started: bool,
    /// The step that failed, once one has.
    pub failure: Option<Failed<E>>,
    /// The errors of teardown calls that failed, in order.
    pub teardown_errors: Vec<E>,
}

impl<E> State<E> {
    /// The state before the first step of a plan of `len` steps.
    pub fn initial(len: usize) -> Self {
        State {
            phase: match len {
                0 => Phase::Ended(End::Ready),
                _ => Phase::Run(0),
            },
            created: false,
            started: false,
            failure: None,
            teardown_errors: Vec::new(),
        }
    }

    /// A teardown-only run (`down`, `gc`) of a machine bottle owns;
    /// `may_run` when it may have a VM process to stop.
    pub fn teardown(may_run: bool) -> Self {
        State {
            phase: Phase::TearDown(match may_run {
                true => Teardown::Stop,
                false => Teardown::Delete,
            }),
            created: true,
            started: may_run,
            failure: None,
            teardown_errors: Vec::new(),
        }
    }
}

/// The transition function: where a run goes after `outcome`.
///
/// `steps` is the plan; `state.phase` must be `Run(i)` with `i` in range or
/// a teardown phase. Terminal states map to themselves.
pub fn next<E>(steps: &[Step], rules: Rules, state: State<E>, outcome: Outcome<E>) -> State<E> {
    match state.phase {
        Phase::Run(i) => after_step(steps, rules.on_failure, state, i, outcome),
        Phase::TearDown(t) => after_teardown(t, rules.delete, state, outcome),
        Phase::Ended(_) => state,
    }
}

fn after_teardown<E>(
    t: Teardown,
    delete: DeleteKind,
    mut state: State<E>,
    outcome: Outcome<E>,
) -> State<E> {
    let done = match outcome {
        Outcome::Done => true,
        Outcome::Failed(e) | Outcome::NameTaken(e) => {
            state.teardown_errors.push(e);
            false
        }
        Outcome::Interrupted(_) => false,
    };
    state.phase = match (t, done, delete) {
        (Teardown::Stop, true, _) | (Teardown::Stop, false, DeleteKind::StopsVm) => {
            Phase::TearDown(Teardown::Delete)
        }
        (Teardown::Stop, false, DeleteKind::LeavesVmRunning) => Phase::Ended(End::Left),
        (Teardown::Delete, true, _) => Phase::Ended(End::Removed),
        (Teardown::Delete, false, _) => Phase::Ended(End::Left),
    };
    state
}

fn after_step<E>(
    steps: &[Step],
    on_failure: OnFailure,
    state: State<E>,
    i: usize,
    outcome: Outcome<E>,
) -> State<E> {
    let step = steps.get(i).copied();
    let name_taken = matches!(outcome, Outcome::NameTaken(_));
    let ran = !matches!(outcome, Outcome::Interrupted(_));
    let issued = State {
        created: state.created || (step == Some(Step::Create) && ran && !name_taken),
        started: state.started || (step == Some(Step::Start) && ran),
        ..state
    };
    let cause = match outcome {
        Outcome::Done if i + 1 < steps.len() => {
            return State {
                phase: Phase::Run(i + 1),
                ..issued
            };
        }
        Outcome::Done => {
            return State {
                phase: Phase::Ended(End::Ready),
                ..issued
            };
        }
        Outcome::Failed(e) | Outcome::NameTaken(e) => Failure::Error(e),
        Outcome::Interrupted(sig) => Failure::Interrupted(sig),
    };
    State {
        phase: failure_phase(&issued, on_failure),
        failure: Some(Failed { at: i, cause }),
        ..issued
    }
}

fn failure_phase<E>(s: &State<E>, on_failure: OnFailure) -> Phase {
    match (s.created, on_failure, s.started) {
        (false, _, _) => Phase::Ended(End::NothingCreated),
        (true, OnFailure::Keep, _) => Phase::Ended(End::Kept),
        (true, OnFailure::TearDown, true) => Phase::TearDown(Teardown::Stop),
        (true, OnFailure::TearDown, false) => Phase::TearDown(Teardown::Delete),
    }
}

/// Every phase that may follow `from` (for checking [`next`] against a
/// table written independently of it).
pub fn allowed_successors(steps: &[Step], from: Phase) -> Vec<Phase> {
    let failed = [
        Phase::Ended(End::NothingCreated),
        Phase::Ended(End::Kept),
        Phase::TearDown(Teardown::Stop),
        Phase::TearDown(Teardown::Delete),
    ];
    match from {
        Phase::Run(i) if i + 1 < steps.len() => {
            [Phase::Run(i + 1)].into_iter().chain(failed).collect()
        }
        Phase::Run(_) => [Phase::Ended(End::Ready)]
            .into_iter()
            .chain(failed)
            .collect(),
        Phase::TearDown(Teardown::Stop) => {
            vec![Phase::TearDown(Teardown::Delete), Phase::Ended(End::Left)]
        }
        Phase::TearDown(Teardown::Delete) => {
            vec![Phase::Ended(End::Removed), Phase::Ended(End::Left)]
        }
        Phase::Ended(_) => vec![from],
    }
}

#[cfg(test)]
mod tests;
