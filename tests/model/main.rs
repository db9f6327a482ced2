//! Model-based test of apply, down and the world around them.
//!
//! A reference model of {machines, bottle's records} predicts, step by step,
//! what each operation should leave; the system under test is the real
//! library (`Env::apply`/`down`) over the in-process simulator. After every
//! operation the two are compared, and these invariants are checked:
//!
//! - no VM that a failed apply created remains (unless `--keep-on-failure`
//!   or a failing teardown `delete` left it, and then its record says so);
//! - no orphaned VM process is ever left (smolvm 0.8's `delete` of a
//!   running VM), whatever failed;
//! - a successful apply leaves the VM running and matching its spec (files
//!   with their content, exec effects, env) with a complete record;
//! - re-applying a converged spec issues no mutating call;
//! - every apply's calls follow `status [pack] [stop-old] [delete-old]
//!   [create [start [probe… [cp… [exec…]]]]]` then at most `stop, delete`;
//! - bottle never calls anything on a machine it does not own.
//!
//! Operations: apply (with a set of failing smolvm steps and optionally
//! `--keep-on-failure`), a crash of bottle after k smolvm calls, down, and
//! an external stop, delete or create.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::Config;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};

use bottle::lifecycle::OnFailure;
use bottle::plan::Allow;
use bottle::reconcile::{ApplyError, Env, Options, Refuse, report::Collect};
use bottle::sim::{Engine, Home, Knobs, Reply, When};
use bottle::smolvm::{
    Call, Client, Clock, Dialect, Limits, Op as CallOp, Output, RunFailure, Smolvm, Version,
};
use bottle::spec::MachineName;
use bottle::spec::{self, Desired};
use bottle::state::{RecordPhase, Store};

const NAMES: [&str; 2] = ["a", "b"];

/// The specs: two versions of machine `a` (an image ref, an allow-list,
/// env, copies, an exec) and machine `b` (a pack file, one exec).
fn spec_texts() -> [(&'static str, &'static str); 3] {
    [
        (
            "a1.toml",
            r#"name = "a"
[image]
ref = "img:1"
[network]
allow_cidrs = ["10.0.0.0/8"]
[env]
X = "1"
[[copy]]
src = "f1"
dest = "/w/f"
[ready]
timeout = "1s"
[[exec]]
run = ["sh", "-c", "echo one > /w/done"]
"#,
        ),
        (
            "a2.toml",
            r#"name = "a"
[image]
ref = "img:2"
[env]
X = "2"
[[copy]]
src = "d"
dest = "/w"
[ready]
timeout = "1s"
[[exec]]
run = ["sh", "-c", "echo two > /w/done"]
[[exec]]
run = ["test", "-f", "/w/done"]
"#,
        ),
        (
            "b.toml",
            r#"name = "b"
[image]
pack = "build/b.smolmachine"
[ready]
timeout = "1s"
[[exec]]
run = ["sh", "-c", "mkdir -p /w && echo b > /w/done"]
"#,
        ),
    ]
}

fn spec_name(spec: usize) -> &'static str {
    if spec < 2 { "a" } else { "b" }
}

/// The simulator steps a fault can hit.
const FAULTS: [&str; 9] = [
    "status", "pack", "stop", "delete", "create", "start", "probe", "cp", "exec",
];

#[derive(Clone, Debug)]
enum Op {
    Apply {
        spec: usize,
        faults: Vec<&'static str>,
        keep: bool,
    },
    /// bottle dies when about to make its k-th smolvm call of this apply.
    Crash {
        spec: usize,
        at: usize,
    },
    Down {
        name: usize,
    },
    ExternalStop {
        name: usize,
    },
    ExternalDelete {
        name: usize,
    },
    ExternalCreate {
        name: usize,
    },
}

// ---------------------------------------------------------------- the model

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Vm {
    Created,
    Running,
    Stopped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rec {
    Creating(usize),
    Complete(usize),
    Failed(usize),
}

/// What the model predicts an operation returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Ok,
    /// A step failed (exit 1).
    Failed,
    /// Refused: unmanaged machine, or `down` of a machine bottle does not own.
    Refused,
    /// bottle crashed.
    Crashed,
}

