//! The command line: reads arguments, wires the real world (processes,
//! clock, directories) to the library, prints, and maps errors to exit
//! codes. It holds no apply logic of its own.

mod args;
mod exit;
mod output;
mod render;
mod signals;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use clap::Parser;

use crate::lifecycle::OnFailure;
use crate::reconcile::{Collected, Decision, Egress, Env, Options, report};
use crate::smolvm::{self, Client, Limits, SystemClock, process::ProcessSmolvm};
use crate::spec::{self, Desired, MachineName, SpecError};
use crate::state::{self, Store};
use output::{Mask, Out};

pub use args::{Args, Command};
pub use exit::Exit;

/// Run bottle with the process's arguments; returns the exit code.
pub fn main() -> i32 {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Invalid.code()
            } else {
                0
            };
        }
    };
    run(args).code()
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
        } => {
            let on_failure = if *keep_on_failure {
                OnFailure::Keep
            } else {
                OnFailure::TearDown
            };
            let opts = Options {
                on_failure,
                allow_unenforced_egress: *allow_unenforced_egress,
                repack: *repack,
            };
            with_specs(&args, specs, usize::from(*jobs), |env, d, out| {
                apply_one(env, d, opts, out)
            })
        }
        Command::Plan {
            specs,
            allow_unenforced_egress,
            repack,
        } => with_specs(&args, specs, 1, |env, d, out| {
            plan_one(env, d, *allow_unenforced_egress, *repack, out)
        }),
        Command::Down { target } => with_target(&args, target, down_one),
        Command::Gc { dry_run, packs } => gc(&args, *dry_run, *packs),
        Command::Status { target, json } => {
            with_target(&args, target, |env, name| status_one(env, name, *json))
        }
    }
}

/// Everything a command needs from the world, built once per run.
struct World {
    client: Client<ProcessSmolvm>,
    store: Store,
    cache_dir: PathBuf,
    active: Arc<signals::Active>,
    lock_wait: Option<std::time::Duration>,
}

impl World {
    fn open(args: &Args) -> Result<World, Exit> {
        let program = smolvm_program(args).map_err(|e| {
            exit::print_error(&e);
            eprintln!(
                "hint: to try bottle without smolvm, pass --sim to use the bundled simulator"
            );
            exit::of_smolvm(&e)
        })?;
        let program = program.to_string_lossy().into_owned();
        let limits = args.step_timeout.map_or_else(Limits::default, Limits::all);
        let smolvm = ProcessSmolvm::default();
        let active = Arc::new(signals::Active::default());
        signals::install(smolvm.interrupt.clone(), active.clone());
        let client = Client::connect(smolvm, &program, limits).map_err(|e| {
            exit::print_error(&e);
            exit::of_smolvm(&e)
        })?;
        if client.simulated() {
            eprintln!(
                "note: {program} is smolvm-sim, bottle's simulator (as smolvm {}): machines are \
                 simulated, no VM runs and no egress rule is enforced",
                client.version()
            );
        }
        let dirs = state_dirs(args).map_err(|e| {
            exit::print_error(&e);
            Exit::Environment
        })?;
        Ok(World {
            client,
            store: Store::new(&dirs.0),
            cache_dir: dirs.1,
            active,
            lock_wait: args.wait_lock,
        })
    }

    fn env<'a>(&'a self, report: &'a dyn report::Report) -> Env<'a, ProcessSmolvm> {
        Env {
            client: &self.client,
            store: &self.store,
            cache_dir: &self.cache_dir,
            clock: &SystemClock,
            report,
            lock_wait: self.lock_wait,
        }
    }
}

fn smolvm_program(args: &Args) -> Result<PathBuf, smolvm::SmolvmError> {
    if !args.sim {
        return smolvm::locate(args.smolvm.as_deref());
    }
    let exe = std::env::current_exe().map_err(|e| smolvm::SmolvmError::Missing {
        detail: e.to_string(),
    })?;
    let sim = exe.with_file_name("smolvm-sim");
    smolvm::locate(Some(&sim))
}

fn state_dirs(args: &Args) -> Result<(PathBuf, PathBuf), state::StateError> {
    let state_dir = match &args.state_dir {
        Some(d) => d.clone(),
        None => state::default_state_dir()?,
    };
    let cache_dir = match &args.cache_dir {
        Some(d) => d.clone(),
        None => state::default_cache_dir()?,
    };
    Ok((state_dir, cache_dir))
}

/// Load and resolve every spec; refuse duplicates. Prints errors.
fn load_all(paths: &[PathBuf]) -> Result<Vec<Desired>, Exit> {
    let mut out: Vec<Desired> = Vec::new();
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut worst = Exit::Ok;
    for path in paths {
        match spec::load(path).and_then(spec::resolve) {
            Ok(d) => {
                let name = d.spec.name.to_string();
                if let Some(first) = names.insert(name.clone(), path.clone()) {
                    let e = SpecError::DuplicateName {
                        name,
                        first,
                        second: path.clone(),
                    };
                    exit::print_error(&e);
                    worst = worst.max(exit::of_spec(&e));
                }
                out.push(d);
            }
            Err(e) => {
                exit::print_error(&e);
                worst = worst.max(exit::of_spec(&e));
            }
        }
    }
    if worst == Exit::Ok {
        Ok(out)
    } else {
        Err(worst)
    }
}

