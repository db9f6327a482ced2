//! The command line: reads arguments, wires the real world (processes,
//! clock, directories) to the library, prints, and turns errors into exit
//! codes through the one CLI [`Error`]. It holds no apply logic of its own.

mod args;
mod error;
mod exit;
mod output;
mod prompt;
mod render;
mod signals;
pub(crate) mod term;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use clap::Parser;

use crate::lifecycle::OnFailure;
use crate::plan::{self, Decision, Egress, Observed};
use crate::reconcile::{ApplyError, Claim, Collected, Env, Options, Survey, Switched, report};
use crate::smolvm::arg_limit::{ArgLimit, EnvSize};
use crate::smolvm::{self, Client, Limits, SystemClock, process::ProcessSmolvm};
use crate::spec::{self, Desired, MachineName, SpecError};
use crate::state::{self, Store};
use output::{Mask, Out};

pub use args::{AllowArgs, Args, Command};
pub use error::Error;
pub use exit::Exit;

/// What `smolvm-sim --version` prints after the version: how bottle tells
/// it is talking to its simulator.
const SIM_BANNER: &str = "(smolvm-sim";

/// Run bottle with the process's arguments; returns the exit code.
pub fn main() -> std::process::ExitCode {
    let exit = match Args::try_parse() {
        Ok(args) => run(args),
        Err(e) if e.use_stderr() => {
            term::err(&e.render().to_string());
            Exit::Invalid
        }
        Err(e) => {
            term::out(&e.render().to_string());
            Exit::Ok
        }
    };
    std::process::ExitCode::from(exit.code())
}

/// Run one parsed command.
pub fn run(args: Args) -> Exit {
    match &args.command {
        Command::Apply {
            specs,
            keep_on_failure,
            allow_unenforced_egress,
            repack,
            jobs,
            allow,
        } => {
            let opts = Options {
                on_failure: match keep_on_failure {
                    true => OnFailure::Keep,
                    false => OnFailure::TearDown,
                },
                allow_unenforced_egress: *allow_unenforced_egress,
                repack: *repack,
                allow: allow.into(),
            };
            let claim = |env: &Env<'_, ProcessSmolvm>, desired: &[Desired], out: &Out| {
                let names: Vec<&MachineName> = desired.iter().map(|d| &d.spec.name).collect();
                let claims = env.claim_all(&names, |i| env.refused_early(&desired[i], opts).err());
                if let Some(first) = claims.iter().position(Result::is_ok) {
                    env.sweep(names[first]);
                }
                let report = |e: ApplyError| error::report(&e.into(), &out.mask);
                claims.into_iter().map(|c| c.map_err(report)).collect()
            };
            with_specs(
                &args,
                specs,
                usize::from(*jobs),
                claim,
                |env, d, claim, out| apply_one(env, d, opts, claim, out),
            )
        }
        Command::Plan {
            specs,
            allow_unenforced_egress,
            repack,
            allow,
        } => {
            let survey = |env: &Env<'_, ProcessSmolvm>, desired: &[Desired], _: &Out| {
                let survey = env.survey().map(Arc::new).map_err(Exit::Interrupted);
                vec![survey; desired.len()]
            };
            with_specs(&args, specs, 1, survey, |env, d, survey, out| {
                let opts = Options::plan(*repack, allow.into());
                plan_one(env, d, *allow_unenforced_egress, opts, survey, out)
            })
        }
        Command::Stop { target } => with_target(&args, target, stop_one),
        Command::Start { target } => with_target(&args, target, start_one),
        Command::Down { target } => with_target(&args, target, down_one),
        Command::Gc { dry_run, packs } => gc(&args, *dry_run, *packs),
        Command::Status { target, json } => {
            with_target(&args, target, |env, t| status_one(env, &t.name, *json))
        }
        Command::Render(target) => crate::render::run(target),
    }
}

/// Print `e` with every secret value of `desired` masked; its exit code.
pub(crate) fn report(e: Error, desired: &[Desired]) -> Exit {
    error::report(&e, &Mask::of(desired))
}

/// Everything a command needs from the world, built once per run.
struct World {
    client: Client<ProcessSmolvm>,
    store: Store,
    cache_dir: PathBuf,
    active: Arc<signals::Active>,
    lock_wait: Option<std::time::Duration>,
    confirm: prompt::Prompt,
}

/// Where smolvm and bottle's directories are, worked out once per run.
struct Found {
    program: Result<PathBuf, smolvm::SmolvmError>,
    dirs: Result<(PathBuf, PathBuf), state::StateError>,
}

impl Found {
    fn of(args: &Args) -> Self {
        Found {
            program: smolvm_program(args),
            dirs: state_dirs(args),
        }
    }
}

