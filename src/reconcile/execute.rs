//! The executor: runs the step each lifecycle phase names through the
//! smolvm wrapper, feeds the outcome to `lifecycle::next`, and keeps the
//! ownership record in step with what exists.
//!
//! Record protocol: a `Creating` record is written before `create` is
//! issued and updated after each later step; `Complete` when every step
//! succeeded; removed when a teardown deleted the machine; `Failed` when
//! the machine may still exist. A record is never written for a machine
//! whose name was taken by someone else.

use std::fs;
use std::time::Instant;

use crate::lifecycle::{self, Cleanup, Outcome, Phase, Rules, State, Step, Teardown};
use crate::smolvm::{Argv, Client, ExecArgs, Known, Smolvm, SmolvmError};
use crate::state::{Record, RecordPhase, StateError};

use super::Env;
use super::archive;
use super::error::{ApplyError, StepError};
use super::prepared::Prepared;

pub(super) struct Execution<'a, 'e, S> {
    pub env: &'a Env<'e, S>,
    pub prep: &'a Prepared<'a>,
    pub steps: &'a [Step],
    pub rules: Rules,
    /// The record this run owns, once it has written one.
    pub record: Option<Record>,
    /// Steps of this run that succeeded, in order.
    pub done: Vec<String>,
}

impl<S: Smolvm> Execution<'_, '_, S> {
    fn client(&self) -> &Client<S> {
        self.env.client
    }

    fn name(&self) -> &str {
        self.prep.name()
    }

    /// Walk the lifecycle to a terminal phase.
    pub fn run(mut self) -> Result<(), ApplyError> {
        let mut state = State::initial(self.steps.len());
        let mut failure: Option<StepError> = None;
        loop {
            let outcome = match state.phase {
                Phase::Run(i) if self.client().interrupted().is_some() => {
                    let signal = self.client().interrupted().unwrap_or_default();
                    failure = failure.or(Some(StepError::Interrupted { signal }));
                    self.env.report.line(
                        self.name(),
                        &format!(
                            "{}: not started (interrupted)",
                            self.prep.describe(self.steps[i])
                        ),
                    );
                    Outcome::Failed
                }
                Phase::Run(i) => {
                    let (outcome, err) = self.step(self.steps[i]);
                    failure = failure.or(err);
                    outcome
                }
                Phase::TearDown(t) => self.teardown(t),
                Phase::Ready => return self.finish_ready(),
                Phase::Failed(cleanup) => {
                    let step = state.failed_at.map_or(Step::Create, |i| self.steps[i]);
                    return self.finish_failed(step, cleanup, failure);
                }
            };
            state = lifecycle::next(self.steps, self.rules, state, outcome);
        }
    }

    fn step(&mut self, step: Step) -> (Outcome, Option<StepError>) {
        let started = Instant::now();
        let doing = self.prep.describe(step);
        let result = self.perform(step);
        let ms = started.elapsed().as_millis();
        match result {
            Ok(()) => {
                self.env
                    .report
                    .line(self.name(), &format!("{doing}: ok ({ms} ms)"));
                match self.progress(step) {
                    Ok(()) => (Outcome::Done, None),
                    Err(e) => (Outcome::Failed, Some(e)),
                }
            }
            Err(e) => {
                self.env
                    .report
                    .line(self.name(), &format!("{doing}: failed ({ms} ms)"));
                let outcome = match &e {
                    StepError::Smolvm(s)
                        if step == Step::Create && s.known() == Known::AlreadyExists =>
                    {
                        Outcome::NameTaken
                    }
                    _ => Outcome::Failed,
                };
                (outcome, Some(e))
            }
        }
    }

    fn perform(&mut self, step: Step) -> Result<(), StepError> {
        if step == Step::Create {
            self.write_record(RecordPhase::Creating)?;
        }
        let c = self.client();
        let name = self.name();
        match step {
            Step::Pack => self.pack(),
            Step::StopOld => Ok(c.machine_stop(name)?),
            Step::DeleteOld => Ok(ignore_missing(c.machine_delete(name))?),
            Step::Create => Ok(c.machine_create(&self.prep.create_args())?),
            Step::Start => Ok(c.machine_start(name)?),
            Step::WaitReady => {
                let timeout = self.prep.desired.spec.ready_timeout;
                c.wait_exec_ready(name, timeout, self.env.clock)?;
                Ok(())
            }
            Step::Copy(i) => {
                let (src, dst) = self.prep.copy_args(i);
                Ok(c.machine_cp(src, &dst)?)
            }
            Step::Secrets => self.secrets(),
            Step::Upload => self.upload(),
            Step::Unpack => {
                let args = ExecArgs {
                    name,
                    ..ExecArgs::default()
                };
                self.guest(&args, &self.prep.unpack_command())
            }
            Step::Exec(i) => {
                let (args, cmd) = self.prep.exec_args(i);
                self.guest(&args, &cmd)
            }
        }
    }

    /// Run a guest command that must succeed.
    fn guest(&self, args: &ExecArgs<'_>, cmd: &[String]) -> Result<(), StepError> {
        let r = self.client().machine_exec(args, cmd)?;
        if r.code == 0 {
            return Ok(());
        }
        Err(StepError::Exec {
            argv: r.argv,
            code: r.code,
            stderr: r.stderr,
        })
    }

    /// Write the copy archive, `cp` it to the guest, and remove it.
    fn upload(&self) -> Result<(), StepError> {
        let Some(u) = &self.prep.upload else {
            return Ok(());
        };
        let archive = archive::write(&u.host, &self.prep.desired.files).map_err(|source| {
            StepError::Archive {
                path: u.host.clone(),
                source,
            }
        })?;
        let src = archive.path().to_string_lossy().into_owned();
        self.client()
            .machine_cp(&src, &format!("{}:{}", self.name(), u.guest))?;
        Ok(())
    }

