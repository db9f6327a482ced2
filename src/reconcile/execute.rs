//! The executor: runs the step or teardown call each lifecycle phase names,
//! feeds its outcome to `lifecycle::next`, and keeps the ownership record
//! in step with what exists. An apply (a new machine, a replacement or an
//! in-place update), `down` and `gc` are all runs of it.
//!
//! It runs exactly the calls the plan lists for each step (the same values
//! `bottle plan` prints) and builds none of its own.
//!
//! Record protocol: the record is written as `creating` by its own step
//! ([`Step::Record`]) before `create` is issued, and updated after each
//! later step; `complete` when every step succeeded; removed when a
//! teardown deleted the machine (or when nothing was created after all);
//! `failed` when the machine may still exist. If the record cannot be
//! written, nothing is created. A record is never kept for a machine whose
//! name was taken by someone else.
//!
//! What was applied is kept as it happens: when the copies of a run have
//! all arrived (`unpack`, or the last `copy[i]`) their prints join the
//! record's fingerprint, and each exec step's hash joins it when the step
//! succeeds. An in-place update starts from the machine's record and never
//! removes it: if a step fails, the record keeps what did finish and stays
//! `complete`, so the next apply does only the rest.

use std::cell::OnceCell;
use std::fs;
use std::sync::Arc;
use std::time::Instant;

use crate::lifecycle::{self, End, Failed, Failure, Outcome, Phase, Rules, State, Teardown};
use crate::plan::{Plan, REMOVING, Staged, Step, teardown_call, teardown_calls};
use crate::smolvm::{Call, Client, Known, Op, Sink, Smolvm, SmolvmError, one_line};
use crate::spec::{CopyKind, MachineName};
use crate::state::{Record, RecordPhase};

use super::Env;
use super::archive;
use super::error::{ApplyError, StepError};
use super::log::{self, ExecLog};
use super::secret_fd::{SecretFd, fd_path};

/// What a run is carrying out.
enum Work<'a> {
    /// The steps of a plan.
    Apply(&'a Plan<'a>),
    /// Only a teardown of a machine bottle owns (`down`, `gc`).
    Remove,
}

/// How a run ended, with what went wrong on the way.
pub(super) struct Finished {
    pub end: End,
    pub failure: Option<Failed<StepError>>,
    pub teardown_errors: Vec<StepError>,
}

pub(super) struct Execution<'a, 'e, S> {
    env: &'a Env<'e, S>,
    name: &'a MachineName,
    work: Work<'a>,
    steps: &'a [Step],
    rules: Rules,
    /// The record this run keeps up to date: the machine's, for an
    /// update; once it has written one, the new machine's.
    record: Option<Record>,
    /// Steps of this run that succeeded, in order.
    done: Vec<Step>,
    /// The exec log, started afresh by this run's first exec step.
    log: OnceCell<Arc<ExecLog>>,
}

impl<'a, 'e, S: Smolvm> Execution<'a, 'e, S> {
    /// A run of `plan`; `existing` is the record of the machine an update
    /// keeps (none for a new machine).
    pub fn apply(
        env: &'a Env<'e, S>,
        plan: &'a Plan<'a>,
        rules: Rules,
        existing: Option<Record>,
    ) -> Self {
        Execution {
            env,
            name: plan.name(),
            work: Work::Apply(plan),
            steps: &plan.steps,
            rules,
            record: existing,
            done: Vec::new(),
            log: OnceCell::new(),
        }
    }

    pub fn remove(env: &'a Env<'e, S>, name: &'a MachineName, rules: Rules) -> Self {
        Execution {
            env,
            name,
            work: Work::Remove,
            steps: &[],
            rules,
            record: None,
            done: Vec::new(),
            log: OnceCell::new(),
        }
    }

    fn client(&self) -> &Client<S> {
        self.env.client
    }

    fn line(&self, text: &str) {
        self.env.report.line(self.name.as_str(), text);
    }