impl World {
    fn open(args: &Args) -> Result<World, Error> {
        Self::open_at(args, Found::of(args))
    }

    fn open_at(args: &Args, found: Found) -> Result<World, Error> {
        let program = found.program?;
        let program = program.to_string_lossy().into_owned();
        let limits = args.step_timeout.map_or_else(Limits::default, Limits::all);
        let smolvm = ProcessSmolvm::default();
        let active = Arc::new(signals::Active::default());
        signals::install(smolvm.interrupt.clone(), active.clone());
        let confirm = prompt::Prompt::new(smolvm.interrupt.clone());
        let interrupt = smolvm.interrupt.clone();
        let client =
            Client::connect(smolvm, &program, limits).map_err(|e| match interrupt.signal() {
                Some(signal) => Error::Interrupted(signal),
                None => e.into(),
            })?;
        if args.sim || client.banner().contains(SIM_BANNER) {
            term::err(&format!(
                "note: {program} is smolvm-sim, bottle's simulator (as smolvm {}): machines are \
                 simulated, no VM runs and no egress rule is enforced\n",
                client.version()
            ));
        }
        let (state_dir, cache_dir) = found.dirs?;
        Ok(World {
            client,
            store: Store::new(&state_dir),
            cache_dir,
            active,
            lock_wait: args.wait_lock,
            confirm,
        })
    }

    fn env<'a>(&'a self, report: &'a dyn report::Report) -> Env<'a, ProcessSmolvm> {
        Env {
            client: &self.client,
            store: &self.store,
            cache_dir: &self.cache_dir,
            clock: &SystemClock,
            report,
            confirm: &self.confirm,
            lock_wait: self.lock_wait,
        }
    }

    /// `exit`, or the signal's exit if bottle was interrupted.
    fn exit(&self, exit: Exit) -> Exit {
        self.client.interrupted().map_or(exit, Exit::Interrupted)
    }
}

fn smolvm_program(args: &Args) -> Result<PathBuf, smolvm::SmolvmError> {
    if !args.sim {
        return smolvm::locate(args.smolvm.as_deref());
    }
    let exe = std::env::current_exe().map_err(|e| smolvm::SmolvmError::Missing {
        detail: e.to_string(),
    })?;
    smolvm::locate(Some(&exe.with_file_name("smolvm-sim")))
}

/// The state and cache directories, made absolute (so no path bottle gives
/// smolvm can be read as a flag).
fn state_dirs(args: &Args) -> Result<(PathBuf, PathBuf), state::StateError> {
    let state_dir = match &args.state_dir {
        Some(d) => d.clone(),
        None => state::default_state_dir()?,
    };
    let cache_dir = match &args.cache_dir {
        Some(d) => d.clone(),
        None => state::default_cache_dir()?,
    };
    let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
    Ok((absolute(state_dir), absolute(cache_dir)))
}

/// Load and resolve every spec; refuse duplicates. Prints errors. With a
/// cache directory, files whose content hash is cached there and that did
/// not change are not read again, and the cache is brought up to date.
pub(crate) fn load_all(paths: &[PathBuf], cache_dir: Option<&Path>) -> Result<Vec<Desired>, Exit> {
    let mut out: Vec<Desired> = Vec::new();
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut worst = Exit::Ok;
    let mask = Mask::default();
    for path in paths {
        let loaded = spec::load(path).and_then(|s| resolve_cached(s, cache_dir));
        let loaded = loaded.and_then(|d| {
            let name = d.spec.name.to_string();
            match names.insert(name.clone(), path.clone()) {
                Some(first) => Err(SpecError::DuplicateName {
                    name,
                    first,
                    second: path.clone(),
                }),
                None => Ok(d),
            }
        });
        match loaded {
            Ok(d) => out.push(d),
            Err(e) => worst = worst.max(error::report(&e.into(), &mask)),
        }
    }
    match worst {
        Exit::Ok => Ok(out),
        _ => Err(worst),
    }
}

/// Resolve `spec` through the hash cache of its file in `cache_dir` (if
/// any), saving what it learnt.
fn resolve_cached(spec: spec::Spec, cache_dir: Option<&Path>) -> Result<Desired, SpecError> {
    let Some(dir) = cache_dir else {
        return spec::resolve(spec);
    };
    let owner = spec::owner(&spec.file);
    let hashes = state::hashes::load(dir, &owner);
    let desired = spec::resolve_with(spec, owner, &hashes)?;
    let _ = state::hashes::save(dir, &desired.owner, &hashes);
    Ok(desired)
}