#[derive(Clone, Debug)]
struct Model {
    version: Version,
    vms: BTreeMap<&'static str, Vm>,
    /// Machines someone other than bottle created.
    external: Vec<&'static str>,
    records: BTreeMap<&'static str, Rec>,
    last: Expect,
    /// The spec a converged machine was last applied with.
    converged: BTreeMap<&'static str, usize>,
    /// The specs whose image ref bottle's pack cache holds.
    packed: std::collections::BTreeSet<usize>,
}

/// One step of an apply as the model sees it: the simulator step it calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MStep {
    Pack,
    StopOld,
    DeleteOld,
    Create,
    Start,
    Probe,
    /// `cp` of the copy archive.
    Cp,
    /// `exec` of its unpacking.
    Unpack,
    Exec,
}

impl MStep {
    fn sim(self) -> &'static str {
        match self {
            MStep::Pack => "pack",
            MStep::StopOld => "stop",
            MStep::DeleteOld => "delete",
            MStep::Create => "create",
            MStep::Start => "start",
            MStep::Probe => "probe",
            MStep::Cp => "cp",
            MStep::Unpack => "exec",
            MStep::Exec => "exec",
        }
    }
}

fn copies(spec: usize) -> usize {
    [1, 2, 0][spec]
}

fn execs(spec: usize) -> usize {
    [1, 2, 1][spec]
}

impl Model {
    /// The steps an apply of `spec` makes after `status`, or `None` when it
    /// is refused.
    fn plan(&self, spec: usize) -> Option<Vec<MStep>> {
        let name = spec_name(spec);
        let vm = self.vms.get(name).copied();
        if self.external.contains(&name) && vm.is_some() {
            return None;
        }
        let full = |v: &mut Vec<MStep>| {
            v.extend([MStep::Create, MStep::Start, MStep::Probe]);
            if copies(spec) > 0 {
                v.extend([MStep::Cp, MStep::Unpack]);
            }
            v.extend(std::iter::repeat_n(MStep::Exec, execs(spec)));
        };
        let pack = spec < 2 && !self.packed.contains(&spec);
        let mut v = Vec::new();
        match (self.records.get(name).copied(), vm) {
            (_, None) => {
                if pack {
                    v.push(MStep::Pack);
                }
                full(&mut v);
            }
            (None, Some(_)) => return None,
            (Some(Rec::Complete(s)), Some(Vm::Running)) if s == spec => {}
            (Some(Rec::Complete(s)), Some(_)) if s == spec => {
                v.extend([MStep::Start, MStep::Probe])
            }
            (Some(_), Some(state)) => {
                if pack {
                    v.push(MStep::Pack);
                }
                if state == Vm::Running {
                    v.push(MStep::StopOld);
                }
                v.push(MStep::DeleteOld);
                full(&mut v);
            }
        }
        Some(v)
    }

    /// Carry out one step's effect on the model.
    fn effect(&mut self, name: &'static str, spec: usize, step: MStep) {
        match step {
            MStep::Pack => {
                self.packed.insert(spec);
            }
            MStep::StopOld => {
                self.vms.insert(name, Vm::Stopped);
            }
            MStep::DeleteOld => {
                self.vms.remove(name);
            }
            MStep::Create => {
                self.vms.insert(name, Vm::Created);
                self.records.insert(name, Rec::Creating(spec));
            }
            MStep::Start => {
                self.vms.insert(name, Vm::Running);
            }
            MStep::Probe | MStep::Cp | MStep::Unpack | MStep::Exec => {}
        }
    }

    fn apply(&mut self, spec: usize, faults: &[&str], keep: bool) -> Expect {
        let name = spec_name(spec);
        if faults.contains(&"status") {
            return Expect::Failed;
        }
        let Some(steps) = self.plan(spec) else {
            return Expect::Refused;
        };
        let restart = steps.first() == Some(&MStep::Start);
        let mut created = false;
        let mut started = false;
        for step in steps {
            if faults.contains(&step.sim()) {
                if step == MStep::Create {
                    // The record is written before create is issued; the
                    // failed create made no machine.
                    self.records.insert(name, Rec::Creating(spec));
                }
                created |= step == MStep::Create;
                started |= step == MStep::Start && !restart;
                self.fail(name, spec, created, started, keep, faults);
                return Expect::Failed;
            }
            self.effect(name, spec, step);
            created |= step == MStep::Create;
            started |= step == MStep::Start && !restart;
        }
        if !restart || !self.records.contains_key(name) {
            self.records.insert(name, Rec::Complete(spec));
        }
        Expect::Ok
    }