    /// Walk the lifecycle from `state` to its end.
    pub fn run(mut self, mut state: State<StepError>) -> (Finished, Option<Record>) {
        loop {
            let outcome = match state.phase {
                Phase::Run(i) => match self.client().interrupted() {
                    Some(signal) => self.not_started(self.steps[i], signal),
                    None => self.step(self.steps[i]),
                },
                Phase::TearDown(t) => self.teardown(t),
                Phase::Ended(end) => {
                    let finished = Finished {
                        end,
                        failure: state.failure,
                        teardown_errors: state.teardown_errors,
                    };
                    return (finished, self.record);
                }
            };
            state = lifecycle::next(self.steps, self.rules, state, outcome);
        }
    }

    fn plan(&self) -> Option<&'a Plan<'a>> {
        match self.work {
            Work::Apply(plan) => Some(plan),
            Work::Remove => None,
        }
    }

    fn describe(&self, step: Step) -> String {
        self.plan()
            .map_or_else(|| step.to_string(), |p| p.inputs.describe(step))
    }

    fn not_started(&self, step: Step, signal: i32) -> Outcome<StepError> {
        self.line(&format!(
            "{}: not started (interrupted)",
            self.describe(step)
        ));
        Outcome::Interrupted(signal)
    }

    fn step(&mut self, step: Step) -> Outcome<StepError> {
        let started = Instant::now();
        let doing = self.describe(step);
        let result = self.perform(step).and_then(|()| self.progress(step));
        let ms = started.elapsed().as_millis();
        match result {
            Ok(()) => {
                self.line(&format!("{doing}: ok ({ms} ms)"));
                Outcome::Done
            }
            Err(e) => {
                self.line(&format!("{doing}: failed ({ms} ms)"));
                match &e {
                    StepError::Smolvm(s)
                        if step == Step::Create && s.known() == Known::AlreadyExists =>
                    {
                        Outcome::NameTaken(e)
                    }
                    _ => Outcome::Failed(e),
                }
            }
        }
    }

    fn perform(&mut self, step: Step) -> Result<(), StepError> {
        let Some(plan) = self.plan() else {
            return Ok(());
        };
        let cli = self.client().cli();
        match step {
            Step::Record => self.write_record(RecordPhase::Creating),
            Step::Pack => self.pack(plan),
            Step::Secrets => self.secrets(plan),
            Step::Upload => self.upload(plan),
            Step::Copy(i) => self.copy(plan, i),
            Step::Prune => {
                self.mark_removing(plan)?;
                let cli = self.client().cli();
                self.run_calls(&plan.inputs.calls(cli, step, &Staged::default()))
            }
            Step::Exec(_) => {
                self.exec_step(step, &plan.inputs.calls(cli, step, &Staged::default()))
            }
            _ => self.run_calls(&plan.inputs.calls(cli, step, &Staged::default())),
        }
    }

    /// Run calls in order; each must succeed.
    fn run_calls(&self, calls: &[Call]) -> Result<(), StepError> {
        calls.iter().try_for_each(|c| self.run_call(c))
    }

    fn run_call(&self, call: &Call) -> Result<(), StepError> {
        let c = self.client();
        match call.op {
            Op::Exec { .. } => {
                let r = c.exec(call)?;
                match r.code {
                    0 => Ok(()),
                    code => Err(StepError::Exec {
                        argv: r.argv,
                        code,
                        stderr: r.stderr,
                        log: None,
                    }),
                }
            }
            Op::Probe => {
                let timeout = self.plan().map(|p| p.inputs.desired.spec.ready_timeout);
                let timeout = timeout.unwrap_or(crate::spec::DEFAULT_READY_TIMEOUT);
                c.wait_ready(self.name, call, timeout, self.env.clock)?;
                Ok(())
            }
            Op::Delete => Ok(ignore_missing(c.run(call).map(drop))?),
            Op::Version
            | Op::Pack
            | Op::Create
            | Op::Start
            | Op::Stop
            | Op::Cp
            | Op::Status
            | Op::Ls => Ok(c.run(call).map(drop)?),
        }
    }

    /// Run an exec step's calls, each one's whole output going to the
    /// machine's exec log (memory keeps only a tail of it).
    fn exec_step(&self, step: Step, calls: &[Call]) -> Result<(), StepError> {
        let log = self.exec_log()?;
        let sink: Arc<dyn Sink> = log.clone();
        for call in calls {
            log.begin(&format!("{step}: `{call}`"));
            let result = self.client().exec_logged(call, &sink);
            let how = match &result {
                Ok(r) => format!("exit code {}", r.code),
                Err(e) => format!("did not finish: {}", one_line(e)),
            };
            if let Some(e) = log.end(&how) {
                let path = log.path().display();
                self.line(&format!("cannot write the exec log {path}: {e}"));
            }
            let r = result?;
            if r.code != 0 {
                return Err(StepError::Exec {
                    argv: r.argv,
                    code: r.code,
                    stderr: r.stderr,
                    log: Some(log.path().to_path_buf()),
                });
            }
        }
        Ok(())
    }

