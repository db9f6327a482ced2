//! What a decision means, in the words progress lines and `plan` use:
//! `update in place: copy /workspace (2 files changed); exec[2] new`,
//! `replacing (changed: image [forces replacement]; …)`.
//!
//! Pure text from a decision; must not decide or print anything.

use crate::plan::{Consent, CopyWork, Decision, ExecWhy, ExecWork, ReplaceReason, Work};
use crate::smolvm::MachineState;

/// `image [forces replacement], copy`: the changed fields, marked where
/// they force a new machine.
pub fn changed_fields(fields: &[crate::spec::Field]) -> String {
    let names: Vec<String> = fields
        .iter()
        .map(|f| match f.forces_replacement() {
            true => format!("{f} [forces replacement]"),
            false => f.to_string(),
        })
        .collect();
    format!("changed: {}", names.join(", "))
}

/// `copy /workspace (2 files changed); exec[2] new`.
pub fn describe_work(work: &Work) -> String {
    let copies = work.copies.iter().map(describe_copy);
    let execs = work.execs.iter().map(|e: &ExecWork| {
        let why = match e.why {
            ExecWhy::New => "new",
            ExecWhy::Rerun => "run again (--rerun-exec)",
        };
        format!("exec[{}] {why}", e.index)
    });
    copies.chain(execs).collect::<Vec<_>>().join("; ")
}

fn describe_copy(c: &CopyWork) -> String {
    let count = |n: usize, what: &str| match n {
        0 => None,
        1 => Some(format!("1 file {what}")),
        n => Some(format!("{n} files {what}")),
    };
    let parts: Vec<String> = [
        count(c.diff.changed, "changed"),
        count(c.diff.added, "added"),
        count(c.diff.removed, "removed"),
        count(
            c.diff.kept,
            "no longer copied, kept in the guest (--no-prune)",
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!("copy {} ({})", c.dest, parts.join(", "))
}

/// A one-line account of a decision.
pub fn describe(d: &Decision) -> String {
    match d {
        Decision::Create {
            stale_record: false,
        } => "creating".into(),
        Decision::Create { stale_record: true } => {
            "creating (bottle's record names it, but the machine is gone)".into()
        }
        Decision::Unchanged => "unchanged".into(),
        Decision::Update { state, work } => match (state, work.is_empty()) {
            (MachineState::Running, true) => {
                "update in place: only bottle's record changes (nothing is sent or run)".into()
            }
            (_, true) => format!("restarting (it is {})", state.as_str()),
            (MachineState::Running, false) => {
                format!("update in place: {}", describe_work(work))
            }
            (_, false) => format!(
                "restarting (it is {}), then update in place: {}",
                state.as_str(),
                describe_work(work)
            ),
        },
        Decision::Replace {
            reason: ReplaceReason::Incomplete,
            ..
        } => "replacing (its last apply did not complete)".into(),
        Decision::Replace {
            reason: ReplaceReason::OtherOwner(owner),
            ..
        } => format!("replacing (--replace: it belonged to {})", owner.display()),
        Decision::Replace {
            reason: ReplaceReason::Changed(fields),
            consent,
            ..
        } => {
            let ask = match consent {
                Consent::NotNeeded | Consent::Given => "",
                Consent::Needed => "; `apply` asks first, or pass --replace",
            };
            format!("replacing ({}{ask})", changed_fields(fields))
        }
        Decision::Unmanaged { state } => {
            format!("not managed by bottle (it is {})", state.as_str())
        }
        Decision::OwnedElsewhere { owner, state } => format!(
            "owned by another spec, {} (it is {})",
            owner.display(),
            state.as_str()
        ),
    }
}