    /// The teardown after a failed step.
    fn fail(
        &mut self,
        name: &'static str,
        spec: usize,
        created: bool,
        started: bool,
        keep: bool,
        faults: &[&str],
    ) {
        if !created {
            return;
        }
        if keep {
            self.records.insert(name, Rec::Failed(spec));
            return;
        }
        if started
            && faults.contains(&"stop")
            && self.version.dialect() == Some(Dialect::Positional)
        {
            // smolvm 0.8's delete would orphan the VM: bottle leaves it.
            self.records.insert(name, Rec::Failed(spec));
            return;
        }
        if started && !faults.contains(&"stop") && self.vms.get(name) == Some(&Vm::Running) {
            self.vms.insert(name, Vm::Stopped);
        }
        if faults.contains(&"delete") {
            // The teardown's delete failed: the machine may remain, and the
            // record keeps owning it.
            self.records.insert(name, Rec::Failed(spec));
        } else {
            self.vms.remove(name);
            self.records.remove(name);
        }
    }

    fn crash(&mut self, spec: usize, at: usize) -> Expect {
        let name = spec_name(spec);
        // Call 0 is `status`; step i is call i + 1.
        if at == 0 {
            return Expect::Crashed;
        }
        let Some(steps) = self.plan(spec) else {
            return Expect::Refused;
        };
        let restart = steps.first() == Some(&MStep::Start);
        for (i, step) in steps.iter().enumerate() {
            if i + 1 == at {
                if *step == MStep::Create {
                    self.records.insert(name, Rec::Creating(spec));
                }
                return Expect::Crashed;
            }
            self.effect(name, spec, *step);
        }
        if !restart || !self.records.contains_key(name) {
            self.records.insert(name, Rec::Complete(spec));
        }
        Expect::Ok
    }

    fn down(&mut self, name: &'static str) -> Expect {
        if self.records.remove(name).is_none() {
            return Expect::Refused;
        }
        self.vms.remove(name);
        Expect::Ok
    }

    fn step(&mut self, op: &Op) {
        self.last = match op {
            Op::Apply { spec, faults, keep } => self.apply(*spec, faults, *keep),
            Op::Crash { spec, at } => self.crash(*spec, *at),
            Op::Down { name } => self.down(NAMES[*name]),
            Op::ExternalStop { name } => {
                let name = NAMES[*name];
                if self.vms.get(name) == Some(&Vm::Running) {
                    self.vms.insert(name, Vm::Stopped);
                }
                Expect::Ok
            }
            Op::ExternalDelete { name } => {
                let name = NAMES[*name];
                self.vms.remove(name);
                self.external.retain(|n| *n != name);
                Expect::Ok
            }
            Op::ExternalCreate { name } => {
                let name = NAMES[*name];
                self.vms.insert(name, Vm::Created);
                self.external.push(name);
                Expect::Ok
            }
        };
        self.update_converged(op);
    }

    fn update_converged(&mut self, op: &Op) {
        match op {
            Op::Apply { spec, .. } | Op::Crash { spec, .. } if self.last == Expect::Ok => {
                self.converged.insert(spec_name(*spec), *spec);
            }
            Op::Apply { spec, .. } | Op::Crash { spec, .. } => {
                if self.last != Expect::Refused {
                    self.converged.remove(spec_name(*spec));
                }
            }
            Op::Down { name }
            | Op::ExternalStop { name }
            | Op::ExternalDelete { name }
            | Op::ExternalCreate { name } => {
                self.converged.remove(NAMES[*name]);
            }
        }
    }
}

struct ModelMachine;

fn arb_faults() -> impl Strategy<Value = Vec<&'static str>> {
    prop_oneof![
        3 => Just(Vec::new()),
        3 => prop::sample::select(FAULTS.to_vec()).prop_map(|f| vec![f]),
        1 => prop::sample::subsequence(FAULTS.to_vec(), 2),
    ]
}