    /// The machine's exec log, started afresh on first use in this run.
    fn exec_log(&self) -> Result<Arc<ExecLog>, StepError> {
        if let Some(log) = self.log.get() {
            return Ok(log.clone());
        }
        let path = self.env.store.log_path(self.name.as_str());
        let words = self
            .plan()
            .map(|p| log::secret_words(p.inputs.desired))
            .unwrap_or_default();
        let log = ExecLog::create(path.clone(), words)
            .map_err(|source| StepError::Log { path, source })?;
        Ok(self.log.get_or_init(|| Arc::new(log)).clone())
    }

    /// Write the copy archive, `cp` it to the guest, and remove it.
    fn upload(&self, plan: &Plan<'_>) -> Result<(), StepError> {
        let Some(u) = &plan.inputs.upload else {
            return Ok(());
        };
        let path = u.host.as_path();
        let _archive =
            archive::write(path, &plan.inputs.files).map_err(|source| StepError::Archive {
                path: path.to_path_buf(),
                source,
            })?;
        let cli = self.client().cli();
        self.run_calls(&plan.inputs.calls(cli, Step::Upload, &Staged::default()))
    }

    /// Before removing anything, mark in the record each path about to be
    /// removed as [`REMOVING`]: whatever becomes of the prune (a failure, a
    /// kill), the next apply sends such a path again if a copy makes it and
    /// removes it (and the directories that held it) again if none does,
    /// and never takes it for one still in the guest.
    fn mark_removing(&mut self, plan: &Plan<'_>) -> Result<(), StepError> {
        let Some(record) = self.record.as_mut() else {
            return Ok(());
        };
        let removed: std::collections::BTreeSet<&String> =
            plan.inputs.transfer.remove.iter().collect();
        let copies = std::mem::take(&mut record.fingerprint.copies);
        record.fingerprint.copies = copies
            .into_iter()
            .map(|c| {
                let mut entries = c.entries;
                for (path, entry) in entries.iter_mut() {
                    if removed.contains(path) {
                        *entry = REMOVING.to_string();
                    }
                }
                crate::spec::CopyPrint::new(&c.dest, entries)
            })
            .collect();
        self.env.store.save(record)?;
        Ok(())
    }

    /// Send the i-th path by itself: a file through bottle's descriptor of
    /// it, opened as the regular file the spec resolved (a link or other
    /// file put in its place is refused, never followed); a link by `exec`.
    fn copy(&self, plan: &Plan<'_>, i: usize) -> Result<(), StepError> {
        let f = &plan.inputs.files[i];
        let cli = self.client().cli();
        let CopyKind::File { .. } = f.kind else {
            return self.run_calls(&plan.inputs.calls(cli, Step::Copy(i), &Staged::default()));
        };
        let path = f.host.as_path();
        let copy_err = |source| StepError::Copy {
            path: path.to_path_buf(),
            source,
        };
        let file = archive::open_regular(path).map_err(copy_err)?;
        let fd = fd_path(&file).map_err(|e| copy_err(archive::ArchiveError::Write(e)))?;
        let calls = plan.inputs.calls(cli, Step::Copy(i), &Staged::file(fd));
        let sent = self.run_calls(&calls);
        drop(file);
        sent
    }

