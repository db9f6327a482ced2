//! Reconciliation: bring a machine to what its spec says, stop or start
//! it, or remove it.
//!
//! Owns the executor (`execute`), which runs the smolvm calls of an apply,
//! `down` or `gc` and keeps records in step; the copy archive (`archive`);
//! the exec log (`log`); the words a decision is told in (`describe`); and
//! around them the few effects that are no lifecycle step: asking consent
//! before a replacement ([`Confirm`]), writing the new owner of an adopted
//! machine, `stop`/`start` (one call each, built by the plan's
//! functions), and the claim of a run's machines (`claim`: their locks and
//! one look at all of them). It decides nothing itself: the plan (`crate::plan`) says
//! what to do and which calls do it, and the lifecycle (`crate::lifecycle`)
//! says what follows each outcome. It never parses specs and never spawns
//! a process: all smolvm I/O goes through [`Client`]. Each `apply` and
//! `gc` also removes what killed bottles left on the host (`sweep`; once
//! per run of `apply`, before its first machine).

pub(crate) mod archive;
mod claim;
mod describe;
mod error;
mod execute;
mod log;
pub mod report;
mod secret_fd;
mod sweep;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::lifecycle::{DeleteKind, End, OnFailure, Rules, State, Teardown};
use crate::plan::{Allow, Consent, Decision, Egress, Observed, Plan, ReplaceReason, Want, decide};
use crate::smolvm::{Client, Clock, Dialect, Smolvm};
use crate::spec::{Desired, MachineName};
use crate::state::{MachineLock, Record, RecordPhase, StateError, Store};

pub use claim::{Claim, Survey};
pub use describe::{changed_fields, describe, describe_work};
pub use error::{ApplyError, StepError, Switch};
pub use report::{Confirm, Refuse, Report};

/// What an apply needs from the world.
pub struct Env<'e, S> {
    pub client: &'e Client<S>,
    pub store: &'e Store,
    pub cache_dir: &'e Path,
    pub clock: &'e dyn Clock,
    pub report: &'e dyn Report,
    /// Asked before a machine whose apply completed is replaced.
    pub confirm: &'e dyn Confirm,
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

/// What `stop` or `start` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Switched {
    /// It stopped or started the machine.
    Done,
    /// The machine already was as asked (in this state).
    Already(crate::smolvm::MachineState),
}

/// How an apply treats failures and unenforceable egress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub on_failure: OnFailure,
    pub allow_unenforced_egress: bool,
    /// Pack the image even if the cache holds it.
    pub repack: bool,
    /// `--replace`, `--adopt`, `--rerun-exec`.
    pub allow: Allow,
}

impl Options {
    /// The options of `bottle plan`, which shows what `apply` would do
    /// with the same flags.
    pub fn plan(repack: bool, allow: Allow) -> Self {
        Options {
            on_failure: OnFailure::TearDown,
            allow_unenforced_egress: true,
            repack,
            allow,
        }
    }
}