impl ReferenceStateMachine for ModelMachine {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        prop_oneof![Just(Version::new(0, 8, 0)), Just(Version::new(1, 9, 3))]
            .prop_map(|version| Model {
                version,
                vms: BTreeMap::new(),
                external: Vec::new(),
                records: BTreeMap::new(),
                last: Expect::Ok,
                converged: BTreeMap::new(),
                packed: Default::default(),
            })
            .boxed()
    }

    fn transitions(_: &Model) -> BoxedStrategy<Op> {
        prop_oneof![
            6 => (0..3usize, arb_faults(), prop::bool::weighted(0.2))
                .prop_map(|(spec, faults, keep)| Op::Apply { spec, faults, keep }),
            2 => (0..3usize, 0..10usize).prop_map(|(spec, at)| Op::Crash { spec, at }),
            1 => (0..2usize).prop_map(|name| Op::Down { name }),
            1 => (0..2usize).prop_map(|name| Op::ExternalStop { name }),
            1 => (0..2usize).prop_map(|name| Op::ExternalDelete { name }),
            1 => (0..2usize).prop_map(|name| Op::ExternalCreate { name }),
        ]
        .boxed()
    }

    fn preconditions(state: &Model, op: &Op) -> bool {
        match op {
            // Someone else creates a machine only under a free name.
            Op::ExternalCreate { name } => {
                let name = NAMES[*name];
                !state.vms.contains_key(name) && !state.records.contains_key(name)
            }
            _ => true,
        }
    }

    fn apply(mut state: Model, op: &Op) -> Model {
        state.step(op);
        state
    }
}

// ------------------------------------------------------- the system under test

/// A clock that never sleeps.
struct FakeClock {
    base: Instant,
    offset: Cell<Duration>,
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.base + self.offset.get()
    }
    fn sleep(&self, d: Duration) {
        self.offset.set(self.offset.get() + d);
    }
}

/// The release the simulator plays: the same one bottle is told about.
fn sim_version(v: &Version) -> semver::Version {
    semver::Version::parse(&v.to_string()).expect("a semver version")
}

/// The in-process simulator behind bottle's `Smolvm` trait: a hanging call
/// times out at once instead of sleeping.
fn sim_run(engine: &Engine, argv: &[String], limit: Duration) -> Result<Output, RunFailure> {
    match engine.call(argv) {
        Reply::Done(out) => Ok(Output {
            code: out.code,
            stdout: out.stdout,
            stderr: out.stderr,
        }),
        Reply::Hang => Err(RunFailure::TimedOut(limit)),
    }
}

/// The simulator, dying (panicking) when asked for call number `crash_at`,
/// and checking before each call that bottle only ever creates, stops or
/// deletes a machine whose record it holds: a `create` only after its
/// `creating` record was written, so a name bottle never created is never
/// stopped or deleted.
struct Crashing {
    sim: Engine,
    store: Store,
    calls: Cell<usize>,
    crash_at: Option<usize>,
}

/// The machine a create, stop or delete call is about.
fn target_of(call: &Call) -> Option<String> {
    let argv = &call.argv;
    let flagged = argv
        .iter()
        .position(|a| a == "--name")
        .map(|i| argv[i + 1].clone());
    match call.op {
        CallOp::Create | CallOp::Stop | CallOp::Delete => flagged.or_else(|| argv.last().cloned()),
        _ => None,
    }
}

impl Smolvm for Crashing {
    fn run(&self, call: &Call, limit: Duration) -> Result<Output, RunFailure> {
        let n = self.calls.get();
        self.calls.set(n + 1);
        if let Some(name) = target_of(call) {
            let record = self.store.load(&name).expect("readable record");
            assert!(
                record.is_some(),
                "bottle issued `{call}` for `{name}` without a record of it"
            );
            if call.op == CallOp::Create {
                assert_eq!(
                    record.map(|r| r.phase),
                    Some(RecordPhase::Creating),
                    "`{call}` before its creating record was written"
                );
            }
        }
        if self.crash_at == Some(n) {
            std::panic::panic_any(CrashMarker);
        }
        sim_run(&self.sim, &call.argv, limit)
    }
}

struct CrashMarker;

/// Keep the simulated crashes' panics out of the test output.
fn quiet_crashes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<CrashMarker>() {
                default(info);
            }
        }));
    });
}