/// Run `each` on every spec, `jobs` at a time, with what `prepare` made
/// for it (from all the specs at once, before any of them runs; a spec
/// `prepare` failed for, having said why, is not run): workers take the
/// next spec in file order until none is left or a signal arrived. With
/// one job the specs run in order on this thread. The exit code is the
/// worst one.
fn with_specs<T: Send>(
    args: &Args,
    paths: &[PathBuf],
    jobs: usize,
    prepare: impl FnOnce(&Env<'_, ProcessSmolvm>, &[Desired], &Out) -> Vec<Result<T, Exit>>,
    each: impl Fn(&Env<'_, ProcessSmolvm>, &Desired, T, &Out) -> Exit + Sync,
) -> Exit {
    let found = Found::of(args);
    let cache_dir = found.dirs.as_ref().ok().map(|(_, cache)| cache.as_path());
    let desired = match load_all(paths, cache_dir) {
        Ok(d) => d,
        Err(exit) => return exit,
    };
    let out = Out {
        mask: Mask::of(&desired),
    };
    if let Err(exit) = check_arg_limits(&found, &desired, &out.mask) {
        return exit;
    }
    let world = match World::open_at(args, found) {
        Ok(w) => w,
        Err(e) => return error::report(&e, &out.mask),
    };
    let mut failed = Exit::Ok;
    let prepared: Vec<Mutex<Option<T>>> = prepare(&world.env(&out), &desired, &out)
        .into_iter()
        .map(|t| {
            let t = t.map_err(|exit| failed = failed.max(exit)).ok();
            Mutex::new(t)
        })
        .collect();
    let next = AtomicUsize::new(0);
    let worst = Mutex::new(failed);
    let work = || {
        let env = world.env(&out);
        while world.client.interrupted().is_none() {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(d) = desired.get(i) else {
                break;
            };
            let Some(t) = prepared.get(i).and_then(take) else {
                continue;
            };
            let name = d.spec.name.as_str();
            world.active.enter(name);
            let exit = each(&env, d, t, &out);
            world.active.leave(name);
            if let Ok(mut w) = worst.lock() {
                *w = (*w).max(exit);
            }
        }
    };
    let workers = jobs.clamp(1, desired.len().max(1));
    if workers == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(work);
            }
        });
    }
    let worst = worst.into_inner().unwrap_or(Exit::Failed);
    world.exit(worst)
}

/// What a mutex holds, taken out of it.
fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().ok().and_then(|mut t| t.take())
}

/// Refuse (exit 2) a spec whose `create` call would not fit the kernel's
/// argument limit, before any smolvm call. When smolvm or the cache
/// directory cannot be found, this passes: opening the world says so.
fn check_arg_limits(found: &Found, desired: &[Desired], mask: &Mask) -> Result<(), Exit> {
    let (Ok(program), Ok((_, cache_dir))) = (&found.program, &found.dirs) else {
        return Ok(());
    };
    let program = program.to_string_lossy();
    let (limit, env) = (ArgLimit::of_system(), EnvSize::of_process());
    let refused = desired
        .iter()
        .filter_map(|d| plan::check_create(d, &program, cache_dir, limit, env).err());
    let worst = refused.map(|e| error::report(&e.into(), mask)).max();
    worst.map_or(Ok(()), Err)
}

fn apply_one(
    env: &Env<'_, ProcessSmolvm>,
    desired: &Desired,
    opts: Options,
    claim: Claim,
    out: &Out,
) -> Exit {
    match env.apply_claimed(desired, opts, claim) {
        Ok(Decision::Unchanged) => Exit::Ok,
        Ok(_) => {
            report::Report::line(out, desired.spec.name.as_str(), "ready");
            Exit::Ok
        }
        Err(e) => error::report(&e.into(), &out.mask),
    }
}

fn plan_one(
    env: &Env<'_, ProcessSmolvm>,
    desired: &Desired,
    allow_unenforced: bool,
    opts: Options,
    survey: Arc<Survey>,
    out: &Out,
) -> Exit {
    let plan = match env.plan_surveyed(desired, opts, &survey) {
        Ok(plan) => plan,
        Err(e) => return error::report(&e.into(), &out.mask),
    };
    let name = plan.name().as_str();
    for w in plan.warnings(env.client.version()) {
        term::err(&format!("{w}\n"));
    }
    let creates = plan.steps.contains(&plan::Step::Create);
    if plan.egress == Egress::Unenforced && !allow_unenforced && creates {
        term::err(&format!(
            "{name}: `bottle apply` will refuse this unless --allow-unenforced-egress is given\n"
        ));
    }
    term::out(&render::plan(&plan, env.client.cli()));
    Exit::Ok
}

/// A command's target: the machine, and its spec when it was named by
/// its spec file.
struct Target {
    name: MachineName,
    spec: Option<spec::Spec>,
    /// The spec file's canonical path, when named by it: the machine must
    /// be that spec's.
    owner: Option<PathBuf>,
}