    /// Put each secret into the guest (smolvm without `--secret-env`): a
    /// private directory, one `cp` per secret from a host memfd that no
    /// file system holds and that closes with this step (or with bottle,
    /// however it exits), then 0400.
    fn secrets(&self, plan: &Plan<'_>) -> Result<(), StepError> {
        let fds = plan
            .inputs
            .desired
            .secrets
            .iter()
            .map(|s| Ok((s.name.clone(), SecretFd::new(s.value.expose())?)))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|source| StepError::Secret { source })?;
        let paths = fds.iter().map(|(n, fd)| (n.clone(), fd.path().clone()));
        let staged = Staged::new(paths.collect());
        let calls = plan
            .inputs
            .calls(self.client().cli(), Step::Secrets, &staged);
        self.run_calls(&calls)
    }

    /// Pack the image into the cache; a failed pack leaves no file behind.
    fn pack(&self, plan: &Plan<'_>) -> Result<(), StepError> {
        let Some(out) = &plan.inputs.pack else {
            return Ok(());
        };
        let cache_err = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| StepError::Cache { path, source }
        };
        if let Some(dir) = out.stub.parent() {
            fs::create_dir_all(dir).map_err(cache_err(dir))?;
        }
        // One bottle packs an image at a time; the others wait for it, and
        // use the pack it wrote meanwhile rather than packing again.
        let calls = plan
            .inputs
            .calls(self.client().cli(), Step::Pack, &Staged::default());
        let wait = calls.first().map(|c| self.client().limit(c));
        let before = modified(&out.sidecar);
        let stopped = || self.client().interrupted();
        let _lock = crate::state::lock_file(out.lock.clone(), out.image.as_str(), wait, &stopped)?;
        if out.cached() && modified(&out.sidecar) != before {
            self.line(&format!(
                "pack {}: packed meanwhile by another apply; using it",
                out.image
            ));
            return Ok(());
        }
        let partial_sidecar = out.partial_sidecar();
        let result = self.run_calls(&calls);
        if result.is_ok() && partial_sidecar.is_file() {
            fs::rename(&partial_sidecar, &out.sidecar).map_err(cache_err(&out.sidecar))?;
            let _ = fs::rename(&out.partial, &out.stub);
            return Ok(());
        }
        let _ = fs::remove_file(&out.partial);
        let _ = fs::remove_file(&partial_sidecar);
        result?;
        Err(StepError::NoPack {
            argv: crate::smolvm::Argv(calls.iter().flat_map(|c| c.argv.clone()).collect()),
            path: partial_sidecar,
        })
    }

    /// Write the new machine's record as `creating`: nothing applied yet.
    fn write_record(&mut self, phase: RecordPhase) -> Result<(), StepError> {
        let Some(plan) = self.plan() else {
            return Ok(());
        };
        let d = plan.inputs.desired;
        let mut completed = self.done.clone();
        completed.push(Step::Record);
        let mut fingerprint = d.fingerprint.clone();
        fingerprint.copies.clear();
        fingerprint.execs.clear();
        let record = Record {
            schema: crate::state::RECORD_SCHEMA,
            name: d.spec.name.to_string(),
            spec_file: d.owner.clone(),
            spec_hash: d.fingerprint.hash(),
            fingerprint,
            phase,
            completed,
            pack: Some(plan.inputs.from.clone()),
            smolvm_version: self.env.client.version().clone(),
            legacy: None,
        };
        self.env.store.save(&record)?;
        self.record = Some(record);
        Ok(())
    }

    /// Note a successful step, and what it applied, in the record once
    /// this run has one (the record step wrote itself).
    fn progress(&mut self, step: Step) -> Result<(), StepError> {
        self.done.push(step);
        let plan = self.plan();
        let Some(record) = self.record.as_mut() else {
            return Ok(());
        };
        if step == Step::Record {
            return Ok(());
        }
        if let Some(plan) = plan {
            note_applied(&mut record.fingerprint, plan, step);
        }
        record.completed.clone_from(&self.done);
        self.env.store.save(record)?;
        Ok(())
    }

    fn teardown(&self, t: Teardown) -> Outcome<StepError> {
        let what = match (t, &self.work) {
            (Teardown::Stop, Work::Apply(_)) => "teardown: stop",
            (Teardown::Delete, Work::Apply(_)) => "teardown: delete",
            (Teardown::Stop, Work::Remove) => "stop",
            (Teardown::Delete, Work::Remove) => "delete",
        };
        let call = teardown_call(self.client().cli(), self.name, t);
        match self.run_call(&call) {
            Ok(()) => {
                self.line(&format!("{what}: ok"));
                Outcome::Done
            }
            Err(e) => {
                self.line(&format!("{what}: failed: {e}"));
                Outcome::Failed(e)
            }
        }
    }

    /// The calls that remove this machine by hand.
    pub fn remove_with(&self) -> Vec<Call> {
        teardown_calls(self.client().cli(), self.name)
    }
}

