//! The decision: desired vs recorded vs observed → what an apply does, and
//! the steps that carry it out.
//!
//! Pure; every combination is matched explicitly. What forces a new
//! machine is [`Field::forces_replacement`]: the fields smolvm takes at
//! `create` (image, network, env). Everything else is brought up to date
//! in place: changed copies are sent again, and exec steps run once per
//! machine for each content (see [`exec_hash`](crate::spec::exec_hash)).

use std::path::{Path, PathBuf};

use super::step::Step;
use super::transfer::{REMOVING, Transfer, transfer, view};
use crate::smolvm::MachineState;
use crate::spec::{CopyDiff, Field, Fingerprint};
use crate::state::RecordPhase;

/// What smolvm says about the machine's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    Missing,
    Present(MachineState),
}

/// What bottle's record says, with what was applied in the current
/// fingerprint form (see [`super::applied`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub phase: RecordPhase,
    /// The spec file that owns the machine.
    pub owner: PathBuf,
    pub applied: Fingerprint,
}

/// What the user allowed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Allow {
    /// `--replace`: replace a machine whose spec changed in a field that
    /// forces it (or that another spec owns) without asking.
    pub replace: bool,
    /// `--adopt`: take over a machine another spec file owns.
    pub adopt: bool,
    /// `--rerun-exec`: run every exec step again.
    pub rerun_exec: bool,
    /// `--no-prune`: leave in the guest the copied paths no copy makes any
    /// more (and forget them), rather than remove them.
    pub keep_removed: bool,
}

/// The spec being applied: its fingerprint and its file.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    pub fingerprint: &'a Fingerprint,
    pub owner: &'a Path,
}

/// Why a machine bottle owns is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaceReason {
    /// The spec changed in these fields; at least one forces replacement.
    Changed(Vec<Field>),
    /// The apply that created it never completed.
    Incomplete,
    /// Another spec file owns it, and `--replace` was given.
    OtherOwner(PathBuf),
}

impl ReplaceReason {
    /// Whether the replacement destroys a machine whose apply completed,
    /// so the user must agree first (`--replace`, or yes at the prompt).
    pub fn needs_consent(&self) -> bool {
        match self {
            ReplaceReason::Changed(_) => true,
            ReplaceReason::Incomplete | ReplaceReason::OtherOwner(_) => false,
        }
    }
}

/// What an update changes under one copy destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyWork {
    pub dest: String,
    /// Its paths compared with what the guest holds from bottle: sent
    /// (added or changed), removed, or kept (`--no-prune`).
    pub diff: CopyDiff,
}

/// Why an exec step runs in an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecWhy {
    /// A step of this content never ran on the machine: new or changed.
    New,
    /// It ran, and `--rerun-exec` asks for it again.
    Rerun,
}

/// Whether a replacement may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Nothing finished is lost: the machine's apply never completed, or
    /// `--replace` was given for a machine another spec owns.
    NotNeeded,
    /// The user agreed (`--replace`, or yes at the prompt).
    Given,
    /// The user has not agreed yet: `apply` asks, or refuses.
    Needed,
}

impl Consent {
    /// The consent a replacement for `reason` has with `allow`.
    pub fn of(reason: &ReplaceReason, allow: Allow) -> Self {
        match (reason.needs_consent(), allow.replace) {
            (false, _) => Consent::NotNeeded,
            (true, true) => Consent::Given,
            (true, false) => Consent::Needed,
        }
    }
}

/// One exec step to run in an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecWork {
    pub index: usize,
    pub why: ExecWhy,
}

/// What an in-place update does to a machine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Work {
    /// Per copy destination, what changes there.
    pub copies: Vec<CopyWork>,
    /// The paths sent and removed.
    pub transfer: Transfer,
    pub execs: Vec<ExecWork>,
}

impl Work {
    pub fn is_empty(&self) -> bool {
        self.copies.is_empty() && self.execs.is_empty()
    }
}

/// What an apply will do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    /// No machine of that name: create it. `stale_record` when bottle had a
    /// record of a machine that is gone.
    Create { stale_record: bool },
    /// The machine matches the spec and runs: no mutating call at all.
    Unchanged,
    /// Keep the machine: start it if it is not running, send the changed
    /// copies, run the exec steps that have not run. With no work, a
    /// restart, or (running) only a new record: a secret's source changed,
    /// or a copy was removed from the spec.
    Update { state: MachineState, work: Work },
    /// Delete the machine bottle owns and create it anew, once `consent`
    /// allows it.
    Replace {
        reason: ReplaceReason,
        state: MachineState,
        consent: Consent,
    },
    /// A machine bottle has no record of holds the name: refuse.
    Unmanaged { state: MachineState },
    /// Another spec file owns the machine: refuse (`--adopt` takes it over,
    /// `--replace` replaces it).
    OwnedElsewhere { owner: PathBuf, state: MachineState },
}

