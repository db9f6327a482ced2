//! The plan: what an apply will do, step by step, with every smolvm call.
//!
//! Owns the reading of a record for a decision ([`recorded`]: what was
//! applied, in the current fingerprint form, and who owns the machine,
//! with the translation of schema-1 records), the decision (`decide`:
//! desired vs recorded vs observed, pure), the
//! egress rule (`egress`, pure), the steps (`step`), for each step its
//! calls (`inputs`), and whether the `create` call fits the kernel's
//! argument limit (`limits`). `bottle plan` prints exactly these calls, the executor
//! runs exactly these calls, and hints are built from the same functions,
//! so what a human is shown is what runs. Pure: it reads no clock, runs no
//! process and writes nothing (it only asks whether a pack is cached).

mod decide;
mod egress;
mod inputs;
mod limits;
mod step;
mod transfer;

use std::path::Path;

use crate::smolvm::{Call, Cli, Version};
use crate::spec::{Desired, Fingerprint, LegacyPrint, MachineName};
use crate::state::Record;

pub(crate) use decide::may_run;
pub use decide::{
    Allow, Consent, CopyShape, CopyWork, Decision, ExecWhy, ExecWork, Observed, Recorded,
    ReplaceReason, Shape, Want, Work, decide, steps,
};
pub use egress::{DnsRule, Egress, Finding, dns, egress, findings};
pub use inputs::{
    Inputs, PackOut, PlanError, SecretDelivery, Staged, StartCalls, Upload, pack_key, secret_path,
    start_calls, teardown_call, teardown_calls, upload_id, with_secrets,
};
pub use limits::check_create;
pub use step::{NotAStep, Step};
pub use transfer::{Placed, REMOVING, Transfer, transfer, view};

/// One apply worked out: the decision, the egress, and the steps with
/// their inputs.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    pub decision: Decision,
    pub egress: Egress,
    pub steps: Vec<Step>,
    pub inputs: Inputs<'a>,
}

/// One step as `bottle plan` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub step: Step,
    pub doing: String,
    pub calls: Vec<Call>,
}

impl<'a> Plan<'a> {
    /// The plan of `decision` for `desired` on this smolvm. `repack` packs
    /// the image even if the cache holds it.
    pub fn new(
        desired: &'a Desired,
        decision: Decision,
        version: &Version,
        cache_dir: &Path,
        repack: bool,
    ) -> Result<Self, PlanError> {
        let transfer = transfer_of(desired, &decision);
        let inputs = Inputs::new(desired, cache_dir, version, transfer)?;
        let steps = steps(&decision, shape(desired, &inputs, repack));
        Ok(Plan {
            egress: egress(&desired.spec, version),
            decision,
            steps,
            inputs,
        })
    }

    pub fn name(&self) -> &'a MachineName {
        self.inputs.name()
    }

    /// The `egress:` line: where the VM may connect and what its DNS
    /// answers.
    pub fn egress_line(&self) -> String {
        egress::line(&self.inputs.desired.spec, self.egress)
    }

    /// The warnings every `plan` and `apply` of this spec prints: an
    /// allow-list this smolvm does not enforce, then each entry that does
    /// not mean what it says.
    pub fn warnings(&self, version: &Version) -> Vec<String> {
        let name = self.name().as_str();
        let findings = findings(&self.inputs.desired.spec);
        let unenforced = self.egress.warning(name, version);
        unenforced
            .into_iter()
            .chain(findings.iter().map(|f| f.warning(name)))
            .collect()
    }

    /// Every step with what it does and its calls, temporary files shown
    /// by name.
    pub fn shown(&self, cli: &Cli) -> Vec<Shown> {
        let staged = Staged::shown(self.inputs.desired);
        self.steps
            .iter()
            .map(|&step| Shown {
                step,
                doing: self.inputs.describe(step),
                calls: self.inputs.calls(cli, step, &staged),
            })
            .collect()
    }

    /// The calls a failure after `create` makes.
    pub fn teardown(&self, cli: &Cli) -> Vec<Call> {
        teardown_calls(cli, self.name())
    }
}