/// What `step` of `plan` applied, joined to a record's fingerprint: every
/// copy's print once the last step that sends or removes copied paths is
/// done (the guest then holds what the spec's copies make), or its exec
/// step's hash.
fn note_applied(applied: &mut crate::spec::Fingerprint, plan: &Plan<'_>, step: Step) {
    let want = &plan.inputs.desired.fingerprint;
    if let Step::Exec(i) = step {
        let hash = &want.execs[i];
        if !applied.execs.contains(hash) {
            applied.execs.push(hash.clone());
        }
        return;
    }
    let at = plan.steps.iter().position(|s| *s == step);
    let later = at.map_or(&[][..], |at| &plan.steps[at + 1..]);
    if moves_copies(step) && !later.iter().copied().any(moves_copies) {
        applied.copies.clone_from(&want.copies);
    }
}

/// Whether a step sends or removes copied paths.
fn moves_copies(step: Step) -> bool {
    match step {
        Step::Prune | Step::Upload | Step::Unpack | Step::Copy(_) => true,
        Step::Pack
        | Step::StopOld
        | Step::DeleteOld
        | Step::Record
        | Step::Create
        | Step::Start
        | Step::WaitReady
        | Step::Secrets
        | Step::Exec(_) => false,
    }
}

/// Turn a finished apply into its result, keeping the record in step.
pub(super) fn finish_apply<S: Smolvm>(
    env: &Env<'_, S>,
    plan: &Plan<'_>,
    remove_with: Vec<Call>,
    finished: Finished,
    record: Option<Record>,
) -> Result<(), ApplyError> {
    let name = plan.name();
    // A run that keeps its machine was handed the machine's record; any
    // other run holds one only if its record step wrote it.
    let made_record = record.is_some() && !plan.decision.keeps_machine();
    let Some(failed) = finished.failure else {
        let Some(r) = record else {
            return Ok(());
        };
        // A converged re-apply writes nothing: the record already says it.
        let done = completed(r.clone(), plan);
        return match done == r {
            true => Ok(()),
            false => Ok(env.store.save(&done)?),
        };
    };
    match finished.end {
        End::Removed => env.store.remove(name.as_str())?,
        End::NothingCreated if made_record => env.store.remove(name.as_str())?,
        End::NothingCreated => {}
        End::Left | End::Kept | End::Ready => {
            if let Some(mut r) = record {
                r.phase = RecordPhase::Failed;
                let _ = env.store.save(&r);
            }
        }
    }
    Err(step_error(plan, failed, finished.end, remove_with))
}

/// The record once every step of `plan` succeeded: the machine is what
/// the spec says, and every exec step that ever ran on it stays recorded.
fn completed(mut r: Record, plan: &Plan<'_>) -> Record {
    let d = plan.inputs.desired;
    let ran = std::mem::take(&mut r.fingerprint.execs);
    r.phase = RecordPhase::Complete;
    r.fingerprint = crate::spec::Fingerprint {
        execs: ran,
        ..d.fingerprint.clone()
    };
    r.spec_hash = d.fingerprint.hash();
    r.spec_file.clone_from(&d.owner);
    r
}

/// The error of an apply whose step `failed`, which ended as `end`.
fn step_error(
    plan: &Plan<'_>,
    failed: Failed<StepError>,
    end: End,
    remove_with: Vec<Call>,
) -> ApplyError {
    let step = plan.steps[failed.at];
    let cause = match failed.cause {
        Failure::Error(e) => e,
        Failure::Interrupted(signal) => StepError::Interrupted { signal },
    };
    ApplyError::Step {
        name: plan.name().to_string(),
        step,
        doing: plan.inputs.describe(step),
        cause: Box::new(cause),
        cleanup: end,
        in_place: plan.decision.keeps_machine(),
        remove_with,
    }
}

/// A `delete` of a machine that is already gone has done its job.
fn ignore_missing(r: Result<(), SmolvmError>) -> Result<(), SmolvmError> {
    match r {
        Err(e) if e.known() == Known::NotFound => Ok(()),
        other => other,
    }
}

/// A file's modification time, if it exists.
fn modified(path: &std::path::Path) -> Option<std::time::SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}