impl Decision {
    /// Whether the machine is kept as it is (updated, restarted or left
    /// alone): nothing of it is deleted.
    pub fn keeps_machine(&self) -> bool {
        match self {
            Decision::Update { .. } | Decision::Unchanged => true,
            Decision::Create { .. }
            | Decision::Replace { .. }
            | Decision::Unmanaged { .. }
            | Decision::OwnedElsewhere { .. } => false,
        }
    }

    /// The decision once the user agreed to the replacement it needs.
    pub fn consented(self) -> Decision {
        match self {
            Decision::Replace {
                reason,
                state,
                consent: Consent::Needed,
            } => Decision::Replace {
                reason,
                state,
                consent: Consent::Given,
            },
            other => other,
        }
    }
}

/// A replacement for `reason`, with the consent `allow` gives it.
fn replace(reason: ReplaceReason, state: MachineState, allow: Allow) -> Decision {
    let consent = Consent::of(&reason, allow);
    Decision::Replace {
        reason,
        state,
        consent,
    }
}

/// Decide what applying `want` does.
pub fn decide(
    want: Want<'_>,
    record: Option<&Recorded>,
    observed: &Observed,
    allow: Allow,
) -> Decision {
    let (record, state) = match (record, observed) {
        (None, Observed::Missing) => {
            return Decision::Create {
                stale_record: false,
            };
        }
        (Some(_), Observed::Missing) => return Decision::Create { stale_record: true },
        (None, Observed::Present(state)) => {
            return Decision::Unmanaged {
                state: state.clone(),
            };
        }
        (Some(r), Observed::Present(state)) => (r, state.clone()),
    };
    match (record.owner == want.owner, allow.adopt, allow.replace) {
        (true, _, _) | (false, true, _) => {}
        (false, false, true) => {
            let reason = ReplaceReason::OtherOwner(record.owner.clone());
            return replace(reason, state, allow);
        }
        (false, false, false) => {
            return Decision::OwnedElsewhere {
                owner: record.owner.clone(),
                state,
            };
        }
    }
    match record.phase {
        RecordPhase::Creating | RecordPhase::Failed => {
            replace(ReplaceReason::Incomplete, state, allow)
        }
        RecordPhase::Complete => complete(want.fingerprint, &record.applied, state, allow),
    }
}

/// The decision for a machine whose creation completed.
fn complete(
    want: &Fingerprint,
    applied: &Fingerprint,
    state: MachineState,
    allow: Allow,
) -> Decision {
    let changed = want.changed(applied);
    if changed.iter().any(|f| f.forces_replacement()) {
        return replace(ReplaceReason::Changed(changed), state, allow);
    }
    let work = work(want, applied, allow);
    let same = work.is_empty() && changed.is_empty();
    match (&state, same) {
        (MachineState::Running, true) => Decision::Unchanged,
        (MachineState::Running, false)
        | (
            MachineState::Created
            | MachineState::Stopped
            | MachineState::Unreachable
            | MachineState::Other(_),
            _,
        ) => Decision::Update { state, work },
    }
}

/// What an in-place update must do: send each copied path whose entry
/// differs from what the guest holds from bottle, remove those no copy
/// makes any more (unless `--no-prune`; see `transfer`), and run each exec
/// step whose content has not run (all of them with `--rerun-exec`).
fn work(want: &Fingerprint, applied: &Fingerprint, allow: Allow) -> Work {
    let transfer = transfer(&want.copies, &applied.copies, !allow.keep_removed);
    Work {
        copies: copy_work(want, applied, &transfer),
        transfer,
        execs: exec_work(want, applied, allow.rerun_exec),
    }
}

/// The exec steps of `want` that have not run on the machine (all of them
/// with `rerun`).
fn exec_work(want: &Fingerprint, applied: &Fingerprint, rerun: bool) -> Vec<ExecWork> {
    let why = |hash: &String| match (applied.execs.contains(hash), rerun) {
        (true, false) => None,
        (true, true) => Some(ExecWhy::Rerun),
        (false, _) => Some(ExecWhy::New),
    };
    let pending = want.execs.iter().enumerate();
    pending
        .filter_map(|(index, hash)| why(hash).map(|why| ExecWork { index, why }))
        .collect()
}