struct Sut {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    version: Version,
    desired: Vec<Desired>,
    store: Store,
    cache: PathBuf,
}

impl Sut {
    fn new(version: Version) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        std::fs::write(root.join("f1"), "file one\n").expect("f1");
        std::fs::create_dir_all(root.join("d/sub")).expect("d");
        std::fs::write(root.join("d/x"), "x\n").expect("x");
        std::fs::write(root.join("d/sub/y"), "y\n").expect("y");
        std::fs::create_dir_all(root.join("build")).expect("build");
        let sut = Sut {
            store: Store::new(&root.join("state")),
            cache: root.join("cache"),
            desired: Vec::new(),
            version,
            root,
            _tmp: tmp,
        };
        let out = sut.root.join("build/b").to_string_lossy().into_owned();
        sut.call(&["pack", "create", "--image", "base:1", "-o", &out]);
        let desired = spec_texts()
            .iter()
            .map(|(file, text)| {
                let path = sut.root.join(file);
                std::fs::write(&path, text).expect("spec");
                spec::load(&path)
                    .and_then(spec::resolve)
                    .expect("valid spec")
            })
            .collect();
        Sut { desired, ..sut }
    }

    fn knobs(&self, faults: &[&str]) -> Knobs {
        let mut k = Knobs::new(self.root.join("sim"), sim_version(&self.version));
        k.fail = faults
            .iter()
            .map(|f| (f.to_string(), When::Always))
            .collect();
        k
    }

    fn home(&self) -> Home {
        Home::new(&self.root.join("sim"))
    }

    /// A user's own smolvm call.
    fn call(&self, args: &[&str]) -> Output {
        let argv: Vec<String> = std::iter::once("smolvm")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        sim_run(&Engine::new(self.knobs(&[])), &argv, Duration::from_secs(1)).expect("sim")
    }

    fn calls_since(&self, from: usize) -> Vec<Vec<String>> {
        self.home().calls_made().expect("calls").split_off(from)
    }

    /// Run bottle's apply or down; returns what came of it and its calls.
    fn bottle(
        &self,
        faults: &[&str],
        crash_at: Option<usize>,
        act: impl FnOnce(&Env<'_, Crashing>) -> Result<(), ApplyError>,
    ) -> (Expect, Vec<Vec<String>>) {
        let before = self.home().calls_made().expect("calls").len();
        let smolvm = Crashing {
            sim: Engine::new(self.knobs(faults)),
            store: self.store.clone(),
            calls: Cell::new(0),
            crash_at,
        };
        let client =
            Client::with_version(smolvm, "smolvm", self.version.clone(), Limits::default());
        let clock = FakeClock {
            base: Instant::now(),
            offset: Cell::new(Duration::ZERO),
        };
        let report = Collect::default();
        let env = Env {
            client: &client,
            store: &self.store,
            cache_dir: &self.cache,
            clock: &clock,
            report: &report,
            confirm: &Refuse,
            lock_wait: None,
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| act(&env)));
        let expect = match result {
            Ok(Ok(())) => Expect::Ok,
            Ok(Err(ApplyError::Step { .. } | ApplyError::Observe { .. })) => Expect::Failed,
            Ok(Err(ApplyError::Unmanaged { .. } | ApplyError::NotOwned { .. })) => Expect::Refused,
            Ok(Err(e)) => panic!("unexpected error: {e}"),
            Err(p) if p.is::<CrashMarker>() => Expect::Crashed,
            Err(p) => std::panic::resume_unwind(p),
        };
        (expect, self.calls_since(before))
    }
}

fn opts(keep: bool) -> Options {
    let on_failure = if keep {
        OnFailure::Keep
    } else {
        OnFailure::TearDown
    };
    Options {
        on_failure,
        allow_unenforced_egress: true,
        repack: false,
        allow: Allow::default(),
    }
}

/// The kind of each call, for the grammar check.
fn kind(argv: &[String]) -> &'static str {
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    match words.as_slice() {
        [_, "pack", ..] => "pack",
        [_, "machine", "exec", .., "--", "true"] => "probe",
        [_, "machine", sub, ..] => match *sub {
            "create" => "create",
            "start" => "start",
            "stop" => "stop",
            "delete" => "delete",
            "exec" => "exec",
            "cp" => "cp",
            "status" => "status",
            _ => "other",
        },
        _ => "other",
    }
}

