//! Model-based test of apply, in-place updates, stop/start, down and the
//! world around them.
//!
//! A reference model of {machines and their guests, bottle's records, the
//! spec on disk} predicts, step by step, what each operation should leave
//! and which smolvm calls it makes; the system under test is the real
//! library (`Env::apply`/`down`/`stop`/`start`) over the in-process
//! simulator. The model decides on its own (it never asks bottle's plan):
//! it works out the guest view of the spec's copies and of the record's
//! (every guest path the copies make, with its content) from its own sets
//! of files and versions, and from them what an update sends (the paths
//! whose content differs), removes (the paths no copy makes any more, and
//! with `--no-prune` only those in the way of a sent path) and clears
//! where empty (each directory that held a removed path, strictly below
//! the destination of the copy that had sent it, that the spec's copies no
//! longer need: not a destination or what holds one, not what holds a
//! path they make); its guest is a set of files and directories on which
//! `rm -f`, `rmdir` (each directory that is empty goes, and the rest is
//! no failure), `tar -x` and `cp` succeed or fail as the simulator's do.
//! Its record marks `removing` the paths a prune removes just before the
//! prune runs, as bottle's does (so a path a failed transfer pruned is
//! sent again when it comes back, and removed again if it does not). After every operation the two are
//! compared, and these invariants are checked:
//!
//! - a machine whose last apply completed is deleted (or recreated) only by
//!   `down`, an apply with `--replace`, or someone else's delete: an agent's
//!   marker file in the guest, written after each create, survives every
//!   other operation;
//! - files the agent wrote in the guest survive every operation that
//!   keeps the machine: the marker, outside the copy destinations, and a
//!   note inside one (`/w`), which bottle never sent and so never prunes;
//! - after every successful apply, the files under the copy destinations
//!   are exactly the copy sources' files, with their content and mode now
//!   (a file deleted from the source is gone from the guest), except the
//!   paths an apply with `--no-prune` left: those stay with the content
//!   they had, and bottle forgets them (no later apply removes them);
//! - the directories under the copy destinations are the model's: those
//!   the files bottle placed made, less those a prune found empty and
//!   removed;
//! - bottle sends only what changed: the files written anew in the guest
//!   by each operation (told by their inodes, each held by a hard link
//!   meanwhile) are the paths the model says it sends, and each prune
//!   call's command (`rm -f -- PATH…`, then `sh -c 'rmdir -- "$@" ||
//!   true' bottle-prune DIR…`, word for word) and single-file `cp`'s path
//!   are the model's;
//! - each exec step runs at most once per machine (for each content) unless
//!   `--rerun-exec`: every step appends its id to `/ran` in the guest, and
//!   the model counts the runs;
//! - a converged machine has its spec's env;
//! - no VM that a failed new machine's apply created remains (unless
//!   `--keep-on-failure` or a failing teardown `delete` left it, and then
//!   its record says so); a failed update keeps the machine;
//! - no orphaned VM process is ever left (smolvm 0.8's `delete` of a
//!   running VM), whatever failed;
//! - every apply's calls follow `look [pack] [stop-old] [delete-old]
//!   create [start [probe… [upload unpack | copy] [exec…]]]` then at most
//!   `stop, delete`, or, for an update, `look [start probe…] [prune…]
//!   [upload unpack | copy] [exec…]` with no teardown, where `look` is
//!   `ls` (and `status` when `ls` fails), `prune` an `exec` of the `rm -f`
//!   or of the `rmdir`, `upload unpack` the `cp` of the copy archive and
//!   the `exec` of its `tar -x`, and `copy` the one `cp --mode` of the only
//!   file sent (smolvm 1.9 on; 0.8 sends it by archive);
//! - bottle never calls anything on a machine it does not own, and a
//!   refused apply makes no mutating call;
//! - the calls of every bottle operation are the ones the model predicts
//!   (readiness counted as one probe; an `exec` fault fails the first
//!   prune, unpack or step `exec`), and so are its outcome, the machines'
//!   states, the records (phase, owner, image, schema 3, the copies the
//!   guest holds: the spec's once the last transfer step succeeded, the
//!   old ones if one failed, less the paths of its prune once the prune
//!   began; the exec steps they say ran did run) and the guests' files and
//!   directories.
//!
//! Before a prune's `rm`, the record marks each path it removes
//! `removing` (no file matches it): whatever becomes of the prune (an
//! `exec` fault, a crash before, between or after its calls), the next
//! apply sends such a path again if the spec makes it, and removes it and
//! clears its directories again if not. Three regression tests pin this.
//!
//! Operations: apply (with a set of failing smolvm steps, `--keep-on-failure`,
//! `--replace`, `--adopt`, `--rerun-exec` and `--no-prune`, from `a`'s spec
//! file or from another file with the same text, which the machine belongs
//! to only once adopted), a crash of bottle after k smolvm calls, down,
//! stop and start (bottle's, with faults too), an external stop, delete or
//! create, and edits of machine `a`'s spec, rewritten in place: its copied
//! files (changed, added, deleted, and the directory `d/sub` turned into a
//! file and back), its exec steps (added, changed, removed) and its image.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::Union;
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
use bottle::spec::{self, CopyPrint, Desired};
use bottle::state::{Record, RecordPhase, Store};

const NAMES: [&str; 2] = ["a", "b"];

/// The host files machine `a`'s copies may hold: `d/…` is copied to `/w`,
/// `f1` to `/etc/f1`. The first three are there at the start; the others
/// are what `EditCopy` may add (`d/sub/t/z` two directories down, which a
/// prune of it alone, or of everything under `d/sub`, leaves no copy
/// needs).
const FILES: [&str; 6] = ["d/x", "d/sub/y", "f1", "d/n0", "d/sub/n1", "d/sub/t/z"];
const INITIAL_FILES: usize = 3;

/// What `Retype` turns the directory `d/sub` into (and back): a file.
const SUB_FILE: &str = "d/sub";

/// Whether `file` can be added to `src`: the host cannot hold it beside a
/// file above it or below it (`d/sub` and `d/sub/y`).
fn fits(src: &BTreeMap<&'static str, u8>, file: &str) -> bool {
    let below = |a: &str, b: &str| a.starts_with(&format!("{b}/"));
    !src.contains_key(file) && !src.keys().any(|f| below(f, file) || below(file, f))
}

/// Exec steps of `a` are `echo s<id> >> /ran` with ids from this pool; `b`'s
/// one step has id [`B_STEP`].
const STEP_POOL: u8 = 5;
const B_STEP: u8 = 9;
/// At most this many exec steps in `a`'s spec.
const MAX_STEPS: usize = 3;

/// The copy destinations of `a`.
const DESTS: [&str; 2] = ["/w", "/etc/f1"];

/// A file the agent writes inside a copy destination, beside the copied
/// files (bottle never sends it, so it must never remove it).
const AGENT_NOTE: &str = "/w/agent-note";

/// The copy destination of a host file.
fn dest_of(file: &str) -> &'static str {
    match file.starts_with("d/") {
        true => DESTS[0],
        false => DESTS[1],
    }
}

/// Where a host file lands in the guest.
fn guest_of(file: &str) -> String {
    match file.strip_prefix("d/") {
        Some(rest) => format!("/w/{rest}"),
        None => "/etc/f1".into(),
    }
}

/// The content of a host file at version `v`.
fn content(file: &str, v: u8) -> String {
    format!("{file} v{v}\n")
}

/// Machine `a`'s spec as the model holds it, edited.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SpecA {
    /// `img:1` or `img:2`.
    image: u8,
    /// Host file → content version.
    src: BTreeMap<&'static str, u8>,
    /// Exec step ids, in spec order.
    execs: Vec<u8>,
}

impl SpecA {
    fn initial() -> Self {
        SpecA {
            image: 1,
            src: FILES[..INITIAL_FILES].iter().map(|f| (*f, 0)).collect(),
            execs: vec![0],
        }
    }

    fn text(&self) -> String {
        let mut t = format!(
            r#"name = "a"
[image]
ref = "img:{}"
[network]
allow_cidrs = ["10.0.0.0/8"]
[env]
X = "1"
[[copy]]
src = "d"
dest = "/w"
[[copy]]
src = "f1"
dest = "/etc/f1"
[ready]
timeout = "1s"
"#,
            self.image
        );
        for id in &self.execs {
            t.push_str(&format!(
                "[[exec]]\nrun = [\"sh\", \"-c\", \"echo s{id} >> /ran\"]\n"
            ));
        }
        t
    }

    /// The files of each copy destination (`d` may be empty).
    fn copies(&self) -> Copies {
        let mut out: Copies = DESTS.iter().map(|d| (*d, BTreeMap::new())).collect();
        for (file, v) in &self.src {
            out.entry(dest_of(file)).or_default().insert(file, *v);
        }
        out
    }
}

/// Machine `b`'s spec: a pack file and one exec step; never edited.
const SPEC_B: &str = r#"name = "b"
[image]
pack = "build/b.smolmachine"
[ready]
timeout = "1s"
[[exec]]
run = ["sh", "-c", "echo s9 >> /ran"]
"#;

/// The version a record gives a path it is removing (bottle writes the
/// entry `removing`): no file ever has it.
const REMOVING: u8 = u8::MAX;

/// Copy destination → (host file → content version).
type Copies = BTreeMap<&'static str, BTreeMap<&'static str, u8>>;

/// The simulator steps a fault can hit.
const FAULTS: [&str; 10] = [
    "ls", "status", "pack", "stop", "delete", "create", "start", "probe", "cp", "exec",
];