impl<S: Smolvm> Env<'_, S> {
    /// Read the machine's record, and take what `seen` says of it, or
    /// (`None`) ask smolvm.
    fn look(
        &self,
        name: &MachineName,
        seen: Option<Observed>,
    ) -> Result<(Option<Record>, Observed), ApplyError> {
        let record = self.store.load(name.as_str())?;
        if let Some(observed) = seen {
            return Ok((record, observed));
        }
        let observed = match self.client.status(name) {
            Ok(Some(s)) => Observed::Present(s.state),
            Ok(None) => Observed::Missing,
            Err(cause) => {
                let name = name.to_string();
                return Err(match self.client.interrupted() {
                    Some(signal) => ApplyError::Interrupted { name, signal },
                    None => ApplyError::Observe { name, cause },
                });
            }
        };
        Ok((record, observed))
    }

    /// The plan of applying `desired`, with the record it was decided
    /// from (what it says was applied in the current form, and the owner
    /// the decision saw); refuses a machine bottle does not own or another
    /// spec owns.
    fn make_plan<'d>(
        &self,
        desired: &'d Desired,
        opts: Options,
        seen: Option<Observed>,
    ) -> Result<(Plan<'d>, Option<Record>), ApplyError> {
        let name = &desired.spec.name;
        let (record, observed) = self.look(name, seen)?;
        let recorded = record.as_ref().map(|r| crate::plan::recorded(r, desired));
        let want = Want {
            fingerprint: &desired.fingerprint,
            owner: &desired.owner,
        };
        let decision = decide(want, recorded.as_ref(), &observed, opts.allow);
        let plan = self.plan_of(desired, refuse(desired, decision)?, opts)?;
        let record = record.zip(recorded).map(|(r, k)| Record {
            fingerprint: k.applied,
            spec_file: k.owner,
            legacy: None,
            ..r
        });
        Ok((plan, record))
    }

    fn plan_of<'d>(
        &self,
        desired: &'d Desired,
        decision: Decision,
        opts: Options,
    ) -> Result<Plan<'d>, ApplyError> {
        let version = self.client.version();
        Plan::new(desired, decision, version, self.cache_dir, opts.repack).map_err(|cause| {
            ApplyError::Plan {
                name: desired.spec.name.to_string(),
                cause,
            }
        })
    }

    /// `plan`, once the user agreed to the replacement it needs; refuses
    /// when they do not (or a signal answered for them).
    fn consented<'d>(
        &self,
        desired: &'d Desired,
        plan: Plan<'d>,
        opts: Options,
    ) -> Result<Plan<'d>, ApplyError> {
        let Decision::Replace {
            reason: ReplaceReason::Changed(fields),
            consent: Consent::Needed,
            ..
        } = &plan.decision
        else {
            return Ok(plan);
        };
        let name = desired.spec.name.to_string();
        let changed = describe::changed_fields(fields);
        let question = format!(
            "replace machine `{name}`? Its disk, and everything written in it since it was \
             created, will be lost ({changed})"
        );
        let agreed = self.confirm.replace(&name, &question);
        match (agreed, self.client.interrupted()) {
            (_, Some(signal)) => Err(ApplyError::Interrupted { name, signal }),
            (false, None) => Err(ApplyError::ReplaceRefused { name, changed }),
            (true, None) => self.plan_of(desired, plan.decision.consented(), opts),
        }
    }

    /// Bring the machine of `desired` to its spec; returns what was decided.
    /// Holds the machine's lock throughout.
    pub fn apply(&self, desired: &Desired, opts: Options) -> Result<Decision, ApplyError> {
        self.refused_early(desired, opts)?;
        let claim = self.claim(&desired.spec.name)?;
        self.sweep(&desired.spec.name);
        self.apply_claimed(desired, opts, claim)
    }

    /// Remove what killed bottles left on the host (copy archives, secret
    /// files no process holds open), saying so under `name`: once per run
    /// of `apply`, before its first machine.
    pub fn sweep(&self, name: &MachineName) {
        for path in sweep::sweep(&self.leftover_places()) {
            let left = format!(
                "removed {}, left by a bottle that was killed",
                path.display()
            );
            self.report.line(name.as_str(), &left);
        }
    }

    /// Refuse, before any smolvm call, an apply whose record cannot be
    /// read, and one that can only create a machine whose allow-list this
    /// smolvm would drop: one bottle has no record of (without a record
    /// nothing can be updated).
    pub fn refused_early(&self, desired: &Desired, opts: Options) -> Result<(), ApplyError> {
        let record = self.store.load(desired.spec.name.as_str())?;
        match self.unenforced(desired, opts) && record.is_none() {
            true => Err(self.refusal(desired)),
            false => Ok(()),
        }
    }

    /// Whether the allow-list of `desired` cannot be enforced by this
    /// smolvm and the user did not accept that.
    fn unenforced(&self, desired: &Desired, opts: Options) -> bool {
        let version = self.client.version();
        crate::plan::egress(&desired.spec, version) == Egress::Unenforced
            && !opts.allow_unenforced_egress
    }

    fn refusal(&self, desired: &Desired) -> ApplyError {
        ApplyError::EgressUnenforced {
            name: desired.spec.name.to_string(),
            version: self.client.version().clone(),
            keys: allow_list_keys(&desired.spec),
        }
    }

    /// [`Env::apply`] of a machine this run has claimed (see
    /// [`Env::claim_all`]): it is locked, and the claim's look decides.
    pub fn apply_claimed(
        &self,
        desired: &Desired,
        opts: Options,
        claim: Claim,
    ) -> Result<Decision, ApplyError> {
        let name = &desired.spec.name;
        let version = self.client.version();
        let (plan, record) = self.make_plan(desired, opts, claim.seen.clone())?;
        let creates = plan.steps.contains(&crate::plan::Step::Create);
        if self.unenforced(desired, opts) && creates {
            return Err(self.refusal(desired));
        }
        let plan = self.consented(desired, plan, opts)?;
        for w in plan.warnings(version) {
            self.report.line(name.as_str(), &w);
        }
        let record = self.adopt(desired, &plan.decision, record)?;
        self.report.line(name.as_str(), &describe(&plan.decision));
        if creates {
            let line = format!("egress: {}", plan.egress_line());
            self.report.line(name.as_str(), &line);
        }
        self.run(
            &plan,
            opts,
            record.filter(|_| plan.decision.keeps_machine()),
        )?;
        drop(claim);
        Ok(plan.decision)
    }

    /// Run `plan`, keeping `kept`, the record of the machine it keeps.
    fn run(&self, plan: &Plan<'_>, opts: Options, kept: Option<Record>) -> Result<(), ApplyError> {
        let rules = self.rules(opts.on_failure);
        let exec = execute::Execution::apply(self, plan, rules, kept);
        let remove_with = exec.remove_with();
        let (finished, record) = exec.run(State::initial(plan.steps.len()));
        execute::finish_apply(self, plan, remove_with, finished, record)
    }

    /// Make `desired`'s spec file the owner of the machine a decision keeps
    /// when the record names another (`--adopt`), saying so. (A schema-1
    /// record's path that the decision resolved to `desired`'s is no other
    /// owner; the next write of the record makes it canonical.)
    fn adopt(
        &self,
        desired: &Desired,
        decision: &Decision,
        record: Option<Record>,
    ) -> Result<Option<Record>, ApplyError> {
        let Some(mut r) = record else {
            return Ok(None);
        };
        if !decision.keeps_machine() {
            return Ok(Some(r));
        }
        let was = std::mem::replace(&mut r.spec_file, desired.owner.clone());
        if was == desired.owner {
            return Ok(Some(r));
        }
        self.store.save(&r)?;
        let line = format!(
            "adopted: it belonged to {}, now to {}",
            was.display(),
            desired.owner.display()
        );
        self.report.line(desired.spec.name.as_str(), &line);
        Ok(Some(r))
    }

    /// What `apply` would do with `opts`; makes only read-only calls. An
    /// allow-list smolvm cannot enforce shows as [`Egress::Unenforced`]:
    /// `apply` is where it is refused, as is a replacement without consent.
    pub fn plan<'d>(&self, desired: &'d Desired, opts: Options) -> Result<Plan<'d>, ApplyError> {
        let survey = self.survey().map_err(|signal| ApplyError::Interrupted {
            name: desired.spec.name.to_string(),
            signal,
        })?;
        self.plan_surveyed(desired, opts, &survey)
    }

    /// [`Env::plan`] from a look this run already took at every machine.
    pub fn plan_surveyed<'d>(
        &self,
        desired: &'d Desired,
        opts: Options,
        survey: &Survey,
    ) -> Result<Plan<'d>, ApplyError> {
        let seen = survey.of(&desired.spec.name);
        self.make_plan(desired, opts, seen).map(|(plan, _)| plan)
    }

    /// Stop and delete a machine bottle owns, then forget it: a teardown
    /// run of the lifecycle.
    pub fn down(&self, name: &MachineName) -> Result<Observed, ApplyError> {
        self.down_for(name, None)
    }

    /// [`Env::down`] of the machine of the spec file `by`, if given.
    pub fn down_for(&self, name: &MachineName, by: Option<&Path>) -> Result<Observed, ApplyError> {
        let claim = Claim {
            _lock: self.lock(name)?,
            seen: None,
        };
        self.down_claimed(name, by, claim)
    }

    /// [`Env::down_for`] of a machine this run has claimed.
    fn down_claimed(
        &self,
        name: &MachineName,
        by: Option<&Path>,
        claim: Claim,
    ) -> Result<Observed, ApplyError> {
        let observed = self.look_owned(name, by, claim.seen.clone())?;
        let Observed::Present(state) = &observed else {
            self.store.remove(name.as_str())?;
            return Ok(observed);
        };
        let exec = execute::Execution::remove(self, name, self.rules(OnFailure::TearDown));
        let remove_with = exec.remove_with();
        let (mut finished, _) = exec.run(State::teardown(crate::plan::may_run(state)));
        match finished.end {
            End::Removed => {
                self.store.remove(name.as_str())?;
                Ok(observed)
            }
            End::Ready | End::NothingCreated | End::Kept | End::Left => Err(ApplyError::Down {
                name: name.to_string(),
                cause: finished.teardown_errors.pop().map(Box::new),
                remove_with,
            }),
        }
    }

    /// Stop a machine bottle owns, keeping its disk.
    pub fn stop(&self, name: &MachineName) -> Result<Switched, ApplyError> {
        self.stop_for(name, None)
    }

    /// [`Env::stop`] of the machine of the spec file `by`, if given.
    pub fn stop_for(&self, name: &MachineName, by: Option<&Path>) -> Result<Switched, ApplyError> {
        let _lock = self.lock(name)?;
        let state = self.owned_state(name, by)?;
        if !crate::plan::may_run(&state) {
            return Ok(Switched::Already(state));
        }
        let call = crate::plan::teardown_call(self.client.cli(), name, Teardown::Stop);
        self.client.run(&call).map_err(|cause| ApplyError::Switch {
            name: name.to_string(),
            what: Switch::Stop,
            cause: Box::new(cause.into()),
        })?;
        Ok(Switched::Done)
    }

    /// Start a machine bottle owns and wait up to `ready` (default: a
    /// minute) for it to answer. Runs no exec step.
    pub fn start(
        &self,
        name: &MachineName,
        ready: Option<Duration>,
    ) -> Result<Switched, ApplyError> {
        self.start_for(name, ready, None)
    }

    /// [`Env::start`] of the machine of the spec file `by`, if given.
    pub fn start_for(
        &self,
        name: &MachineName,
        ready: Option<Duration>,
        by: Option<&Path>,
    ) -> Result<Switched, ApplyError> {
        let _lock = self.lock(name)?;
        let state = self.owned_state(name, by)?;
        if state == crate::smolvm::MachineState::Running {
            return Ok(Switched::Already(state));
        }
        let calls = crate::plan::start_calls(self.client.cli(), name);
        let failed = |cause: crate::smolvm::SmolvmError| ApplyError::Switch {
            name: name.to_string(),
            what: Switch::Start,
            cause: Box::new(cause.into()),
        };
        self.client.run(&calls.start).map_err(failed)?;
        let timeout = ready.unwrap_or(crate::spec::DEFAULT_READY_TIMEOUT);
        self.client
            .wait_ready(name, &calls.probe, timeout, self.clock)
            .map_err(failed)?;
        Ok(Switched::Done)
    }

    /// What smolvm says of a machine bottle owns (the spec file `by`'s, if
    /// given); refuses one it has no record of or another spec owns.
    fn look_owned(
        &self,
        name: &MachineName,
        by: Option<&Path>,
        seen: Option<Observed>,
    ) -> Result<Observed, ApplyError> {
        let (record, observed) = self.look(name, seen)?;
        let Some(record) = record else {
            return Err(ApplyError::NotOwned {
                name: name.to_string(),
            });
        };
        check_owner(name, &record, by)?;
        Ok(observed)
    }

    /// The state of a machine bottle owns (the spec file `by`'s, if given);
    /// refuses one it does not own and one that is gone.
    fn owned_state(
        &self,
        name: &MachineName,
        by: Option<&Path>,
    ) -> Result<crate::smolvm::MachineState, ApplyError> {
        match self.look_owned(name, by, None)? {
            Observed::Missing => Err(ApplyError::Gone {
                name: name.to_string(),
            }),
            Observed::Present(state) => Ok(state),
        }
    }

    /// Remove every machine bottle owns whose apply never completed (a
    /// crash, a kill, a teardown that failed, `--keep-on-failure`), and
    /// forget it. Complete machines are left alone. The machines to remove
    /// are claimed together (one look at all of them), and each record is
    /// read again under its lock: one another bottle completed meanwhile
    /// is left alone.
    pub fn gc(&self, dry_run: bool) -> Result<Vec<Collected>, ApplyError> {
        let mut out = Vec::new();
        let mut doomed = Vec::new();
        for name in self.store.names()? {
            let record = match self.store.load(&name) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    out.push(Collected::Failed(e.into()));
                    continue;
                }
            };
            match (record.phase, dry_run, MachineName::parse(&name)) {
                (RecordPhase::Complete, _, _) => {}
                (phase, true, _) => out.push(Collected::WouldRemove { name, phase }),
                (_, false, Ok(n)) => doomed.push(n),
                (_, false, Err(_)) => out.push(Collected::Failed(ApplyError::NotOwned { name })),
            }
        }
        let names: Vec<&MachineName> = doomed.iter().collect();
        for (n, claim) in doomed.iter().zip(self.claim_all(&names, |_| None)) {
            let collected = claim.and_then(|c| self.collect(n, c));
            out.extend(match collected {
                Ok(true) => Some(Collected::Removed {
                    name: n.to_string(),
                }),
                Ok(false) => None,
                Err(e) => Some(Collected::Failed(e)),
            });
        }
        Ok(out)
    }

    /// Remove a claimed machine whose apply is still not complete; whether
    /// it was.
    fn collect(&self, name: &MachineName, claim: Claim) -> Result<bool, ApplyError> {
        let record = self.store.load(name.as_str())?;
        match record.map(|r| r.phase) {
            Some(RecordPhase::Complete) | None => Ok(false),
            Some(RecordPhase::Creating | RecordPhase::Failed) => {
                self.down_claimed(name, None, claim).map(|_| true)
            }
        }
    }

    /// Remove (or with `dry_run` only list) the copy archives and secret
    /// temp files that killed bottles left: files no process holds open.
    pub fn gc_leftovers(&self, dry_run: bool) -> Vec<PathBuf> {
        match dry_run {
            true => sweep::find(&self.leftover_places()),
            false => sweep::sweep(&self.leftover_places()),
        }
    }

    fn leftover_places(&self) -> sweep::Places {
        sweep::Places {
            cache_dir: self.cache_dir.to_path_buf(),
            tmp_dir: std::env::temp_dir(),
        }
    }

    /// Remove cached packs that no record names (every record counts,
    /// complete or not). A pack being written (its lock held) is skipped.
    pub fn gc_packs(&self, dry_run: bool) -> Result<Vec<PathBuf>, ApplyError> {
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
        let mut pruned: Vec<PathBuf> = entries
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
            let Ok(_held) = crate::state::lock_file(lock, "pack", None, &|| None) else {
                return false;
            };
            let removed = std::fs::remove_file(sidecar).is_ok();
            let _ = std::fs::remove_file(&stub);
            removed
        });
        Ok(pruned)
    }

    /// Lock machine `name` against other bottles. With `--wait-lock`, a
    /// busy lock is waited for, saying so, until it is free, the wait is
    /// over, or a signal arrives (then nothing was changed).
    fn lock(&self, name: &MachineName) -> Result<MachineLock, StateError> {
        let stopped = || self.client.interrupted();
        let first = self.store.lock(name.as_str(), None, &stopped);
        let (Err(StateError::Locked { pid, .. }), Some(wait)) = (&first, self.lock_wait) else {
            return first;
        };
        let holder = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        self.report.line(
            name.as_str(),
            &format!(
                "waiting up to {} for another bottle{holder} working on it",
                humantime::format_duration(wait)
            ),
        );
        self.store.lock(name.as_str(), Some(wait), &stopped)
    }

    /// The rules of a run on this smolvm.
    fn rules(&self, on_failure: OnFailure) -> Rules {
        Rules {
            on_failure,
            delete: match self.client.cli().dialect() {
                Dialect::Positional => DeleteKind::LeavesVmRunning,
                Dialect::NameFlag => DeleteKind::StopsVm,
            },
        }
    }

    /// The record and observed state of a machine.
    pub fn status(&self, name: &MachineName) -> Result<(Option<Record>, Observed), ApplyError> {
        self.look(name, None)
    }
}