/// Run `each` on every spec, `jobs` at a time: workers take the next spec
/// in file order until none is left or a signal arrived. With one job the
/// specs run in order on this thread. The exit code is the worst one.
fn with_specs(
    args: &Args,
    paths: &[PathBuf],
    jobs: usize,
    each: impl Fn(&Env<'_, ProcessSmolvm>, &Desired, &Out) -> Exit + Sync,
) -> Exit {
    let desired = match load_all(paths) {
        Ok(d) => d,
        Err(exit) => return exit,
    };
    let world = match World::open(args) {
        Ok(w) => w,
        Err(exit) => return exit,
    };
    let out = Out {
        mask: Mask::of(&desired),
    };
    let next = AtomicUsize::new(0);
    let worst = Mutex::new(Exit::Ok);
    let work = || {
        let env = world.env(&out);
        while world.client.interrupted().is_none() {
            let Some(d) = desired.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            let name = d.spec.name.as_str();
            world.active.enter(name);
            let exit = each(&env, d, &out);
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
    world.client.interrupted().map_or(worst, Exit::Interrupted)
}

fn apply_one(env: &Env<'_, ProcessSmolvm>, desired: &Desired, opts: Options, out: &Out) -> Exit {
    match env.apply(desired, opts) {
        Ok(Decision::Unchanged) => Exit::Ok,
        Ok(_) => {
            env.report.line(desired.spec.name.as_str(), "ready");
            Exit::Ok
        }
        Err(e) => {
            out.error(&e, e.hint(env.client.program()).as_deref());
            exit::of_apply(&e)
        }
    }
}

fn plan_one(
    env: &Env<'_, ProcessSmolvm>,
    desired: &Desired,
    allow_unenforced: bool,
    repack: bool,
    out: &Out,
) -> Exit {
    match env.plan(desired, repack) {
        Ok(plan) => {
            if let Some(w) = plan.egress.warning(&plan.name, env.client.version()) {
                eprintln!("{w}");
            }
            if plan.egress == Egress::Unenforced && !allow_unenforced {
                eprintln!(
                    "{}: `bottle apply` will refuse this unless --allow-unenforced-egress is given",
                    plan.name
                );
            }
            print!("{}", render::plan(&plan, desired));
            Exit::Ok
        }
        Err(e) => {
            out.error(&e, None);
            exit::of_apply(&e)
        }
    }
}

/// A target is a spec file (by extension or existence) or a machine name.
fn target_name(target: &str) -> Result<MachineName, Exit> {
    let path = Path::new(target);
    if target.ends_with(".toml") || path.is_file() {
        return spec::load(path).map(|s| s.name).map_err(|e| {
            exit::print_error(&e);
            exit::of_spec(&e)
        });
    }
    MachineName::parse(target).map_err(|why| {
        eprintln!("error: `{target}` is neither a spec file nor a machine name: the name {why}");
        Exit::Invalid
    })
}

fn with_target(
    args: &Args,
    target: &str,
    each: impl Fn(&Env<'_, ProcessSmolvm>, &str) -> Exit,
) -> Exit {
    let name = match target_name(target) {
        Ok(n) => n,
        Err(exit) => return exit,
    };
    let world = match World::open(args) {
        Ok(w) => w,
        Err(exit) => return exit,
    };
    let report = report::Stderr;
    let exit = each(&world.env(&report), name.as_str());
    world.client.interrupted().map_or(exit, Exit::Interrupted)
}

fn gc(args: &Args, dry_run: bool, packs: bool) -> Exit {
    let world = match World::open(args) {
        Ok(w) => w,
        Err(exit) => return exit,
    };
    let report = report::Stderr;
    let env = world.env(&report);
    let collected = match env.gc(dry_run) {
        Ok(c) => c,
        Err(e) => {
            exit::print_error(&e);
            return exit::of_apply(&e);
        }
    };
    let mut worst = Exit::Ok;
    for c in &collected {
        match c {
            Collected::WouldRemove { name, phase } => {
                println!(
                    "{name}: would remove (its last apply is {})",
                    render::phase_word(*phase)
                );
            }
            Collected::Removed { name } => println!("{name}: removed"),
            Collected::Failed(e) => {
                exit::print_error(e);
                worst = worst.max(exit::of_apply(e));
            }
        }
    }
    let pruned = match packs.then(|| env.gc_packs(dry_run)).transpose() {
        Ok(p) => p.unwrap_or_default(),
        Err(e) => {
            exit::print_error(&e);
            return exit::of_apply(&e);
        }
    };
    for p in &pruned {
        let verb = if dry_run { "would remove" } else { "removed" };
        println!("pack {}: {verb}", p.display());
    }
    if collected.is_empty() && pruned.is_empty() {
        eprintln!("nothing to collect");
    }
    world.client.interrupted().map_or(worst, Exit::Interrupted)
}

fn down_one(env: &Env<'_, ProcessSmolvm>, name: &str) -> Exit {
    match env.down(name) {
        Ok(crate::reconcile::Observed::Missing) => {
            env.report.line(name, "already gone; record removed");
            Exit::Ok
        }
        Ok(_) => {
            env.report.line(name, "removed");
            Exit::Ok
        }
        Err(e) => {
            exit::print_error(&e);
            exit::of_apply(&e)
        }
    }
}

fn status_one(env: &Env<'_, ProcessSmolvm>, name: &str, json: bool) -> Exit {
    match env.status(name) {
        Ok((record, observed)) => {
            if json {
                println!("{}", render::status_json(name, record.as_ref(), &observed));
            } else {
                println!("{}", render::status_line(name, record.as_ref(), &observed));
            }
            Exit::Ok
        }
        Err(e) => {
            exit::print_error(&e);
            exit::of_apply(&e)
        }
    }
}