/// An edit of `a`'s copied files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Edit {
    /// A new version of the file's content.
    Change(&'static str),
    Add(&'static str),
    Delete(&'static str),
    /// The directory `d/sub` becomes the file `d/sub`, or the file the
    /// directory (with `d/sub/y`): in the guest, a path in the way of
    /// another.
    Retype,
}

#[derive(Clone, Debug)]
enum Op {
    Apply {
        name: usize,
        /// `a`'s spec file: `a.toml` (0) or `a2.toml` (1), the same text.
        file: usize,
        adopt: bool,
        faults: Vec<&'static str>,
        keep: bool,
        replace: bool,
        rerun: bool,
        /// `--no-prune`: leave (and forget) the copied paths no copy
        /// makes any more.
        no_prune: bool,
    },
    /// bottle dies when about to make its k-th smolvm call of this apply.
    Crash {
        name: usize,
        at: usize,
        replace: bool,
    },
    Down {
        name: usize,
        faults: Vec<&'static str>,
    },
    /// bottle's `stop`.
    Stop {
        name: usize,
        faults: Vec<&'static str>,
    },
    /// bottle's `start`.
    Start {
        name: usize,
        faults: Vec<&'static str>,
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
    EditCopy(Edit),
    AddExec {
        id: u8,
    },
    ChangeExec {
        at: usize,
        id: u8,
    },
    RemoveExec {
        at: usize,
    },
    /// `img:1` ↔ `img:2`.
    ChangeImage,
}

impl Op {
    /// The machine a bottle or external operation is about.
    fn machine(&self) -> Option<&'static str> {
        match self {
            Op::Apply { name, .. }
            | Op::Crash { name, .. }
            | Op::Down { name, .. }
            | Op::Stop { name, .. }
            | Op::Start { name, .. }
            | Op::ExternalStop { name }
            | Op::ExternalDelete { name }
            | Op::ExternalCreate { name } => Some(NAMES[*name]),
            Op::EditCopy(_)
            | Op::AddExec { .. }
            | Op::ChangeExec { .. }
            | Op::RemoveExec { .. }
            | Op::ChangeImage => None,
        }
    }

    /// Whether this operation may delete machine `name` even when its last
    /// apply completed: `down`, an apply with `--replace`, or someone
    /// else's delete.
    fn may_delete(&self, name: &str) -> bool {
        let replace = match self {
            Op::Apply { replace, .. } | Op::Crash { replace, .. } => *replace,
            _ => false,
        };
        let deletes = matches!(self, Op::Down { .. } | Op::ExternalDelete { .. }) || replace;
        deletes && self.machine() == Some(name)
    }

    /// Whether bottle carries it out (its calls are the model's to predict).
    fn by_bottle(&self) -> bool {
        matches!(
            self,
            Op::Apply { .. }
                | Op::Crash { .. }
                | Op::Down { .. }
                | Op::Stop { .. }
                | Op::Start { .. }
        )
    }

    fn rerun(&self) -> bool {
        matches!(self, Op::Apply { rerun: true, .. })
    }
}

// ---------------------------------------------------------------- the model

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Vm {
    Created,
    Running,
    Stopped,
}

/// A machine as the model sees it, with what its guest holds.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Machine {
    state: Vm,
    /// Which create made it: the agent's marker in the guest names it.
    generation: u32,
    /// The lines of the guest's `/ran`: the exec steps run, in order.
    ran: Vec<u8>,
    /// The files under the copy destinations in the guest (the agent's
    /// note aside): guest path → content. Bottle's, and those it left with
    /// `--no-prune` and forgot.
    files: BTreeMap<String, String>,
    /// The directories under the copy destinations (and the destinations
    /// themselves), as the files bottle placed made them.
    dirs: BTreeSet<String>,
    /// The paths of `files` bottle no longer knows of: the guest's own
    /// files now, whatever the spec says: those it left with `--no-prune`.
    forgotten: BTreeSet<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Creating,
    Complete,
    Failed,
}

/// bottle's record of a machine, as the model predicts it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rec {
    phase: Phase,
    /// The spec file that owns the machine: `a.toml` (0) or `a2.toml` (1).
    owner: usize,
    /// The image the machine was created from (0: `b`'s pack).
    image: u8,
    /// What the guest holds from bottle, per copy destination: the copies
    /// of the last apply whose transfer completed.
    copies: Copies,
    /// The exec steps that ran successfully on the machine (each content
    /// runs once per machine: a removed step stays run).
    execs: BTreeSet<u8>,
}

/// What the model predicts an operation returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Ok,
    /// A step of an apply failed (exit 1); `in_place` when it was an
    /// update of a machine it keeps.
    StepFailed {
        in_place: bool,
    },
    /// Something else failed: observing the machine (`status`), a stop or
    /// start, down's teardown.
    Failed,
    /// Refused: unmanaged machine, or a machine bottle does not own.
    Refused,
    /// A replacement that needs consent, refused (`Refuse` never agrees).
    RefusedReplace,
    /// Another spec file owns the machine.
    OwnedElsewhere,
    /// `stop`/`start` of a machine bottle owns that is gone.
    Gone,
    /// bottle crashed.
    Crashed,
}

#[derive(Clone, Debug)]
struct Model {
    version: Version,
    vms: BTreeMap<&'static str, Machine>,
    records: BTreeMap<&'static str, Rec>,
    /// `a`'s spec file as it is on disk now.
    spec: SpecA,
    last: Expect,
    /// The kinds of smolvm call the last operation made (readiness as one
    /// `probe`).
    calls: Vec<&'static str>,
    /// Machines whose last operation was a successful apply of the spec
    /// as it still is.
    converged: BTreeSet<&'static str>,
    /// The images bottle's pack cache holds.
    packed: BTreeSet<u8>,
    next_generation: u32,
    /// The last operation was an apply that updated its machine in place.
    in_place: bool,
    /// The guest paths the last operation sent (written anew in the
    /// guest).
    sent: BTreeSet<String>,
    /// The command of each prune call (`rm -f -- PATHS…`, `sh -c 'rmdir
    /// -- "$@" || true' bottle-prune DIRS…`), word by word, and the guest
    /// path of each single-file `cp` (its one word), in call order.
    details: Vec<Vec<String>>,
}

/// One step of an apply as the model sees it: the simulator call it makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MStep {
    Pack,
    StopOld,
    DeleteOld,
    Create,
    Start,
    Probe,
    /// The prune's `exec` of `rm -f --` of the copied paths no copy makes
    /// any more (and those in the way of a sent one). Just before it,
    /// bottle writes the record without them.
    Rm,
    /// The prune's `exec` of `sh -c 'rmdir -- "$@" || true'` of the
    /// directories no copy needs any more: those that are empty go.
    Rmdir,
    /// `cp` of the copy archive.
    Upload,
    /// `exec` of its unpacking.
    Unpack,
    /// `cp --mode` of the one file sent (smolvm 1.9 on).
    Copy,
    Exec(u8),
}

impl MStep {
    /// The simulator step it calls (the name its faults go by).
    fn sim(self) -> &'static str {
        match self {
            MStep::Pack => "pack",
            MStep::StopOld => "stop",
            MStep::DeleteOld => "delete",
            MStep::Create => "create",
            MStep::Start => "start",
            MStep::Probe => "probe",
            MStep::Upload | MStep::Copy => "cp",
            MStep::Rm | MStep::Rmdir | MStep::Unpack | MStep::Exec(_) => "exec",
        }
    }

    /// The kind of its call, as [`kind`] tells calls apart.
    fn call(self) -> &'static str {
        match self {
            MStep::Rm | MStep::Rmdir => "prune",
            MStep::Upload => "upload",
            MStep::Unpack => "unpack",
            MStep::Copy => "copy",
            other => other.sim(),
        }
    }

    /// Whether it sends or removes copied paths.
    fn moves_copies(self) -> bool {
        matches!(
            self,
            MStep::Rm | MStep::Rmdir | MStep::Upload | MStep::Unpack | MStep::Copy
        )
    }
}

/// Every path the copies make in the guest, with its content.
fn guest_view(copies: &Copies) -> BTreeMap<String, String> {
    let files = copies.values().flatten();
    files.map(|(f, v)| (guest_of(f), content(f, *v))).collect()
}

/// The proper ancestors of a guest path, nearest first, `/` excluded.
fn ancestors(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut at = path;
    while let Some((parent, _)) = at.rsplit_once('/') {
        if parent.is_empty() {
            break;
        }
        out.push(parent);
        at = parent;
    }
    out
}

/// What an apply sends into the guest and removes from it, as the model
/// works it out from the guest views of the spec and of the record.
#[derive(Debug, Default)]
struct Moves {
    /// (Guest path, content) of each path whose content differs from what
    /// the record says the guest holds (every path, for a new machine),
    /// in spec order (`/w`, then `/etc/f1`), then path order.
    send: Vec<(String, String)>,
    /// The paths the record has that no copy makes any more, removed;
    /// with `--no-prune`, only those in the way of a sent path (a file
    /// where it needs a directory, or a path under it).
    remove: Vec<String>,
    /// The directories that held a removed path, strictly below the
    /// destination of the copy that had sent it, that the spec's copies no
    /// longer need (neither a destination or what holds one, nor what
    /// holds a path they make): removed after `remove` where empty, each
    /// before the one holding it.
    clear: Vec<String>,
    /// The paths no copy makes any more left in the guest (`--no-prune`),
    /// forgotten.
    kept: Vec<String>,
}

impl Moves {
    fn between(want_copies: &Copies, had_copies: &Copies, prune: bool) -> Self {
        let (want, had) = (guest_view(want_copies), guest_view(had_copies));
        let mut send: Vec<(String, String)> = want
            .iter()
            .filter(|(p, c)| had.get(*p) != Some(*c))
            .map(|(p, c)| (p.clone(), c.clone()))
            .collect();
        send.sort_by_key(|(p, _)| (!p.starts_with("/w/"), p.clone()));
        let sent: BTreeSet<&str> = send.iter().map(|(p, _)| p.as_str()).collect();
        let in_the_way = |g: &String| {
            ancestors(g).iter().any(|a| sent.contains(a))
                || sent.iter().any(|s| ancestors(s).contains(&g.as_str()))
        };
        let gone = had.keys().filter(|p| !want.contains_key(*p)).cloned();
        let (remove, kept): (Vec<String>, Vec<String>) = gone.partition(|g| prune || in_the_way(g));
        let dests = want_copies
            .keys()
            .flat_map(|d| std::iter::once(*d).chain(ancestors(d)));
        let held = want.keys().flat_map(|p| ancestors(p));
        let needed: BTreeSet<&str> = dests.chain(held).collect();
        let mut clear = BTreeSet::new();
        for (dest, files) in had_copies {
            let below = format!("{dest}/");
            for g in files.keys().map(|f| guest_of(f)) {
                if !remove.contains(&g) {
                    continue;
                }
                let dirs = ancestors(&g).into_iter().filter(|a| a.starts_with(&below));
                let unneeded = dirs.filter(|a| !needed.contains(a));
                clear.extend(unneeded.map(str::to_string));
            }
        }
        Moves {
            send,
            remove,
            clear: clear.into_iter().rev().collect(),
            kept,
        }
    }
}

/// What the simulated smolvm's `cp` leaves beside its target when it
/// cannot rename its staged upload into place.
fn staged(path: &str) -> String {
    format!("{path}.smolvm-cp-tmp")
}

/// A guest command or upload that failed on what the guest holds.
#[derive(Default)]
struct GuestError {
    /// The staged copy a `cp` wrote beside its target before it failed.
    staged: Option<String>,
}

impl Machine {
    fn has_under(&self, dir: &str) -> bool {
        let under = format!("{dir}/");
        self.files
            .keys()
            .chain(&self.dirs)
            .any(|p| p.starts_with(&under))
    }

    /// Make the directories above `path`, as `mkdir -p` would: refused
    /// where a file stands.
    fn make_parents(&mut self, path: &str) -> Result<(), GuestError> {
        let mut above = ancestors(path);
        above.reverse();
        for dir in above {
            if self.files.contains_key(dir) {
                return Err(GuestError::default());
            }
            self.dirs.insert(dir.to_string());
        }
        Ok(())
    }

    /// `tar -x` of a file: whatever is at its path removed (an empty
    /// directory included), then the file written.
    fn unpack(&mut self, path: &str, text: &str) -> Result<(), GuestError> {
        self.make_parents(path)?;
        if self.dirs.contains(path) {
            if self.has_under(path) {
                return Err(GuestError::default());
            }
            self.dirs.remove(path);
        }
        self.files.insert(path.to_string(), text.to_string());
        Ok(())
    }