/// The transfer told per copy destination, in the order the spec (then
/// the record) names them: a sent path counts under the copy it comes
/// from, a removed or kept one under the copy that had sent it.
fn copy_work(want: &Fingerprint, applied: &Fingerprint, t: &Transfer) -> Vec<CopyWork> {
    let had = view(&applied.copies);
    let mut out: Vec<CopyWork> = Vec::new();
    let mut count = |dest: &str, bump: fn(&mut CopyDiff)| {
        let at = match out.iter().position(|w| w.dest == dest) {
            Some(at) => at,
            None => {
                out.push(CopyWork {
                    dest: dest.to_string(),
                    diff: CopyDiff::default(),
                });
                out.len() - 1
            }
        };
        bump(&mut out[at].diff);
    };
    for (i, path) in &t.send {
        let there = had.get(path.as_str()).is_some_and(|h| h.entry != REMOVING);
        let bump: fn(&mut CopyDiff) = match there {
            true => |d| d.changed += 1,
            false => |d| d.added += 1,
        };
        count(&want.copies[*i].dest, bump);
    }
    let dest_had = |path: &str| had.get(path).map(|p| applied.copies[p.copy].dest.as_str());
    for path in &t.remove {
        count(dest_had(path).unwrap_or_default(), |d| d.removed += 1);
    }
    for path in &t.kept {
        count(dest_had(path).unwrap_or_default(), |d| d.kept += 1);
    }
    let dests = want.copies.iter().chain(&applied.copies).map(|c| &c.dest);
    let order: Vec<&String> = dests.collect();
    out.sort_by_key(|w| order.iter().position(|d| **d == w.dest));
    out
}

/// Whether a machine in `state` may have a VM process to stop.
pub(crate) fn may_run(state: &MachineState) -> bool {
    match state {
        MachineState::Created | MachineState::Stopped => false,
        MachineState::Running | MachineState::Unreachable | MachineState::Other(_) => true,
    }
}

/// The shape of the spec that decides the steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub pack: bool,
    pub secrets: bool,
    /// Whether copied paths are removed before anything is sent.
    pub prune: bool,
    /// How the files this apply sends travel.
    pub copy: CopyShape,
    pub execs: usize,
}

/// How files are copied in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyShape {
    /// Nothing to copy.
    None,
    /// One archive: upload and unpack.
    Archive,
    /// This many files, one `cp` each.
    Files(usize),
}

/// The lifecycle steps that carry out `decision`.
pub fn steps(decision: &Decision, shape: Shape) -> Vec<Step> {
    let mut v = Vec::new();
    match decision {
        Decision::Unchanged | Decision::Unmanaged { .. } | Decision::OwnedElsewhere { .. } => {
            return v;
        }
        Decision::Update { state, work } => return update_steps(state, work, shape),
        Decision::Create { .. } => {}
        Decision::Replace { state, .. } => {
            v.extend(shape.pack.then_some(Step::Pack));
            v.extend(may_run(state).then_some(Step::StopOld));
            v.push(Step::DeleteOld);
        }
    }
    if shape.pack && v.is_empty() {
        v.push(Step::Pack);
    }
    v.extend([Step::Record, Step::Create, Step::Start, Step::WaitReady]);
    v.extend(shape.secrets.then_some(Step::Secrets));
    v.extend(shape.prune.then_some(Step::Prune));
    v.extend(copy_steps(shape.copy));
    v.extend((0..shape.execs).map(Step::Exec));
    v
}

/// An update: start unless running, then (secret files for the steps that
/// run, on smolvm 0.8) the copies, then the exec steps that run.
fn update_steps(state: &MachineState, work: &Work, shape: Shape) -> Vec<Step> {
    let mut v = Vec::new();
    if *state != MachineState::Running {
        v.extend([Step::Start, Step::WaitReady]);
    }
    v.extend((shape.secrets && !work.execs.is_empty()).then_some(Step::Secrets));
    v.extend(shape.prune.then_some(Step::Prune));
    v.extend(copy_steps(shape.copy));
    v.extend(work.execs.iter().map(|e| Step::Exec(e.index)));
    v
}

fn copy_steps(copy: CopyShape) -> Vec<Step> {
    match copy {
        CopyShape::None => Vec::new(),
        CopyShape::Archive => vec![Step::Upload, Step::Unpack],
        CopyShape::Files(n) => (0..n).map(Step::Copy).collect(),
    }
}

#[cfg(test)]
mod tests;