/// `status [pack] [stop] [delete] [create [start [probe+ [cp* [exec*]]]]] [stop] [delete]`
/// (or, for a restart, `status start probe+`), each part possibly cut short.
fn follows_grammar(kinds: &[&str]) -> bool {
    let order = [
        "status", "pack", "stop", "delete", "create", "start", "probe", "cp", "exec",
    ];
    let repeatable = ["probe", "cp", "exec"];
    let rank = |k: &str| order.iter().position(|o| *o == k);
    let mut last: Option<usize> = None;
    let mut i = 0;
    while i < kinds.len() {
        // Readiness also asks `status` now and then, among its probes.
        let probing = last == rank("probe") && kinds[i] == "status";
        let Some(r) = (if probing { last } else { rank(kinds[i]) }) else {
            return false;
        };
        let ok = match last {
            None => r == 0,
            Some(l) => r > l || (r == l && (probing || repeatable.contains(&kinds[i]))),
        };
        if !ok {
            break;
        }
        last = Some(r);
        i += 1;
    }
    // What is left must be the teardown: [stop] [delete].
    matches!(&kinds[i..], [] | ["stop"] | ["delete"] | ["stop", "delete"])
}

fn names_in(argv: &[String], name: &str) -> bool {
    argv.iter()
        .any(|a| a == name || a.starts_with(&format!("{name}:")))
}

fn mutating(argv: &[String]) -> bool {
    !matches!(kind(argv), "status")
}

struct Harness;

impl StateMachineTest for Harness {
    type SystemUnderTest = (Sut, Vec<Vec<String>>);
    type Reference = ModelMachine;

    fn init_test(model: &Model) -> Self::SystemUnderTest {
        quiet_crashes();
        (Sut::new(model.version.clone()), Vec::new())
    }

    fn apply((sut, _): Self::SystemUnderTest, model: &Model, op: Op) -> Self::SystemUnderTest {
        let (got, calls) = match &op {
            Op::Apply { spec, faults, keep } => {
                let d = &sut.desired[*spec];
                sut.bottle(faults, None, |env| env.apply(d, opts(*keep)).map(drop))
            }
            Op::Crash { spec, at } => {
                let d = &sut.desired[*spec];
                sut.bottle(&[], Some(*at), |env| env.apply(d, opts(false)).map(drop))
            }
            Op::Down { name } => sut.bottle(&[], None, |env| {
                let name = MachineName::parse(NAMES[*name]).expect("name");
                env.down(&name).map(drop)
            }),
            Op::ExternalStop { name } => {
                sut.call(&["machine", "stop", "--name", NAMES[*name]]);
                (Expect::Ok, Vec::new())
            }
            Op::ExternalDelete { name } => {
                let name = NAMES[*name];
                sut.call(&["machine", "stop", "--name", name]);
                match model.version.dialect() {
                    Some(Dialect::Positional) => sut.call(&["machine", "delete", "-f", name]),
                    _ => sut.call(&["machine", "delete", "-f", "--name", name]),
                };
                (Expect::Ok, Vec::new())
            }
            Op::ExternalCreate { name } => {
                let name = NAMES[*name];
                match model.version.dialect() {
                    Some(Dialect::Positional) => sut.call(&["machine", "create", name]),
                    _ => sut.call(&["machine", "create", "--name", name]),
                };
                (Expect::Ok, Vec::new())
            }
        };
        assert_eq!(got, model.last, "{op:?}: outcome; calls {calls:#?}");
        check_calls(&op, model, &calls);
        (sut, calls)
    }

    fn check_invariants((sut, _): &Self::SystemUnderTest, model: &Model) {
        let world = sut.home().read().expect("world");
        assert!(
            world.orphans.is_empty(),
            "orphaned VM processes: {:?}",
            world.orphans
        );
        for name in NAMES {
            let vm = world.machines.get(name).map(|m| match m.state.as_str() {
                "created" => Vm::Created,
                "running" => Vm::Running,
                "stopped" => Vm::Stopped,
                other => panic!("state {other}"),
            });
            assert_eq!(vm, model.vms.get(name).copied(), "machine {name}");
            let record = sut.store.load(name).expect("record");
            let rec = record.as_ref().map(|r| {
                let spec = sut
                    .desired
                    .iter()
                    .position(|d| d.fingerprint == r.fingerprint)
                    .expect("a known spec");
                match r.phase {
                    RecordPhase::Creating => Rec::Creating(spec),
                    RecordPhase::Complete => Rec::Complete(spec),
                    RecordPhase::Failed => Rec::Failed(spec),
                }
            });
            assert_eq!(rec, model.records.get(name).copied(), "record of {name}");
            if let (Some(Rec::Complete(s)), Some(Vm::Running)) = (rec, vm)
                && model.converged.get(name) == Some(&s)
            {
                check_matches_spec(sut, s);
            }
        }
    }
}