    /// `cp` of a file: staged beside its path (written anew), then renamed
    /// over it (which no directory, even an empty one, lets it do).
    fn cp(&mut self, path: &str, text: &str) -> Result<(), GuestError> {
        self.make_parents(path)?;
        let staged = staged(path);
        if self.dirs.contains(path) {
            self.files.insert(staged.clone(), text.to_string());
            return Err(GuestError {
                staged: Some(staged),
            });
        }
        self.files.remove(&staged);
        self.files.insert(path.to_string(), text.to_string());
        Ok(())
    }

    /// `rm -f -- PATHS`: a missing path is fine, a directory is not; the
    /// first failure ends it.
    fn rm(&mut self, paths: &[String]) -> Result<(), GuestError> {
        for p in paths {
            let under_file = ancestors(p).iter().any(|a| self.files.contains_key(*a));
            if self.dirs.contains(p) || under_file {
                return Err(GuestError::default());
            }
            self.files.remove(p);
            self.forgotten.remove(p);
        }
        Ok(())
    }

    /// `sh -c 'rmdir -- "$@" || true' bottle-prune DIRS`: each that is
    /// an empty directory is removed, in order; one that is gone, not a
    /// directory or not empty stays, and that is no failure.
    fn rmdir(&mut self, dirs: &[String]) {
        for d in dirs {
            if self.dirs.contains(d) && !self.has_under(d) {
                self.dirs.remove(d);
            }
        }
    }
}

/// What an apply will do, as the model works it out.
struct MPlan {
    steps: Vec<MStep>,
    /// An in-place update: no create, no teardown.
    update: bool,
    moves: Moves,
}

impl Model {
    fn image(&self, name: &str) -> u8 {
        match name {
            "a" => self.spec.image,
            _ => 0,
        }
    }

    fn copies(&self, name: &str) -> Copies {
        match name {
            "a" => self.spec.copies(),
            _ => Copies::new(),
        }
    }

    fn execs(&self, name: &str) -> Vec<u8> {
        match name {
            "a" => self.spec.execs.clone(),
            _ => vec![B_STEP],
        }
    }

    /// The steps of a new machine after those that remove the old one.
    fn full(&self, name: &str, v: &mut Vec<MStep>) {
        v.extend([MStep::Create, MStep::Start, MStep::Probe]);
        let moves = Moves::between(&self.copies(name), &Copies::new(), true);
        self.transfer(&moves, v);
        v.extend(self.execs(name).into_iter().map(MStep::Exec));
    }

    /// The steps of a transfer: the prune, then one `cp --mode` of a
    /// single file (smolvm 1.9 on), or the archive's upload and unpack.
    fn transfer(&self, moves: &Moves, v: &mut Vec<MStep>) {
        v.extend((!moves.remove.is_empty()).then_some(MStep::Rm));
        v.extend((!moves.clear.is_empty()).then_some(MStep::Rmdir));
        match moves.send.len() {
            0 => {}
            1 if self.version >= Version::new(1, 9, 0) => v.push(MStep::Copy),
            _ => v.extend([MStep::Upload, MStep::Unpack]),
        }
    }

    /// What an apply of `name` from spec file `file` does after `status`,
    /// or how it is refused.
    fn plan(&self, name: &'static str, file: usize, allow: Allow) -> Result<MPlan, Expect> {
        let image = self.image(name);
        let pack = image != 0 && !self.packed.contains(&image);
        let mut v = Vec::new();
        let vm = self.vms.get(name);
        let rec = self.records.get(name);
        let replacing = |v: &mut Vec<MStep>, vm: &Machine| {
            v.extend(pack.then_some(MStep::Pack));
            v.extend((vm.state == Vm::Running).then_some(MStep::StopOld));
            v.push(MStep::DeleteOld);
            self.full(name, v);
        };
        match (rec, vm) {
            (_, None) => {
                v.extend(pack.then_some(MStep::Pack));
                self.full(name, &mut v);
            }
            (None, Some(_)) => return Err(Expect::Refused),
            (Some(r), Some(vm)) if r.owner != file && !allow.adopt => match allow.replace {
                true => replacing(&mut v, vm),
                false => return Err(Expect::OwnedElsewhere),
            },
            (Some(r), Some(vm)) if r.phase != Phase::Complete => replacing(&mut v, vm),
            (Some(r), Some(vm)) if r.image != image => match allow.replace {
                true => replacing(&mut v, vm),
                false => return Err(Expect::RefusedReplace),
            },
            (Some(r), Some(vm)) => {
                if vm.state != Vm::Running {
                    v.extend([MStep::Start, MStep::Probe]);
                }
                let moves = Moves::between(&self.copies(name), &r.copies, !allow.keep_removed);
                self.transfer(&moves, &mut v);
                let execs = self.execs(name).into_iter();
                v.extend(
                    execs
                        .filter(|id| allow.rerun_exec || !r.execs.contains(id))
                        .map(MStep::Exec),
                );
                return Ok(MPlan {
                    steps: v,
                    update: true,
                    moves,
                });
            }
        }
        Ok(MPlan {
            steps: v,
            update: false,
            moves: Moves::between(&self.copies(name), &Copies::new(), true),
        })
    }

    /// The `creating` record bottle writes just before `create`.
    fn write_record(&mut self, name: &'static str, file: usize) {
        let rec = Rec {
            phase: Phase::Creating,
            owner: file,
            image: self.image(name),
            copies: Copies::new(),
            execs: BTreeSet::new(),
        };
        self.records.insert(name, rec);
    }

    fn new_machine(&mut self) -> Machine {
        self.next_generation += 1;
        Machine {
            state: Vm::Created,
            generation: self.next_generation,
            ran: Vec::new(),
            files: BTreeMap::new(),
            dirs: BTreeSet::new(),
            forgotten: BTreeSet::new(),
        }
    }

    /// Carry out the effect of one step smolvm did not fail on the model;
    /// `last_move`: it is the last step of the transfer. A guest command
    /// or upload may still fail on what the guest holds.
    fn effect(
        &mut self,
        name: &'static str,
        step: MStep,
        moves: &Moves,
        last_move: bool,
    ) -> Result<(), GuestError> {
        match step {
            MStep::Pack => {
                self.packed.insert(self.image(name));
            }
            MStep::StopOld => self.vm(name).state = Vm::Stopped,
            MStep::DeleteOld => {
                self.vms.remove(name);
            }
            MStep::Create => {
                let m = self.new_machine();
                self.vms.insert(name, m);
            }
            MStep::Start => self.vm(name).state = Vm::Running,
            MStep::Probe | MStep::Upload => {}
            MStep::Rm => self.vm(name).rm(&moves.remove)?,
            MStep::Rmdir => self.vm(name).rmdir(&moves.clear),
            MStep::Unpack | MStep::Copy => {
                let m = self.vms.get_mut(name).expect("the machine");
                for (path, text) in &moves.send {
                    let placed = match step {
                        MStep::Copy => m.cp(path, text),
                        _ => m.unpack(path, text),
                    };
                    if let Err(GuestError {
                        staged: Some(staged),
                    }) = &placed
                    {
                        self.sent.insert(staged.clone());
                    }
                    placed?;
                    m.forgotten.remove(path);
                    self.sent.insert(path.clone());
                }
            }
            MStep::Exec(id) => {
                self.vm(name).ran.push(id);
                let rec = self.records.get_mut(name).expect("a record");
                rec.execs.insert(id);
            }
        }
        if last_move {
            self.copies_applied(name, moves);
        }
        Ok(())
    }

    /// The guest holds what the spec's copies make: the record says so,
    /// and the paths left with `--no-prune` are forgotten.
    fn copies_applied(&mut self, name: &'static str, moves: &Moves) {
        let want = self.copies(name);
        self.records.get_mut(name).expect("a record").copies = want;
        self.forget(name, &moves.kept);
    }

    /// Bottle no longer knows of `paths`: those the guest holds are its
    /// own files from now on.
    fn forget(&mut self, name: &'static str, paths: &[String]) {
        let m = self.vm(name);
        let held = paths.iter().filter(|p| m.files.contains_key(*p)).cloned();
        let held: Vec<String> = held.collect();
        m.forgotten.extend(held);
    }

    /// The record bottle writes just before a prune's `rm`: the copies it
    /// has, with each path about to be removed marked [`REMOVING`]. Such a
    /// path matches no spec's file, so the next apply sends it again if a
    /// copy makes it and removes it (and clears the directories that held
    /// it) again if none does, whatever became of this prune.
    fn forget_removed(&mut self, name: &'static str, moves: &Moves) {
        let rec = self.records.get_mut(name).expect("a record");
        for files in rec.copies.values_mut() {
            for (f, v) in files.iter_mut() {
                if moves.remove.contains(&guest_of(f)) {
                    *v = REMOVING;
                }
            }
        }
    }

    fn vm(&mut self, name: &str) -> &mut Machine {
        self.vms.get_mut(name).expect("the machine")
    }