    /// Put each secret into the guest: a private directory, one `cp` per
    /// secret from a 0600 host temp file removed right after, then 0400.
    fn secrets(&self) -> Result<(), StepError> {
        let name = self.name();
        let args = ExecArgs {
            name,
            ..ExecArgs::default()
        };
        self.guest(&args, &Prepared::secrets_dir_command())?;
        for s in &self.prep.desired.secrets {
            let tmp = secret_file(s.value.expose())?;
            let src = tmp.path().to_string_lossy().into_owned();
            let dst = format!("{name}:{}", Prepared::secret_path(s.name.as_str()));
            self.client().machine_cp(&src, &dst)?;
            tmp.close().map_err(|source| StepError::Secret { source })?;
        }
        self.guest(&args, &self.prep.secrets_mode_command())
    }

    /// Pack the image into the cache; a failed pack leaves no file behind.
    fn pack(&self) -> Result<(), StepError> {
        let Some(out) = &self.prep.pack else {
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
        let before = modified(&out.sidecar);
        let _lock = crate::state::lock_file(
            out.lock.clone(),
            &out.image,
            Some(self.env.client.pack_limit()),
        )?;
        if out.cached() && modified(&out.sidecar) != before {
            self.env.report.line(
                self.name(),
                &format!(
                    "pack {}: packed meanwhile by another apply; using it",
                    out.image
                ),
            );
            return Ok(());
        }
        let partial_sidecar = out.partial_sidecar();
        let result = self.client().pack_create(&out.image, &out.partial);
        if result.is_ok() && partial_sidecar.is_file() {
            fs::rename(&partial_sidecar, &out.sidecar).map_err(cache_err(&out.sidecar))?;
            let _ = fs::rename(&out.partial, &out.stub);
            return Ok(());
        }
        let _ = fs::remove_file(&out.partial);
        let _ = fs::remove_file(&partial_sidecar);
        result?;
        let argv = self
            .prep
            .argv(self.client().program(), self.client().dialect(), Step::Pack);
        Err(StepError::NoPack {
            argv: Argv(argv),
            path: partial_sidecar,
        })
    }

    fn write_record(&mut self, phase: RecordPhase) -> Result<(), StateError> {
        let d = self.prep.desired;
        let record = self.record.get_or_insert_with(|| Record {
            name: d.spec.name.to_string(),
            spec_file: d.spec.file.clone(),
            spec_hash: d.fingerprint.hash(),
            fingerprint: d.fingerprint.clone(),
            phase,
            completed: self.done.clone(),
            pack: Some(self.prep.from.clone().into()),
            smolvm_version: self.env.client.version().to_string(),
        });
        record.phase = phase;
        self.env.store.save(record)
    }

    /// Note a successful step, in the record once this run owns one.
    fn progress(&mut self, step: Step) -> Result<(), StepError> {
        self.done.push(step.to_string());
        let Some(record) = self.record.as_mut() else {
            return Ok(());
        };
        record.completed.clone_from(&self.done);
        self.env.store.save(record)?;
        Ok(())
    }

    fn teardown(&self, t: Teardown) -> Outcome {
        let (what, result) = match t {
            Teardown::Stop => ("teardown: stop", self.client().machine_stop(self.name())),
            Teardown::Delete => (
                "teardown: delete",
                ignore_missing(self.client().machine_delete(self.name())),
            ),
        };
        match result {
            Ok(()) => {
                self.env.report.line(self.name(), &format!("{what}: ok"));
                Outcome::Done
            }
            Err(e) => {
                self.env
                    .report
                    .line(self.name(), &format!("{what}: failed: {e}"));
                Outcome::Failed
            }
        }
    }

    fn finish_ready(mut self) -> Result<(), ApplyError> {
        if self.record.is_some() {
            self.write_record(RecordPhase::Complete)?;
        }
        Ok(())
    }

    fn finish_failed(
        mut self,
        step: Step,
        cleanup: Cleanup,
        failure: Option<StepError>,
    ) -> Result<(), ApplyError> {
        match cleanup {
            Cleanup::Removed => self.env.store.remove(self.name())?,
            Cleanup::NothingCreated if self.record.is_some() => {
                self.env.store.remove(self.name())?
            }
            Cleanup::NothingCreated => {}
            Cleanup::Left | Cleanup::Kept => {
                let _ = self.write_record(RecordPhase::Failed);
            }
        }
        let cause = failure.unwrap_or_else(|| {
            StepError::Smolvm(SmolvmError::Missing {
                detail: "a step failed without an error".into(),
            })
        });
        Err(ApplyError::Step {
            name: self.name().to_string(),
            step,
            doing: self.prep.describe(step),
            cause: Box::new(cause),
            cleanup,
        })
    }
}

/// A 0600 host temp file holding `value` (removed when dropped or closed).
fn secret_file(value: &[u8]) -> Result<tempfile::NamedTempFile, StepError> {
    use std::io::Write;
    let mut tmp = tempfile::Builder::new()
        .prefix("bottle-secret-")
        .tempfile()
        .map_err(|source| StepError::Secret { source })?;
    tmp.write_all(value)
        .and_then(|()| tmp.flush())
        .map_err(|source| StepError::Secret { source })?;
    if tmp.path().to_string_lossy().contains(':') {
        let source = std::io::Error::other(
            "the temp directory's path contains `:`, which smolvm's cp misreads",
        );
        return Err(StepError::Secret { source });
    }
    Ok(tmp)
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