/// The calls of one operation: grammar, ownership, and no-op re-applies.
fn check_calls(op: &Op, model: &Model, calls: &[Vec<String>]) {
    let (Op::Apply { spec, .. } | Op::Crash { spec, .. }) = op else {
        return;
    };
    let kinds: Vec<&str> = calls.iter().map(|c| kind(c)).collect();
    assert!(
        follows_grammar(&kinds),
        "{op:?}: calls out of order: {kinds:?}"
    );
    let name = spec_name(*spec);
    if model.last == Expect::Refused {
        assert!(
            calls.iter().all(|c| !mutating(c)),
            "{op:?}: touched a machine it does not own: {calls:#?}"
        );
    }
    assert!(
        calls
            .iter()
            .all(|c| !mutating(c) || names_in(c, name) || kind(c) == "pack"),
        "{op:?}: {calls:#?}"
    );
}

/// A converged machine is running with its spec's env, files and exec effects.
fn check_matches_spec(sut: &Sut, spec: usize) {
    let d = &sut.desired[spec];
    let name = d.spec.name.as_str();
    let world = sut.home().read().expect("world");
    let m = &world.machines[name];
    let env: Vec<String> = d.spec.env.iter().map(ToString::to_string).collect();
    assert_eq!(m.env, env, "env of {name}");
    let guest = sut.home().guest(name);
    for f in &d.files {
        let got =
            std::fs::read_to_string(guest.join(f.guest.as_str().trim_start_matches('/'))).ok();
        let want = std::fs::read_to_string(f.host.as_path()).ok();
        assert_eq!(got, want, "{name}: {}", f.guest);
    }
    let done = std::fs::read_to_string(guest.join("w/done")).ok();
    assert_eq!(
        done.as_deref(),
        Some(["one\n", "two\n", "b\n"][spec]),
        "{name}: exec effect"
    );
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(96)
}

prop_state_machine! {
    #![proptest_config(Config { cases: cases(), max_shrink_iters: 4096, failure_persistence: None, .. Config::default() })]

    #[test]
    fn apply_down_and_interference_match_the_model(sequential 1..24 => Harness);
}

#[test]
fn an_unchanged_reapply_makes_no_mutating_call() {
    for version in [Version::new(0, 8, 0), Version::new(1, 9, 3)] {
        let sut = Sut::new(version);
        for d in &sut.desired {
            let (first, _) = sut.bottle(&[], None, |env| env.apply(d, opts(false)).map(drop));
            assert_eq!(first, Expect::Ok);
            let (again, calls) = sut.bottle(&[], None, |env| env.apply(d, opts(false)).map(drop));
            assert_eq!(again, Expect::Ok);
            let kinds: Vec<&str> = calls.iter().map(|c| kind(c)).collect();
            assert_eq!(kinds, ["status"], "{}", d.spec.name);
        }
    }
}

#[test]
fn the_grammar_check_bites() {
    assert!(follows_grammar(&[
        "status", "pack", "create", "start", "probe", "probe", "cp", "exec", "stop", "delete"
    ]));
    assert!(follows_grammar(&["status", "start", "probe"]));
    assert!(follows_grammar(&[
        "status", "start", "probe", "probe", "status", "probe"
    ]));
    assert!(!follows_grammar(&["status", "create", "status"]));
    assert!(follows_grammar(&["status", "create", "delete"]));
    assert!(!follows_grammar(&[
        "status", "create", "start", "cp", "exec", "delete", "stop"
    ]));
    assert!(!follows_grammar(&["create"]));
    assert!(!follows_grammar(&["status", "start", "create"]));
}