    /// An apply of `name` from spec file `file`, or (`crash_at`) one that
    /// dies when about to make that call.
    fn apply(
        &mut self,
        name: &'static str,
        file: usize,
        faults: &[&str],
        keep: bool,
        allow: Allow,
        crash_at: Option<usize>,
    ) -> Expect {
        if crash_at == Some(0) {
            return Expect::Crashed;
        }
        // One `ls`; when it fails, `status` of the machine instead.
        self.calls.push("ls");
        if faults.contains(&"ls") {
            self.calls.push("status");
            if faults.contains(&"status") {
                return Expect::Failed;
            }
        }
        let plan = match self.plan(name, file, allow) {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        if plan.update {
            // `--adopt`: the kept machine is this file's from now on.
            self.records.get_mut(name).expect("a record").owner = file;
        }
        let mut created = false;
        let mut started = false;
        self.in_place = plan.update;
        let last_move = plan.steps.iter().rposition(|s| s.moves_copies());
        for (at, &step) in plan.steps.iter().enumerate() {
            match step {
                MStep::Create => self.write_record(name, file),
                MStep::Rm => self.forget_removed(name, &plan.moves),
                _ => {}
            }
            if crash_at == Some(self.calls.len()) {
                return Expect::Crashed;
            }
            self.calls.push(step.call());
            let m = &plan.moves;
            let words = |head: &[&str], rest: &[String]| -> Vec<String> {
                let head = head.iter().map(|w| w.to_string());
                head.chain(rest.iter().cloned()).collect()
            };
            match step {
                MStep::Rm => self.details.push(words(&["rm", "-f", "--"], &m.remove)),
                MStep::Rmdir => {
                    let head = ["sh", "-c", r#"rmdir -- "$@" || true"#, "bottle-prune"];
                    self.details.push(words(&head, &m.clear));
                }
                MStep::Copy => self
                    .details
                    .extend(m.send.iter().map(|(p, _)| vec![p.clone()])),
                _ => {}
            }
            created |= step == MStep::Create;
            started |= step == MStep::Start && !plan.update;
            let failed = faults.contains(&step.sim())
                || self
                    .effect(name, step, &plan.moves, Some(at) == last_move)
                    .is_err();
            if failed {
                if !plan.update {
                    self.tear_down(name, created, started, keep, faults);
                }
                return Expect::StepFailed {
                    in_place: plan.update,
                };
            }
        }
        // The record becomes the spec's, copies included (a run that
        // moved nothing forgets what `--no-prune` left now).
        self.copies_applied(name, &plan.moves);
        let image = self.image(name);
        let rec = self.records.get_mut(name).expect("a record");
        rec.phase = Phase::Complete;
        rec.owner = file;
        rec.image = image;
        Expect::Ok
    }

    /// The teardown of a new machine after a failed step.
    fn tear_down(
        &mut self,
        name: &'static str,
        created: bool,
        started: bool,
        keep: bool,
        faults: &[&str],
    ) {
        if !created {
            return;
        }
        let failed =
            |m: &mut Model| m.records.get_mut(name).expect("a record").phase = Phase::Failed;
        if keep {
            return failed(self);
        }
        if started {
            self.calls.push("stop");
            if faults.contains(&"stop") {
                if self.version.dialect() == Some(Dialect::Positional) {
                    // smolvm 0.8's delete would orphan the VM: bottle leaves it.
                    return failed(self);
                }
            } else if let Some(m) = self.vms.get_mut(name)
                && m.state == Vm::Running
            {
                m.state = Vm::Stopped;
            }
        }
        self.calls.push("delete");
        if faults.contains(&"delete") {
            // The teardown's delete failed: the machine may remain, and the
            // record keeps owning it.
            return failed(self);
        }
        self.vms.remove(name);
        self.records.remove(name);
    }

    fn down(&mut self, name: &'static str, faults: &[&str]) -> Expect {
        self.calls.push("status");
        if faults.contains(&"status") {
            return Expect::Failed;
        }
        if !self.records.contains_key(name) {
            return Expect::Refused;
        }
        let Some(m) = self.vms.get_mut(name) else {
            self.records.remove(name);
            return Expect::Ok;
        };
        if m.state == Vm::Running {
            self.calls.push("stop");
            match faults.contains(&"stop") {
                true if self.version.dialect() == Some(Dialect::Positional) => {
                    return Expect::Failed;
                }
                true => {}
                false => m.state = Vm::Stopped,
            }
        }
        self.calls.push("delete");
        if faults.contains(&"delete") {
            return Expect::Failed;
        }
        self.vms.remove(name);
        self.records.remove(name);
        Expect::Ok
    }

    /// The machine bottle's `stop` or `start` works on, or why it refuses.
    fn owned(&mut self, name: &'static str, faults: &[&str]) -> Result<Vm, Expect> {
        self.calls.push("status");
        if faults.contains(&"status") {
            return Err(Expect::Failed);
        }
        if !self.records.contains_key(name) {
            return Err(Expect::Refused);
        }
        self.vms.get(name).map(|m| m.state).ok_or(Expect::Gone)
    }

    fn stop(&mut self, name: &'static str, faults: &[&str]) -> Expect {
        match self.owned(name, faults) {
            Err(e) => e,
            Ok(Vm::Running) => {
                self.calls.push("stop");
                if faults.contains(&"stop") {
                    return Expect::Failed;
                }
                self.vm(name).state = Vm::Stopped;
                Expect::Ok
            }
            Ok(_) => Expect::Ok,
        }
    }

    fn start(&mut self, name: &'static str, faults: &[&str]) -> Expect {
        match self.owned(name, faults) {
            Err(e) => e,
            Ok(Vm::Running) => Expect::Ok,
            Ok(_) => {
                self.calls.push("start");
                if faults.contains(&"start") {
                    return Expect::Failed;
                }
                self.vm(name).state = Vm::Running;
                self.calls.push("probe");
                match faults.contains(&"probe") {
                    true => Expect::Failed,
                    false => Expect::Ok,
                }
            }
        }
    }

    fn edit(&mut self, op: &Op) {
        let s = &mut self.spec;
        match op {
            Op::EditCopy(Edit::Change(file)) => {
                let v = s.src.get_mut(file).expect("a file");
                *v = (*v + 1) % 3;
            }
            Op::EditCopy(Edit::Add(file)) => {
                s.src.insert(file, 0);
            }
            Op::EditCopy(Edit::Delete(file)) => {
                s.src.remove(file);
            }
            Op::EditCopy(Edit::Retype) => match s.src.remove(SUB_FILE) {
                Some(_) => {
                    s.src.insert("d/sub/y", 0);
                }
                None => {
                    s.src.retain(|f, _| !f.starts_with("d/sub/"));
                    s.src.insert(SUB_FILE, 0);
                }
            },
            Op::AddExec { id } => s.execs.push(*id),
            Op::ChangeExec { at, id } => s.execs[*at] = *id,
            Op::RemoveExec { at } => {
                s.execs.remove(*at);
            }
            Op::ChangeImage => s.image = 3 - s.image,
            _ => unreachable!("not an edit"),
        }
    }

    fn step(&mut self, op: &Op) {
        self.calls.clear();
        self.in_place = false;
        self.sent.clear();
        self.details.clear();
        self.last = match op {
            Op::Apply {
                name,
                file,
                adopt,
                faults,
                keep,
                replace,
                rerun,
                no_prune,
            } => {
                let allow = Allow {
                    replace: *replace,
                    adopt: *adopt,
                    rerun_exec: *rerun,
                    keep_removed: *no_prune,
                };
                self.apply(NAMES[*name], *file, faults, *keep, allow, None)
            }
            Op::Crash { name, at, replace } => {
                let allow = Allow {
                    replace: *replace,
                    ..Allow::default()
                };
                self.apply(NAMES[*name], 0, &[], false, allow, Some(*at))
            }
            Op::Down { name, faults } => self.down(NAMES[*name], faults),
            Op::Stop { name, faults } => self.stop(NAMES[*name], faults),
            Op::Start { name, faults } => self.start(NAMES[*name], faults),
            Op::ExternalStop { name } => {
                if let Some(m) = self.vms.get_mut(NAMES[*name])
                    && m.state == Vm::Running
                {
                    m.state = Vm::Stopped;
                }
                Expect::Ok
            }
            Op::ExternalDelete { name } => {
                self.vms.remove(NAMES[*name]);
                Expect::Ok
            }
            Op::ExternalCreate { name } => {
                let m = self.new_machine();
                self.vms.insert(NAMES[*name], m);
                Expect::Ok
            }
            Op::EditCopy(_)
            | Op::AddExec { .. }
            | Op::ChangeExec { .. }
            | Op::RemoveExec { .. }
            | Op::ChangeImage => {
                self.edit(op);
                Expect::Ok
            }
        };
        self.update_converged(op);
    }

    fn update_converged(&mut self, op: &Op) {
        match (op, op.machine()) {
            (Op::Apply { .. } | Op::Crash { .. }, Some(name)) => match self.last {
                Expect::Ok => {
                    self.converged.insert(name);
                }
                Expect::Refused | Expect::RefusedReplace | Expect::OwnedElsewhere => {}
                _ => {
                    self.converged.remove(name);
                }
            },
            (Op::Start { .. }, _) => {}
            (_, Some(name)) => {
                self.converged.remove(name);
            }
            (_, None) => {
                self.converged.remove("a");
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

/// The edits of `a`'s spec that `state` allows.
fn edits(state: &Model) -> Vec<(u32, BoxedStrategy<Op>)> {
    let s = &state.spec;
    let present: Vec<&'static str> = s.src.keys().copied().collect();
    let absent: Vec<&'static str> = FILES.iter().copied().filter(|f| fits(&s.src, f)).collect();
    let deletable: Vec<&'static str> = present
        .iter()
        .copied()
        .filter(|f| f.starts_with("d/"))
        .collect();
    let free: Vec<u8> = (0..STEP_POOL).filter(|i| !s.execs.contains(i)).collect();
    let n = s.execs.len();
    let mut v: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (
            3,
            prop::sample::select(present)
                .prop_map(|f| Op::EditCopy(Edit::Change(f)))
                .boxed(),
        ),
        (1, Just(Op::ChangeImage).boxed()),
        (2, Just(Op::EditCopy(Edit::Retype)).boxed()),
    ];
    if !absent.is_empty() {
        let add = prop::sample::select(absent).prop_map(|f| Op::EditCopy(Edit::Add(f)));
        v.push((2, add.boxed()));
    }
    if !deletable.is_empty() {
        let delete = prop::sample::select(deletable).prop_map(|f| Op::EditCopy(Edit::Delete(f)));
        v.push((2, delete.boxed()));
    }
    if n < MAX_STEPS {
        let add = prop::sample::select(free.clone()).prop_map(|id| Op::AddExec { id });
        v.push((1, add.boxed()));
    }
    if n > 0 {
        let change =
            (0..n, prop::sample::select(free)).prop_map(|(at, id)| Op::ChangeExec { at, id });
        v.push((1, change.boxed()));
        v.push((1, (0..n).prop_map(|at| Op::RemoveExec { at }).boxed()));
    }
    v
}

impl ReferenceStateMachine for ModelMachine {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        prop_oneof![Just(Version::new(0, 8, 0)), Just(Version::new(1, 9, 3))]
            .prop_map(|version| Model {
                version,
                vms: BTreeMap::new(),
                records: BTreeMap::new(),
                spec: SpecA::initial(),
                last: Expect::Ok,
                calls: Vec::new(),
                converged: BTreeSet::new(),
                packed: BTreeSet::new(),
                next_generation: 0,
                in_place: false,
                sent: BTreeSet::new(),
                details: Vec::new(),
            })
            .boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Op> {
        let flag = prop::bool::weighted;
        let name = || prop_oneof![3 => Just(0usize), 1 => Just(1usize)];
        let mut v: Vec<(u32, BoxedStrategy<Op>)> = vec![
            (
                10,
                (
                    name(),
                    (flag(0.15), flag(0.4)),
                    arb_faults(),
                    flag(0.2),
                    flag(0.3),
                    (flag(0.15), flag(0.2)),
                )
                    .prop_map(
                        |(name, (other, adopt), faults, keep, replace, (rerun, no_prune))| {
                            Op::Apply {
                                name,
                                file: usize::from(other && name == 0),
                                adopt,
                                faults,
                                keep,
                                replace,
                                rerun,
                                no_prune,
                            }
                        },
                    )
                    .boxed(),
            ),
            (
                2,
                (name(), 0..10usize, flag(0.4))
                    .prop_map(|(name, at, replace)| Op::Crash { name, at, replace })
                    .boxed(),
            ),
            (
                1,
                (name(), arb_faults())
                    .prop_map(|(name, faults)| Op::Down { name, faults })
                    .boxed(),
            ),
            (
                1,
                (name(), arb_faults())
                    .prop_map(|(name, faults)| Op::Stop { name, faults })
                    .boxed(),
            ),
            (
                1,
                (name(), arb_faults())
                    .prop_map(|(name, faults)| Op::Start { name, faults })
                    .boxed(),
            ),
            (1, name().prop_map(|name| Op::ExternalStop { name }).boxed()),
            (
                1,
                name().prop_map(|name| Op::ExternalDelete { name }).boxed(),
            ),
            (
                1,
                name().prop_map(|name| Op::ExternalCreate { name }).boxed(),
            ),
        ];
        v.extend(edits(state));
        Union::new_weighted(v).boxed()
    }

    fn preconditions(state: &Model, op: &Op) -> bool {
        let s = &state.spec;
        match op {
            // Someone else creates a machine only under a free name.
            Op::ExternalCreate { name } => {
                let name = NAMES[*name];
                !state.vms.contains_key(name) && !state.records.contains_key(name)
            }
            Op::EditCopy(Edit::Change(f)) => s.src.contains_key(f),
            Op::EditCopy(Edit::Add(f)) => fits(&s.src, f),
            Op::EditCopy(Edit::Delete(f)) => s.src.contains_key(f) && f.starts_with("d/"),
            Op::AddExec { id } => s.execs.len() < MAX_STEPS && !s.execs.contains(id),
            Op::ChangeExec { at, id } => *at < s.execs.len() && !s.execs.contains(id),
            Op::RemoveExec { at } => *at < s.execs.len(),
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
/// and checking before each call that bottle only ever acts on a machine
/// whose record it holds: a `create` only after its `creating` record was
/// written, so a name bottle never created is never started, stopped,
/// copied into, exec'd in or deleted.
struct Crashing {
    sim: Engine,
    store: Store,
    calls: Cell<usize>,
    crash_at: Option<usize>,
}

/// The machine a call acts on (none for `status`, `pack`, `ls`, `--version`).
fn target_of(call: &Call) -> Option<String> {
    let argv = &call.argv;
    let flagged = argv
        .iter()
        .position(|a| a == "--name")
        .map(|i| argv[i + 1].clone());
    match call.op {
        CallOp::Create
        | CallOp::Start
        | CallOp::Stop
        | CallOp::Delete
        | CallOp::Exec { .. }
        | CallOp::Probe => flagged.or_else(|| argv.last().cloned()),
        CallOp::Cp => argv
            .last()
            .and_then(|a| a.split_once(':'))
            .map(|(name, _)| name.to_string()),
        CallOp::Version | CallOp::Pack | CallOp::Status | CallOp::Ls => None,
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

/// A record as the model words it: what each hash of it stands for.
#[derive(Debug, PartialEq, Eq)]
struct RecView {
    phase: Phase,
    image: u8,
    copies: BTreeMap<String, BTreeMap<&'static str, u8>>,
    execs: BTreeSet<u8>,
}

struct Sut {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    version: Version,
    store: Store,
    cache: PathBuf,
    /// `a`'s spec file, and another file with the same text (which does
    /// not own the machine unless adopted).
    a_files: [PathBuf; 2],
    b: Desired,
    /// What the hashes and entries of every spec resolved so far stand
    /// for: exec step hash → id, (guest path, copy entry) → host file and
    /// version, image hash → image.
    exec_ids: HashMap<String, u8>,
    entries: HashMap<(String, String), (&'static str, u8)>,
    images: HashMap<String, u8>,
    /// The generation each machine's marker (`/agent-work`) names, as the
    /// agent last wrote it.
    markers: BTreeMap<&'static str, u32>,
}

/// The agent's marker file, outside every copy destination.
const MARKER: &str = "agent-work";

fn marker_text(generation: u32) -> String {
    format!("g{generation}\n")
}

fn note_text(generation: u32) -> String {
    format!("n{generation}\n")
}

impl Sut {
    fn new(version: Version, spec: &SpecA) -> Self {
        let tmp = scratch_dir();
        let root = tmp.path().to_path_buf();
        std::fs::create_dir_all(root.join("build")).expect("build");
        let out = root.join("build/b").to_string_lossy().into_owned();
        sim_call(
            &root,
            &version,
            &["pack", "create", "--image", "base:1", "-o", &out],
        );
        let b_file = root.join("b.toml");
        std::fs::write(&b_file, SPEC_B).expect("spec b");
        let b = spec::load(&b_file)
            .and_then(spec::resolve)
            .expect("valid spec");
        let sut = Sut {
            store: Store::new(&root.join("state")),
            cache: root.join("cache"),
            a_files: [root.join("a.toml"), root.join("a2.toml")],
            exec_ids: HashMap::from([(b.fingerprint.execs[0].clone(), B_STEP)]),
            entries: HashMap::new(),
            images: HashMap::from([(b.fingerprint.image.clone(), 0)]),
            markers: BTreeMap::new(),
            b,
            version,
            root,
            _tmp: tmp,
        };
        sut.write_spec(spec);
        sut
    }

    /// Put `a`'s spec file and copy sources on disk as `spec` says.
    fn write_spec(&self, spec: &SpecA) {
        let d = self.root.join("d");
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("d");
        for (file, v) in &spec.src {
            let path = self.root.join(file);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("dir");
            std::fs::write(&path, content(file, *v)).expect("file");
        }
        for file in &self.a_files {
            std::fs::write(file, spec.text()).expect("spec a");
        }
    }

    /// The spec of `name` read from (`a`'s) spec file `file` now, with
    /// what its hashes stand for noted.
    fn desired(&mut self, name: &str, file: usize, spec: &SpecA) -> Desired {
        if name == "b" {
            return self.b.clone();
        }
        let d = spec::load(&self.a_files[file])
            .and_then(spec::resolve)
            .expect("valid spec");
        let f = &d.fingerprint;
        self.images.insert(f.image.clone(), spec.image);
        for (hash, id) in f.execs.iter().zip(&spec.execs) {
            self.exec_ids.insert(hash.clone(), *id);
        }
        let guests: BTreeMap<String, (&'static str, u8)> = spec
            .src
            .iter()
            .map(|(file, v)| (guest_of(file), (*file, *v)))
            .collect();
        for (path, entry) in f.copies.iter().flat_map(|c| &c.entries) {
            let file = guests.get(path).expect("a path of the spec's files");
            self.entries.insert((path.clone(), entry.clone()), *file);
        }
        d
    }

    /// A record in the model's words.
    fn view(&self, r: &Record) -> RecView {
        let f = &r.fingerprint;
        RecView {
            phase: match r.phase {
                RecordPhase::Creating => Phase::Creating,
                RecordPhase::Complete => Phase::Complete,
                RecordPhase::Failed => Phase::Failed,
            },
            image: *self.images.get(&f.image).expect("a known image"),
            copies: f
                .copies
                .iter()
                .map(|c| {
                    let again = CopyPrint::new(&c.dest, c.entries.clone());
                    assert_eq!(
                        c.hash, again.hash,
                        "the hash of the record's copy {}",
                        c.dest
                    );
                    let files = c.entries.iter().map(|(path, entry)| {
                        let key = (path.clone(), entry.clone());
                        match entry.as_str() {
                            "removing" => {
                                let of_path = self.entries.iter().find(|((p, _), _)| p == path);
                                let file = of_path.expect("a known copied path").1.0;
                                (file, REMOVING)
                            }
                            _ => *self.entries.get(&key).expect("a known copy entry"),
                        }
                    });
                    (c.dest.clone(), files.collect())
                })
                .collect(),
            execs: f
                .execs
                .iter()
                .map(|h| *self.exec_ids.get(h).expect("a known exec step"))
                .collect(),
        }
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
        sim_call(&self.root, &self.version, args)
    }

    fn calls_since(&self, from: usize) -> Vec<Vec<String>> {
        self.home().calls_made().expect("calls").split_off(from)
    }

    /// A guest file of `name`, if it is there.
    fn guest_file(&self, name: &str, path: &str) -> Option<String> {
        let p = self.home().guest(name).join(path.trim_start_matches('/'));
        std::fs::read_to_string(p).ok()
    }

    /// The lines of `name`'s `/ran`.
    fn ran(&self, name: &str) -> Vec<String> {
        let text = self.guest_file(name, "/ran").unwrap_or_default();
        text.lines().map(String::from).collect()
    }

    /// Every file under `name`'s copy destinations but the agent's note:
    /// guest path → content.
    fn copied(&self, name: &str) -> BTreeMap<String, String> {
        fn walk(dir: &Path, guest: &str, out: &mut BTreeMap<String, String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.map(|e| e.expect("entry")) {
                let name = e.file_name().to_string_lossy().into_owned();
                let g = format!("{guest}/{name}");
                match e.file_type().expect("type").is_dir() {
                    true => walk(&e.path(), &g, out),
                    false => {
                        let text = std::fs::read_to_string(e.path()).expect("a guest file");
                        out.insert(g, text);
                    }
                }
            }
        }
        let root = self.home().guest(name);
        let mut out = BTreeMap::new();
        walk(&root.join("w"), "/w", &mut out);
        walk(&root.join("etc"), "/etc", &mut out);
        out.remove(AGENT_NOTE);
        out
    }

    /// Every directory under `name`'s copy destinations (`/w`, and what
    /// holds `/etc/f1`), those themselves aside.
    fn copied_dirs(&self, name: &str) -> BTreeSet<String> {
        fn walk(dir: &Path, guest: &str, out: &mut BTreeSet<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.map(|e| e.expect("entry")) {
                if e.file_type().expect("type").is_dir() {
                    let g = format!("{guest}/{}", e.file_name().to_string_lossy());
                    walk(&e.path(), &g, out);
                    out.insert(g);
                }
            }
        }
        let root = self.home().guest(name);
        let mut out = BTreeSet::new();
        walk(&root.join("w"), "/w", &mut out);
        walk(&root.join("etc"), "/etc", &mut out);
        out
    }

    /// The inode of each file of [`Sut::copied`].
    fn inodes(&self, name: &str) -> BTreeMap<String, u64> {
        use std::os::unix::fs::MetadataExt;
        let root = self.home().guest(name);
        let ino = |p: &String| {
            let host = root.join(p.trim_start_matches('/'));
            std::fs::symlink_metadata(host).expect("a guest file").ino()
        };
        let paths = self.copied(name).into_keys();
        paths.map(|p| (ino(&p), p)).map(|(i, p)| (p, i)).collect()
    }

    /// [`Sut::inodes`], each file held by a hard link in `dir` while the
    /// next operation runs.
    fn hold(&self, name: &str, dir: &Path) -> BTreeMap<String, u64> {
        let inodes = self.inodes(name);
        std::fs::create_dir_all(dir).expect("held");
        let root = self.home().guest(name);
        for (i, path) in inodes.keys().enumerate() {
            let host = root.join(path.trim_start_matches('/'));
            std::fs::hard_link(host, dir.join(i.to_string())).expect("a hard link");
        }
        inodes
    }

    /// The agent writes its marker into a machine the model says is new:
    /// through `exec` when it runs, else straight into its disk.
    fn write_marker(&mut self, name: &'static str, running: bool, generation: u32) {
        let text = marker_text(generation);
        if running {
            let script = format!(
                "echo g{generation} > /{MARKER} && mkdir -p /w && echo n{generation} > {AGENT_NOTE}"
            );
            let out = self.call(&["machine", "exec", "--name", name, "--", "sh", "-c", &script]);
            assert_eq!(out.code, 0, "the agent's exec in {name}: {}", out.stderr);
        } else {
            let dir = self.home().guest(name);
            std::fs::create_dir_all(dir.join("w")).expect("guest dir");
            std::fs::write(dir.join(MARKER), &text).expect("marker");
            let note = dir.join(AGENT_NOTE.trim_start_matches('/'));
            std::fs::write(note, note_text(generation)).expect("note");
        }
        self.markers.insert(name, generation);
    }

    /// Run bottle's apply, down, stop or start; returns what came of it and
    /// its calls.
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
            Ok(Err(ApplyError::Step { in_place, .. })) => Expect::StepFailed { in_place },
            Ok(Err(
                ApplyError::Observe { .. } | ApplyError::Switch { .. } | ApplyError::Down { .. },
            )) => Expect::Failed,
            Ok(Err(ApplyError::Unmanaged { .. } | ApplyError::NotOwned { .. })) => Expect::Refused,
            Ok(Err(ApplyError::ReplaceRefused { .. })) => Expect::RefusedReplace,
            Ok(Err(ApplyError::OwnedElsewhere { .. })) => Expect::OwnedElsewhere,
            Ok(Err(ApplyError::Gone { .. })) => Expect::Gone,
            Ok(Err(e)) => panic!("unexpected error: {e}"),
            Err(p) if p.is::<CrashMarker>() => Expect::Crashed,
            Err(p) => std::panic::resume_unwind(p),
        };
        (expect, self.calls_since(before))
    }
}

/// A directory for one case: in memory where the system has one, since
/// the simulator syncs its world to disk on every call.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let dir = match shm.is_dir() {
        true => tempfile::Builder::new()
            .prefix("bottle-model")
            .tempdir_in(shm),
        false => tempfile::tempdir(),
    };
    dir.expect("tempdir")
}

/// A smolvm call of the user's (or the agent's), with no fault.
fn sim_call(root: &Path, version: &Version, args: &[&str]) -> Output {
    let argv: Vec<String> = std::iter::once("smolvm")
        .chain(args.iter().copied())
        .map(String::from)
        .collect();
    let knobs = Knobs::new(root.join("sim"), sim_version(version));
    sim_run(&Engine::new(knobs), &argv, Duration::from_secs(1)).expect("sim")
}

fn opts(keep: bool, allow: Allow) -> Options {
    let on_failure = if keep {
        OnFailure::Keep
    } else {
        OnFailure::TearDown
    };
    Options {
        on_failure,
        allow_unenforced_egress: true,
        repack: false,
        allow,
    }
}

/// The kind of each call, for the grammar check: an `exec` is a probe,
/// a prune (`rm -f --`, `sh -c 'rmdir …' bottle-prune`), the unpacking of
/// the copy archive or an exec step; a `cp` the upload of that archive or
/// the copy of one file.
fn kind(argv: &[String]) -> &'static str {
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    match words.as_slice() {
        [_, "pack", ..] => "pack",
        [_, "machine", "exec", ..] => match command(argv).as_slice() {
            ["true"] => "probe",
            ["rm", "-f", "--", ..] => "prune",
            ["sh", "-c", script, "bottle-prune", ..] if script.starts_with("rmdir ") => "prune",
            ["sh", "-c", script] if script.starts_with("tar -xf ") => "unpack",
            _ => "exec",
        },
        [_, "machine", "cp", .., dst] => match dst.split_once(':') {
            Some((_, path)) if path.starts_with("/tmp/bottle-copy-") => "upload",
            _ => "copy",
        },
        [_, "machine", sub, ..] => match *sub {
            "create" => "create",
            "start" => "start",
            "stop" => "stop",
            "delete" => "delete",
            "status" => "status",
            "ls" => "ls",
            _ => "other",
        },
        _ => "other",
    }
}

/// The guest command of an `exec` call: what follows its first `--`.
fn command(argv: &[String]) -> Vec<&str> {
    let at = argv.iter().position(|a| a == "--");
    let rest = at.map_or(&[][..], |at| &argv[at + 1..]);
    rest.iter().map(String::as_str).collect()
}

/// What the model predicts of a call beyond its kind: a prune's command,
/// word by word, the guest path of a single-file copy.
fn detail(argv: &[String]) -> Option<Vec<String>> {
    match kind(argv) {
        "prune" => Some(command(argv).into_iter().map(String::from).collect()),
        "copy" => argv
            .last()
            .and_then(|a| a.split_once(':'))
            .map(|(_, path)| vec![path.to_string()]),
        _ => None,
    }
}

/// The kinds of `calls`, readiness (probes and the `status` calls among
/// them) as one `probe`.
fn collapsed(calls: &[Vec<String>]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for k in calls.iter().map(|c| kind(c)) {
        let probing = out.last() == Some(&"probe");
        if !(probing && matches!(k, "probe" | "status")) {
            out.push(k);
        }
    }
    out
}

/// Where the grammar of an apply's calls is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum G {
    Begin,
    /// `ls` was asked (`status` follows when it could not answer).
    Listed,
    Observed,
    Packed,
    StoppedOld,
    DeletedOld,
    // A new machine.
    Created,
    Started,
    Ready,
    Uploaded,
    Unpacked,
    Copied,
    Ran,
    TornStop,
    TornDelete,
    // An update of a kept machine.
    Restarted,
    UpReady,
    Pruned,
    UpUploaded,
    UpUnpacked,
    UpCopied,
    UpRan,
}

/// `look [pack] [stop] [delete] create [start [probe+ [upload unpack |
/// copy] [exec*]]]` then a teardown `[stop] [delete]`, or an update `look
/// [start probe+] [prune+] [upload unpack | copy] [exec*]` (no teardown:
/// an update keeps the machine); each possibly cut short. A new machine
/// has nothing to prune; a `copy` is the one file sent. `look` is `ls`,
/// `ls status` (`ls` could not answer) or `status`. Readiness also asks
/// `status` now and then, among its probes.
fn follows_grammar(kinds: &[&str]) -> bool {
    let mut at = G::Begin;
    for k in kinds {
        let teardown = |k: &str| match k {
            "stop" => Some(G::TornStop),
            "delete" => Some(G::TornDelete),
            _ => None,
        };
        if at == G::Listed && *k != "status" {
            at = G::Observed;
        }
        let next = match (at, *k) {
            (G::Begin, "status") | (G::Listed, "status") => Some(G::Observed),
            (G::Begin, "ls") => Some(G::Listed),
            (G::Observed, "pack") => Some(G::Packed),
            (G::Observed | G::Packed, "stop") => Some(G::StoppedOld),
            (G::Observed | G::Packed | G::StoppedOld, "delete") => Some(G::DeletedOld),
            (G::Observed | G::Packed | G::StoppedOld | G::DeletedOld, "create") => Some(G::Created),
            (G::Created, "start") => Some(G::Started),
            (G::Started | G::Ready, "probe") | (G::Ready, "status") => Some(G::Ready),
            (G::Ready, "upload") => Some(G::Uploaded),
            (G::Uploaded, "unpack") => Some(G::Unpacked),
            (G::Ready, "copy") => Some(G::Copied),
            (G::Ready | G::Unpacked | G::Copied | G::Ran, "exec") => Some(G::Ran),
            (G::Created, "delete") => Some(G::TornDelete),
            (G::Started | G::Ready | G::Uploaded | G::Unpacked | G::Copied | G::Ran, k) => {
                teardown(k)
            }
            (G::TornStop, "delete") => Some(G::TornDelete),
            (G::Observed, "start") => Some(G::Restarted),
            (G::Restarted | G::UpReady, "probe") | (G::UpReady, "status") => Some(G::UpReady),
            (G::Observed | G::UpReady | G::Pruned, "prune") => Some(G::Pruned),
            (G::Observed | G::UpReady | G::Pruned, "upload") => Some(G::UpUploaded),
            (G::UpUploaded, "unpack") => Some(G::UpUnpacked),
            (G::Observed | G::UpReady | G::Pruned, "copy") => Some(G::UpCopied),
            (
                G::Observed | G::UpReady | G::Pruned | G::UpUnpacked | G::UpCopied | G::UpRan,
                "exec",
            ) => Some(G::UpRan),
            _ => None,
        };
        match next {
            Some(n) => at = n,
            None => return false,
        }
    }
    true
}

fn names_in(argv: &[String], name: &str) -> bool {
    argv.iter()
        .any(|a| a == name || a.starts_with(&format!("{name}:")))
}

fn mutating(argv: &[String]) -> bool {
    !matches!(kind(argv), "status" | "ls")
}

/// One machine before an operation, for the invariants that compare
/// before and after.
struct Before {
    phase: Option<RecordPhase>,
    /// The agent's marker in its guest.
    marker: Option<String>,
    /// The agent's note inside a copy destination.
    note: Option<String>,
    /// The lines of its `/ran`.
    ran: Vec<String>,
    /// The inode of each file under its copy destinations (each held by a
    /// hard link outside the guest, so no new file can reuse it).
    inodes: BTreeMap<String, u64>,
}

impl Before {
    fn of(sut: &Sut) -> BTreeMap<&'static str, Before> {
        let held = sut.root.join("held");
        let _ = std::fs::remove_dir_all(&held);
        let one = |name| Before {
            phase: sut.store.load(name).expect("record").map(|r| r.phase),
            marker: sut.guest_file(name, MARKER),
            note: sut.guest_file(name, AGENT_NOTE),
            ran: sut.ran(name),
            inodes: sut.hold(name, &held.join(name)),
        };
        NAMES.iter().map(|&name| (name, one(name))).collect()
    }
}

struct Harness;

impl StateMachineTest for Harness {
    type SystemUnderTest = Sut;
    type Reference = ModelMachine;

    fn init_test(model: &Model) -> Sut {
        quiet_crashes();
        Sut::new(model.version.clone(), &model.spec)
    }

    fn apply(mut sut: Sut, model: &Model, op: Op) -> Sut {
        let before = Before::of(&sut);
        let name_of = |i: &usize| MachineName::parse(NAMES[*i]).expect("name");
        let (got, calls) = match &op {
            Op::Apply {
                name,
                file,
                adopt,
                faults,
                keep,
                replace,
                rerun,
                no_prune,
            } => {
                let d = sut.desired(NAMES[*name], *file, &model.spec);
                let allow = Allow {
                    replace: *replace,
                    adopt: *adopt,
                    rerun_exec: *rerun,
                    keep_removed: *no_prune,
                };
                sut.bottle(faults, None, |env| {
                    env.apply(&d, opts(*keep, allow)).map(drop)
                })
            }
            Op::Crash { name, at, replace } => {
                let d = sut.desired(NAMES[*name], 0, &model.spec);
                let allow = Allow {
                    replace: *replace,
                    ..Allow::default()
                };
                sut.bottle(&[], Some(*at), |env| {
                    env.apply(&d, opts(false, allow)).map(drop)
                })
            }
            Op::Down { name, faults } => {
                sut.bottle(faults, None, |env| env.down(&name_of(name)).map(drop))
            }
            Op::Stop { name, faults } => {
                sut.bottle(faults, None, |env| env.stop(&name_of(name)).map(drop))
            }
            Op::Start { name, faults } => sut.bottle(faults, None, |env| {
                env.start(&name_of(name), Some(Duration::from_secs(1)))
                    .map(drop)
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
            Op::EditCopy(_)
            | Op::AddExec { .. }
            | Op::ChangeExec { .. }
            | Op::RemoveExec { .. }
            | Op::ChangeImage => {
                sut.write_spec(&model.spec);
                (Expect::Ok, Vec::new())
            }
        };
        assert_eq!(got, model.last, "{op:?}: outcome; calls {calls:#?}");
        if op.by_bottle() {
            assert_eq!(
                collapsed(&calls),
                model.calls,
                "{op:?}: the calls the model predicts; calls {calls:#?}"
            );
        }
        check_calls(&op, model, &calls);
        check_kept(&sut, &before, &op, model);
        check_sent(&sut, &before, &op, model, &calls);
        if let (Op::Apply { name, .. } | Op::Crash { name, .. }, Expect::Ok) = (&op, got) {
            let d = sut.desired(NAMES[*name], 0, &model.spec);
            check_copied(&sut, &d, &model.vms[NAMES[*name]]);
        }
        // The agent marks each machine the model says is new.
        for (&name, m) in &model.vms {
            if sut.markers.get(name) != Some(&m.generation) {
                sut.write_marker(name, m.state == Vm::Running, m.generation);
            }
        }
        sut
    }

    fn check_invariants(sut: &Sut, model: &Model) {
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
            let want = model.vms.get(name);
            assert_eq!(vm, want.map(|m| m.state), "machine {name}");
            if let Some(m) = want {
                assert_eq!(
                    sut.guest_file(name, MARKER),
                    Some(marker_text(m.generation)),
                    "{name}: the agent's marker (was the machine replaced?)"
                );
                assert_eq!(
                    sut.guest_file(name, AGENT_NOTE),
                    Some(note_text(m.generation)),
                    "{name}: the agent's note inside a copy destination"
                );
                let ran: Vec<String> = m.ran.iter().map(|id| format!("s{id}")).collect();
                assert_eq!(sut.ran(name), ran, "{name}: the exec steps that ran");
                assert_eq!(sut.copied(name), m.files, "{name}: the copied files");
                let below = |d: &&String| d.starts_with("/w/") || d.starts_with("/etc/");
                let dirs: BTreeSet<String> = m.dirs.iter().filter(below).cloned().collect();
                assert_eq!(
                    sut.copied_dirs(name),
                    dirs,
                    "{name}: the directories under the copy destinations"
                );
            }
            let record = sut.store.load(name).expect("record");
            let rec = model.records.get(name);
            assert_eq!(record.is_some(), rec.is_some(), "record of {name}");
            if let (Some(r), Some(rec)) = (&record, rec) {
                let owner = match name {
                    "a" => sut.a_files[rec.owner].canonicalize().expect("a's spec"),
                    _ => sut.b.owner.clone(),
                };
                assert_eq!(r.spec_file, owner, "{name}: the record's owner");
                assert_eq!(r.schema, 3, "{name}: the record's schema");
                let got = sut.view(r);
                assert_eq!(
                    (got.phase, got.image, &got.copies),
                    (
                        rec.phase,
                        rec.image,
                        &rec.copies
                            .iter()
                            .map(|(d, f)| (d.to_string(), f.clone()))
                            .collect()
                    ),
                    "record of {name}"
                );
                assert!(
                    got.execs.is_subset(&rec.execs),
                    "{name}: the record says steps {:?} ran, the model {:?}",
                    got.execs,
                    rec.execs
                );
            }
            if let (
                Some(Rec {
                    phase: Phase::Complete,
                    ..
                }),
                Some(Vm::Running),
            ) = (rec, vm)
                && model.converged.contains(name)
            {
                check_env(sut, name);
            }
        }
    }
}

/// The calls of one apply: grammar, ownership, and none that mutate when
/// refused.
fn check_calls(op: &Op, model: &Model, calls: &[Vec<String>]) {
    let Some(name) = op.machine() else {
        return;
    };
    if let Op::Apply { .. } | Op::Crash { .. } = op {
        let kinds: Vec<&str> = calls.iter().map(|c| kind(c)).collect();
        assert!(
            follows_grammar(&kinds),
            "{op:?}: calls out of order: {kinds:?}"
        );
    }
    if matches!(
        model.last,
        Expect::Refused | Expect::RefusedReplace | Expect::OwnedElsewhere | Expect::Gone
    ) {
        assert!(
            calls.iter().all(|c| !mutating(c)),
            "{op:?}: a refused operation made a mutating call: {calls:#?}"
        );
    }
    assert!(
        calls
            .iter()
            .all(|c| !mutating(c) || names_in(c, name) || kind(c) == "pack"),
        "{op:?}: {calls:#?}"
    );
}

/// What bottle must keep across an operation, whatever the model says: a
/// machine whose last apply completed is deleted only by `down`, an apply
/// with `--replace` or someone else (its marker stays); a machine kept
/// keeps the agent's note inside a copy destination, and an in-place
/// update its marker outside them; an exec step runs at most once per
/// machine unless `--rerun-exec`.
fn check_kept(sut: &Sut, before: &BTreeMap<&str, Before>, op: &Op, model: &Model) {
    for name in NAMES {
        let Before {
            phase,
            marker,
            note,
            ran,
            ..
        } = &before[name];
        let Some(marker) = marker else {
            continue;
        };
        let now = sut.guest_file(name, MARKER);
        if now.as_ref() == Some(marker) {
            assert_eq!(
                &sut.guest_file(name, AGENT_NOTE),
                note,
                "{op:?}: {name} was kept, and lost the agent's file inside a copy destination"
            );
        }
        if *phase == Some(RecordPhase::Complete) && !op.may_delete(name) {
            assert_eq!(
                now.as_ref(),
                Some(marker),
                "{op:?}: machine {name}, whose last apply completed, was deleted or replaced"
            );
        }
        if model.in_place && op.machine() == Some(name) {
            assert_eq!(
                now.as_ref(),
                Some(marker),
                "{op:?}: an in-place update of {name} lost a file outside the copies"
            );
        }
        if now.as_ref() != Some(marker) || (op.rerun() && op.machine() == Some(name)) {
            continue;
        }
        let after = sut.ran(name);
        assert!(
            after.starts_with(ran),
            "{name}: /ran was rewritten: {ran:?} → {after:?}"
        );
        let mut seen: BTreeSet<&String> = ran.iter().collect();
        for line in &after[ran.len()..] {
            assert!(
                seen.insert(line),
                "{op:?}: exec step {line} ran again on {name} without --rerun-exec \
                 (before: {ran:?}, after: {after:?})"
            );
        }
    }
}

/// After a successful apply, the files under the copy destinations are
/// exactly the copy sources' files, with their content and mode now,
/// and those an apply with `--no-prune` left (and forgot), as they were.
fn check_copied(sut: &Sut, d: &Desired, m: &Machine) {
    use std::os::unix::fs::PermissionsExt;
    let name = d.spec.name.as_str();
    let root = sut.home().guest(name);
    let mut want = BTreeMap::new();
    for f in &d.files {
        let host = f.host.as_path();
        let text = std::fs::read_to_string(host).expect("a source file");
        want.insert(f.guest.as_str().to_string(), text);
        let mode = |p: &Path| {
            let meta = std::fs::metadata(p).map(|m| m.permissions().mode() & 0o7777);
            meta.ok()
        };
        let guest = root.join(f.guest.as_str().trim_start_matches('/'));
        assert_eq!(mode(&guest), mode(host), "{name}: the mode of {}", f.guest);
    }
    for path in &m.forgotten {
        assert!(!want.contains_key(path), "{name}: {path} is the spec's");
        want.insert(path.clone(), m.files[path].clone());
    }
    // What a failed `cp` of the simulated smolvm left beside its target
    // is smolvm's litter, not bottle's.
    let mut got = sut.copied(name);
    got.retain(|p, _| !p.ends_with(".smolvm-cp-tmp"));
    assert_eq!(
        got, want,
        "{name}: the copied files are the sources' (and the forgotten ones, as left)"
    );
}

/// The paths each operation wrote anew under the copy destinations
/// (sent) are those the model says, and so are the prune commands and
/// the single-file `cp`s: bottle sends only what changed.
fn check_sent(
    sut: &Sut,
    before: &BTreeMap<&str, Before>,
    op: &Op,
    model: &Model,
    calls: &[Vec<String>],
) {
    for name in NAMES {
        let now = sut.inodes(name);
        let sent: BTreeSet<String> = now
            .into_iter()
            .filter(|(p, ino)| before[name].inodes.get(p) != Some(ino))
            .map(|(p, _)| p)
            .collect();
        // What was sent to a machine a teardown then deleted is gone.
        let kept = |p: &&String| {
            model
                .vms
                .get(name)
                .is_some_and(|m| m.files.contains_key(*p))
        };
        let want: BTreeSet<String> = match op.machine() == Some(name) {
            true => model.sent.iter().filter(kept).cloned().collect(),
            false => BTreeSet::new(),
        };
        assert_eq!(
            sent, want,
            "{op:?}: the paths sent to {name}; calls {calls:#?}"
        );
    }
    let details: Vec<Vec<String>> = calls.iter().filter_map(|c| detail(c)).collect();
    assert_eq!(
        details, model.details,
        "{op:?}: the prune and single-file copy calls"
    );
}

/// A converged machine has its spec's env.
fn check_env(sut: &Sut, name: &str) {
    let world = sut.home().read().expect("world");
    let want: Vec<String> = match name {
        "a" => vec!["X=1".into()],
        _ => Vec::new(),
    };
    assert_eq!(world.machines[name].env, want, "env of {name}");
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
    fn apply_update_down_and_interference_match_the_model(sequential 1..24 => Harness);
}

#[test]
fn an_unchanged_reapply_makes_no_mutating_call() {
    for version in [Version::new(0, 8, 0), Version::new(1, 9, 3)] {
        let spec = SpecA::initial();
        let mut sut = Sut::new(version, &spec);
        for name in NAMES {
            let d = sut.desired(name, 0, &spec);
            let apply = |sut: &Sut| {
                sut.bottle(&[], None, |env| {
                    env.apply(&d, opts(false, Allow::default())).map(drop)
                })
            };
            let (first, _) = apply(&sut);
            assert_eq!(first, Expect::Ok);
            let (again, calls) = apply(&sut);
            assert_eq!(again, Expect::Ok);
            let kinds: Vec<&str> = calls.iter().map(|c| kind(c)).collect();
            assert_eq!(kinds, ["ls"], "{name}");
        }
    }
}

#[test]
fn the_grammar_check_bites() {
    assert!(follows_grammar(&[
        "ls", "pack", "create", "start", "probe", "probe", "upload", "unpack", "exec", "stop",
        "delete"
    ]));
    assert!(follows_grammar(&[
        "ls", "status", "create", "start", "probe", "copy", "exec"
    ]));
    assert!(follows_grammar(&["status", "start", "probe"]));
    assert!(follows_grammar(&[
        "status", "start", "probe", "probe", "status", "probe"
    ]));
    assert!(!follows_grammar(&["status", "create", "status"]));
    assert!(follows_grammar(&["status", "create", "delete"]));
    assert!(!follows_grammar(&[
        "status", "create", "start", "upload", "unpack", "delete", "stop"
    ]));
    assert!(!follows_grammar(&["create"]));
    assert!(!follows_grammar(&["status", "start", "create"]));
    // A new machine has nothing to prune, and unpacks only what it uploaded.
    assert!(!follows_grammar(&[
        "ls", "create", "start", "probe", "prune", "copy"
    ]));
    assert!(!follows_grammar(&[
        "ls", "create", "start", "probe", "copy", "unpack"
    ]));
    assert!(!follows_grammar(&[
        "ls", "create", "start", "probe", "unpack"
    ]));
    // Updates: a restart, the prune, the copies, the steps that have not
    // run; never a teardown.
    assert!(follows_grammar(&["ls", "upload", "unpack", "exec", "exec"]));
    assert!(follows_grammar(&[
        "ls", "prune", "upload", "unpack", "exec"
    ]));
    assert!(follows_grammar(&["ls", "prune", "prune", "copy", "exec"]));
    assert!(follows_grammar(&["ls", "prune", "exec"]));
    assert!(follows_grammar(&["ls", "copy"]));
    assert!(follows_grammar(&["ls", "status", "exec"]));
    assert!(follows_grammar(&[
        "ls", "start", "probe", "status", "probe", "prune", "copy", "exec"
    ]));
    assert!(follows_grammar(&["status", "start"]));
    assert!(!follows_grammar(&["status", "start", "exec"]));
    assert!(!follows_grammar(&["ls", "copy", "copy"]));
    assert!(!follows_grammar(&["ls", "copy", "unpack"]));
    assert!(!follows_grammar(&["ls", "upload", "upload"]));
    assert!(!follows_grammar(&["ls", "upload", "exec"]));
    assert!(!follows_grammar(&["ls", "copy", "prune"]));
    assert!(!follows_grammar(&["ls", "upload", "unpack", "prune"]));
    assert!(!follows_grammar(&["ls", "exec", "prune"]));
    assert!(!follows_grammar(&["ls", "exec", "copy"]));
    assert!(!follows_grammar(&[
        "ls", "start", "probe", "exec", "stop", "delete"
    ]));
    assert!(!follows_grammar(&["ls", "prune", "delete"]));
    assert!(!follows_grammar(&["ls", "exec", "create"]));
}

/// A step whose content already ran on the machine does not run again
/// when the spec names it again after it was changed or removed (README:
/// "A step whose content already ran successfully on this machine is not
/// run again, wherever it now stands in the list").
#[test]
fn a_step_that_ran_does_not_run_again_when_it_comes_back() {
    for version in [Version::new(0, 8, 0), Version::new(1, 9, 3)] {
        let mut spec = SpecA::initial();
        let mut sut = Sut::new(version, &spec);
        let mut apply = |spec: &SpecA| {
            sut.write_spec(spec);
            let d = sut.desired("a", 0, spec);
            let (got, _) = sut.bottle(&[], None, |env| {
                env.apply(&d, opts(false, Allow::default())).map(drop)
            });
            assert_eq!(got, Expect::Ok);
            sut.ran("a")
        };
        assert_eq!(apply(&spec), ["s0"]);
        spec.execs = vec![1];
        assert_eq!(apply(&spec), ["s0", "s1"], "the changed step runs");
        spec.execs = vec![0];
        assert_eq!(apply(&spec), ["s0", "s1"], "s0 ran on this machine");
        spec.execs = vec![0, 1];
        assert_eq!(apply(&spec), ["s0", "s1"], "both ran on this machine");
    }
}

/// Apply `a` as `spec` says (written to disk first) with `faults`:
/// what came of it, and what the guest holds at `path` then.
fn apply_a(sut: &mut Sut, spec: &SpecA, faults: &[&str], path: &str) -> (Expect, Option<String>) {
    sut.write_spec(spec);
    let d = sut.desired("a", 0, spec);
    let (got, _) = sut.bottle(faults, None, |env| {
        env.apply(&d, opts(false, Allow::default())).map(drop)
    });
    (got, sut.guest_file("a", path))
}

/// Regression test: a path a failed transfer pruned is sent again when
/// it comes back. An update's prune removes `/w/x` (its source was
/// deleted), then the same transfer fails (`cp`). The record marked
/// `/w/x` `removing` before the prune ran, so once the source has `d/x` back with
/// the content it had, the next apply sends it (bottle used to take it
/// for unchanged, send only `f1`, and leave the guest without `/w/x`).
#[test]
fn a_path_pruned_by_a_failed_transfer_is_sent_when_it_comes_back() {
    for version in [Version::new(0, 8, 0), Version::new(1, 9, 3)] {
        let mut spec = SpecA::initial();
        let mut sut = Sut::new(version.clone(), &spec);
        let x = Some(content("d/x", 0));
        assert_eq!(
            apply_a(&mut sut, &spec, &[], "/w/x"),
            (Expect::Ok, x.clone())
        );
        spec.src.remove("d/x");
        spec.src.insert("f1", 1);
        let failed = Expect::StepFailed { in_place: true };
        let got = apply_a(&mut sut, &spec, &["cp"], "/w/x");
        assert_eq!(got, (failed, None), "{version}");
        spec.src.insert("d/x", 0);
        assert_eq!(
            apply_a(&mut sut, &spec, &[], "/w/x"),
            (Expect::Ok, x),
            "{version}: d/x is back, and must be in the guest"
        );
    }
}

/// Regression test: a prune removes the directories it empties that no
/// copy needs, so a file can take their place by itself. A prune removes
/// `/w/sub/y`, then `/w/sub`. When a file then takes its place and is the
/// one file sent, by `cp --mode` (smolvm 1.9), nothing is in its way (the
/// directory used to be left, and the upload could not replace it).
#[test]
fn a_file_takes_the_place_of_a_directory_a_prune_emptied() {
    let mut spec = SpecA::initial();
    let mut sut = Sut::new(Version::new(1, 9, 3), &spec);
    assert_eq!(apply_a(&mut sut, &spec, &[], "/w/sub").0, Expect::Ok);
    spec.src.remove("d/sub/y");
    assert_eq!(apply_a(&mut sut, &spec, &[], "/w/sub").0, Expect::Ok);
    assert!(
        !sut.home().guest("a").join("w/sub").exists(),
        "the directory the prune emptied is gone"
    );
    spec.src.insert(SUB_FILE, 0);
    assert_eq!(
        apply_a(&mut sut, &spec, &[], "/w/sub"),
        (Expect::Ok, Some(content(SUB_FILE, 0)))
    );
}

/// Regression test: a transfer that removed a directory and then failed
/// completes when applied again. The directory `d/sub` becomes a file: the
/// prune removes `/w/sub/y`, then the directory `/w/sub`, and the upload
/// fails (`cp`). The record marked `/w/sub/y` `removing` before the prune
/// ran, so the next apply prunes again, which does no harm (it used to
/// fail at `rmdir -- /w/sub`, on every retry), and sends the file.
#[test]
fn a_transfer_that_cleared_a_directory_completes_when_applied_again() {
    for version in [Version::new(0, 8, 0), Version::new(1, 9, 3)] {
        let (spec, mut sut) = applied_then_sub_becomes_a_file(&version);
        let failed = Expect::StepFailed { in_place: true };
        assert_eq!(apply_a(&mut sut, &spec, &["cp"], "/w/sub"), (failed, None));
        assert_eq!(
            apply_a(&mut sut, &spec, &[], "/w/sub"),
            (Expect::Ok, Some(content(SUB_FILE, 0))),
            "{version}"
        );
    }
}

/// Apply `a` as `spec` says (written to disk first), bottle dying when
/// about to make its call number `at` (from 0) of this apply.
fn crash_a(sut: &mut Sut, spec: &SpecA, at: usize) -> Expect {
    quiet_crashes();
    sut.write_spec(spec);
    let d = sut.desired("a", 0, spec);
    let (got, _) = sut.bottle(&[], Some(at), |env| {
        env.apply(&d, opts(false, Allow::default())).map(drop)
    });
    got
}

/// `d/x` is deleted from its source, and the update's prune fails
/// (`exec`: its `rm -f -- /w/x` never ran). The record marked `/w/x`
/// `removing` before the prune ran, so the next apply, with nothing
/// failing, removes it. (Were it forgotten instead, that apply would find
/// nothing to do and succeed with `/w/x` still in the guest, for good.)
#[test]
fn a_file_deleted_from_a_source_is_gone_after_a_failed_prune_is_retried() {
    for version in [Version::new(0, 8, 0), Version::new(1, 9, 3)] {
        let mut spec = SpecA::initial();
        let mut sut = Sut::new(version.clone(), &spec);
        let x = Some(content("d/x", 0));
        assert_eq!(
            apply_a(&mut sut, &spec, &[], "/w/x"),
            (Expect::Ok, x.clone())
        );
        spec.src.remove("d/x");
        let failed = Expect::StepFailed { in_place: true };
        assert_eq!(apply_a(&mut sut, &spec, &["exec"], "/w/x"), (failed, x));
        assert_eq!(
            apply_a(&mut sut, &spec, &[], "/w/x"),
            (Expect::Ok, None),
            "{version}: d/x was deleted from its source"
        );
    }
}

/// Machine `a` applied on `version`, then its spec's directory `d/sub`
/// made a file.
fn applied_then_sub_becomes_a_file(version: &Version) -> (SpecA, Sut) {
    let mut spec = SpecA::initial();
    let mut sut = Sut::new(version.clone(), &spec);
    assert_eq!(apply_a(&mut sut, &spec, &[], "/w/sub").0, Expect::Ok);
    spec.src.remove("d/sub/y");
    spec.src.insert(SUB_FILE, 0);
    (spec, sut)
}

/// The directory `d/sub` becomes a file, and the update's prune fails
/// (`exec`: its `rm -f -- /w/sub/y` never ran). The record marked
/// `/w/sub/y` `removing`, so the next prune removes it and the directory
/// `/w/sub` that holds it, and the file takes its place. (Were it
/// forgotten, no later prune would remove them, and every later apply
/// would fail sending the file `/w/sub`.)
#[test]
fn a_directory_becomes_a_file_after_a_failed_prune_is_retried() {
    for version in [Version::new(0, 8, 0), Version::new(1, 9, 3)] {
        let (spec, mut sut) = applied_then_sub_becomes_a_file(&version);
        let failed = Expect::StepFailed { in_place: true };
        assert_eq!(
            apply_a(&mut sut, &spec, &["exec"], "/w/sub"),
            (failed, None)
        );
        assert_eq!(
            apply_a(&mut sut, &spec, &[], "/w/sub"),
            (Expect::Ok, Some(content(SUB_FILE, 0))),
            "{version}"
        );
    }
}

/// The directory `d/sub` becomes a file, and bottle dies after the
/// prune's `rm -f -- /w/sub/y`, about to make its `rmdir` call (call 2,
/// after `ls` and the `rm`). The record still has `/w/sub/y` as
/// `removing`, so the next prune removes the empty directory `/w/sub`
/// too, and the one file sent, by `cp --mode` on smolvm 1.9, takes its
/// place. (Were it forgotten, every later apply would fail there; on 0.8
/// the archive's `tar -x` would replace the empty directory.)
#[test]
fn a_directory_becomes_a_file_after_a_crash_between_rm_and_rmdir() {
    for version in [Version::new(0, 8, 0), Version::new(1, 9, 3)] {
        let (spec, mut sut) = applied_then_sub_becomes_a_file(&version);
        assert_eq!(crash_a(&mut sut, &spec, 2), Expect::Crashed);
        let sub = sut.home().guest("a").join("w/sub");
        assert!(
            sub.is_dir() && !sub.join("y").exists(),
            "{version}: between the two"
        );
        assert_eq!(
            apply_a(&mut sut, &spec, &[], "/w/sub"),
            (Expect::Ok, Some(content(SUB_FILE, 0))),
            "{version}"
        );
    }
}