/// What an apply of `decision` sends and removes: every path to a new
/// machine, the update's transfer to a kept one.
fn transfer_of(desired: &Desired, decision: &Decision) -> Transfer {
    match decision {
        Decision::Create { .. } | Decision::Replace { .. } => {
            transfer(&desired.fingerprint.copies, &[], true)
        }
        Decision::Update { work, .. } => work.transfer.clone(),
        Decision::Unchanged | Decision::Unmanaged { .. } | Decision::OwnedElsewhere { .. } => {
            Transfer::default()
        }
    }
}

/// What `record` says was applied, for comparing with `desired`. A record
/// of the first schema holds its fingerprint in the first form: each field
/// that matches `desired`'s first form counts as applied as `desired` now
/// says; the exec steps that ran are the longest first steps of `desired`
/// whose first-form hash matches (the spec may have gained steps since),
/// none if no prefix does; a copy field that does not match counts as
/// nothing sent (every copy is sent), and an image, network or env field
/// that does not keeps a value no spec has.
pub fn applied(record: &Record, desired: &Desired) -> Fingerprint {
    applied_as(record, desired, first_form(record, desired).as_ref())
}

/// The decision's view of `record` for `desired`.
pub fn recorded(record: &Record, desired: &Desired) -> Recorded {
    let first = first_form(record, desired);
    Recorded {
        phase: record.phase,
        owner: owner(record, desired, first.as_ref()),
        applied: applied_as(record, desired, first.as_ref()),
    }
}

/// `desired`'s fingerprint in the first form, computed only for a record
/// of the first schema (it reads the copied files again).
fn first_form(record: &Record, desired: &Desired) -> Option<LegacyPrint> {
    record.legacy.as_ref().and_then(|_| desired.legacy())
}

/// [`applied`], given `desired`'s first form (`None`: it matches nothing).
fn applied_as(record: &Record, desired: &Desired, new: Option<&LegacyPrint>) -> Fingerprint {
    let Some(old) = &record.legacy else {
        return record.fingerprint.clone();
    };
    let now = &desired.fingerprint;
    let same = |field: fn(&LegacyPrint) -> &String| new.is_some_and(|n| field(n) == field(old));
    let keep = |matches: bool, v: &String, old: &String| match matches {
        true => v.clone(),
        false => format!("schema 1: {old}"),
    };
    Fingerprint {
        image: keep(same(|l| &l.image), &now.image, &old.image),
        network: keep(same(|l| &l.network), &now.network, &old.network),
        env: keep(same(|l| &l.env), &now.env, &old.env),
        secrets: keep(same(|l| &l.secrets), &now.secrets, &old.secrets),
        copies: match same(|l| &l.copy) {
            true => now.copies.clone(),
            false => Vec::new(),
        },
        execs: crate::spec::ran_prefix(&desired.spec, &old.exec)
            .map(|k| now.execs[..k].to_vec())
            .unwrap_or_default(),
    }
}

/// The spec file that owns the machine. A schema-1 record named it as the
/// user typed it: `desired`'s file is that owner if its path ends with the
/// recorded one and it still matches the record in every field (`new`, its
/// first form); otherwise the owner is unknown (the recorded text), and
/// `--adopt` decides.
fn owner(record: &Record, desired: &Desired, new: Option<&LegacyPrint>) -> std::path::PathBuf {
    let recorded = &record.spec_file;
    let matches = new.is_some() && record.legacy.as_ref() == new;
    match recorded.is_relative() && matches && desired.owner.ends_with(recorded) {
        true => desired.owner.clone(),
        false => recorded.clone(),
    }
}

fn shape(desired: &Desired, inputs: &Inputs<'_>, repack: bool) -> Shape {
    Shape {
        pack: inputs.pack.as_ref().is_some_and(|p| repack || !p.cached()),
        secrets: inputs.secrets_step(),
        prune: inputs.transfer.prunes(),
        copy: inputs.route,
        execs: desired.spec.execs.len(),
    }
}

#[cfg(test)]
mod tests;