/// A target is a spec file (by extension or existence) or a machine name.
fn target_of(target: &str) -> Result<Target, Error> {
    let path = Path::new(target);
    if target.ends_with(".toml") || path.is_file() {
        let spec = spec::load(path)?;
        return Ok(Target {
            name: spec.name.clone(),
            owner: Some(spec::owner(path)),
            spec: Some(spec),
        });
    }
    let name = MachineName::parse(target).map_err(|cause| Error::Target {
        target: target.to_string(),
        cause,
    })?;
    Ok(Target {
        name,
        spec: None,
        owner: None,
    })
}

fn with_target(
    args: &Args,
    target: &str,
    each: impl Fn(&Env<'_, ProcessSmolvm>, &Target) -> Result<(), Error>,
) -> Exit {
    let mask = Mask::default();
    let name = match target_of(target) {
        Ok(n) => n,
        Err(e) => return error::report(&e, &mask),
    };
    let world = match World::open(args) {
        Ok(w) => w,
        Err(e) => return error::report(&e, &mask),
    };
    let out = Out::default();
    let exit = match each(&world.env(&out), &name) {
        Ok(()) => Exit::Ok,
        Err(e) => error::report(&e, &mask),
    };
    world.exit(exit)
}

fn gc(args: &Args, dry_run: bool, packs: bool) -> Exit {
    let mask = Mask::default();
    let world = match World::open(args) {
        Ok(w) => w,
        Err(e) => return error::report(&e, &mask),
    };
    let out = Out::default();
    let env = world.env(&out);
    let collected = match env.gc(dry_run) {
        Ok(c) => c,
        Err(e) => return error::report(&e.into(), &mask),
    };
    let mut worst = Exit::Ok;
    let nothing = collected.is_empty();
    for c in collected.iter() {
        match c {
            Collected::WouldRemove { name, phase } => term::out(&format!(
                "{name}: would remove (its last apply is {})\n",
                render::phase_word(*phase)
            )),
            Collected::Removed { name } => term::out(&format!("{name}: removed\n")),
            Collected::Failed(_) => {}
        }
    }
    for c in collected.into_iter() {
        if let Collected::Failed(e) = c {
            worst = worst.max(error::report(&e.into(), &mask));
        }
    }
    let pruned = match packs.then(|| env.gc_packs(dry_run)).transpose() {
        Ok(p) => p.unwrap_or_default(),
        Err(e) => return error::report(&e.into(), &mask),
    };
    let verb = if dry_run { "would remove" } else { "removed" };
    for p in &pruned {
        term::out(&format!("pack {}: {verb}\n", p.display()));
    }
    let leftovers = env.gc_leftovers(dry_run);
    for p in &leftovers {
        term::out(&format!("leftover {}: {verb}\n", p.display()));
    }
    if nothing && pruned.is_empty() && leftovers.is_empty() {
        term::err("nothing to collect\n");
    }
    world.exit(worst)
}

fn stop_one(env: &Env<'_, ProcessSmolvm>, target: &Target) -> Result<(), Error> {
    let said = match env.stop_for(&target.name, target.owner.as_deref())? {
        Switched::Done => "stopped (its disk is kept; `bottle start` or `bottle apply` starts it)",
        Switched::Already(_) => "already stopped",
    };
    env.report.line(target.name.as_str(), said);
    Ok(())
}

fn start_one(env: &Env<'_, ProcessSmolvm>, target: &Target) -> Result<(), Error> {
    let timeout = target.spec.as_ref().map(|s| s.ready_timeout);
    let said = match env.start_for(&target.name, timeout, target.owner.as_deref())? {
        Switched::Done => "started",
        Switched::Already(_) => "already running",
    };
    env.report.line(target.name.as_str(), said);
    Ok(())
}

fn down_one(env: &Env<'_, ProcessSmolvm>, target: &Target) -> Result<(), Error> {
    let name = &target.name;
    let said = match env.down_for(name, target.owner.as_deref())? {
        Observed::Missing => "already gone; record removed",
        Observed::Present(_) => "removed",
    };
    env.report.line(name.as_str(), said);
    Ok(())
}

fn status_one(env: &Env<'_, ProcessSmolvm>, name: &MachineName, json: bool) -> Result<(), Error> {
    let (record, observed) = env.status(name)?;
    let name = name.as_str();
    let text = match json {
        true => render::status_json(name, record.as_ref(), &observed),
        false => render::status_line(name, record.as_ref(), &observed),
    };
    term::out(&format!("{text}\n"));
    Ok(())
}

impl From<&AllowArgs> for plan::Allow {
    fn from(a: &AllowArgs) -> Self {
        plan::Allow {
            replace: a.replace,
            adopt: a.adopt,
            rerun_exec: a.rerun_exec,
            keep_removed: a.no_prune,
        }
    }
}