/// Refuse to act on machine `name` for the spec file `by` unless the
/// record names that file (a schema-1 record's relative path names no file
/// for sure: such a machine is acted on by its name). Named by its name,
/// any machine bottle owns may be acted on.
fn check_owner(name: &MachineName, record: &Record, by: Option<&Path>) -> Result<(), ApplyError> {
    match by {
        None => Ok(()),
        Some(spec) if record.spec_file == spec => Ok(()),
        Some(spec) => Err(ApplyError::NotThisSpec {
            name: name.to_string(),
            owner: record.spec_file.clone(),
            spec: spec.to_path_buf(),
        }),
    }
}

/// `decision`, unless it refuses: a machine bottle has no record of, or
/// one another spec file owns.
fn refuse(desired: &Desired, decision: Decision) -> Result<Decision, ApplyError> {
    let name = desired.spec.name.to_string();
    match decision {
        Decision::Unmanaged { state } => Err(ApplyError::Unmanaged { name, state }),
        Decision::OwnedElsewhere { owner, .. } => Err(ApplyError::OwnedElsewhere {
            name,
            owner,
            spec: desired.owner.clone(),
        }),
        Decision::Create { .. }
        | Decision::Unchanged
        | Decision::Update { .. }
        | Decision::Replace { .. } => Ok(decision),
    }
}

/// The keys of the spec's allow-list, for the refusal of an unenforced one.
fn allow_list_keys(spec: &crate::spec::Spec) -> String {
    let keys = [
        (!spec.allow_cidrs.is_empty()).then_some("network.allow_cidrs"),
        (!spec.allow_hosts.is_empty()).then_some("network.allow_hosts"),
    ];
    keys.into_iter().flatten().collect::<Vec<_>>().join(" and ")
}
