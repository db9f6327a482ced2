//! The decision: desired vs recorded vs observed → what an apply does, and
//! the steps that carry it out.
//!
//! Pure; every combination is matched explicitly.

use super::step::Step;
use crate::smolvm::MachineState;
use crate::spec::{Field, Fingerprint};
use crate::state::{Record, RecordPhase};

/// What smolvm says about the machine's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    Missing,
    Present(MachineState),
}

/// Why a machine bottle owns is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaceReason {
    /// The spec changed in these fields.
    Changed(Vec<Field>),
    /// The apply that created it never completed.
    Incomplete,
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
    /// The machine matches the spec but is not running: start it and wait.
    Restart { state: MachineState },
    /// Delete the machine bottle owns and create it anew.
    Replace {
        reason: ReplaceReason,
        state: MachineState,
    },
    /// A machine bottle has no record of holds the name: refuse.
    Unmanaged { state: MachineState },
}

/// Decide what applying `desired` does.
pub fn decide(desired: &Fingerprint, record: Option<&Record>, observed: &Observed) -> Decision {
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
    let changed = desired.changed(&record.fingerprint);
    match (record.phase, changed.is_empty()) {
        (RecordPhase::Creating | RecordPhase::Failed, _) => Decision::Replace {
            reason: ReplaceReason::Incomplete,
            state,
        },
        (RecordPhase::Complete, false) => Decision::Replace {
            reason: ReplaceReason::Changed(changed),
            state,
        },
        (RecordPhase::Complete, true) => match state {
            MachineState::Running => Decision::Unchanged,
            MachineState::Created
            | MachineState::Stopped
            | MachineState::Unreachable
            | MachineState::Other(_) => Decision::Restart { state },
        },
    }
}

/// Whether a machine in `state` may have a VM process to stop.
fn may_run(state: &MachineState) -> bool {
    match state {
        MachineState::Created | MachineState::Stopped => false,
        MachineState::Running | MachineState::Unreachable | MachineState::Other(_) => true,
    }
}

/// The shape of the spec that decides the steps of a full apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub pack: bool,
    pub secrets: bool,
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
        Decision::Unchanged | Decision::Unmanaged { .. } => return v,
        Decision::Restart { .. } => return vec![Step::Start, Step::WaitReady],
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
    match shape.copy {
        CopyShape::None => {}
        CopyShape::Archive => v.extend([Step::Upload, Step::Unpack]),
        CopyShape::Files(n) => v.extend((0..n).map(Step::Copy)),
    }
    v.extend((0..shape.execs).map(Step::Exec));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(image: &str) -> Fingerprint {
        Fingerprint {
            image: image.into(),
            network: "n".into(),
            env: "e".into(),
            copy: "c".into(),
            exec: "x".into(),
            secrets: String::new(),
        }
    }

    fn record(phase: RecordPhase, image: &str) -> Record {
        Record {
            name: "vm".into(),
            spec_file: "s.toml".into(),
            spec_hash: fp(image).hash(),
            fingerprint: fp(image),
            phase,
            completed: vec![],
            pack: None,
            smolvm_version: crate::smolvm::Version::new(1, 9, 3),
        }
    }

    const RUNNING: Observed = Observed::Present(MachineState::Running);

    #[test]
    fn every_combination_decides() {
        let complete = record(RecordPhase::Complete, "a");
        let creating = record(RecordPhase::Creating, "a");
        let d = |r: Option<&Record>, o: &Observed| decide(&fp("a"), r, o);
        assert_eq!(
            d(None, &Observed::Missing),
            Decision::Create {
                stale_record: false
            }
        );
        assert_eq!(
            d(Some(&complete), &Observed::Missing),
            Decision::Create { stale_record: true }
        );
        assert_eq!(
            d(None, &RUNNING),
            Decision::Unmanaged {
                state: MachineState::Running
            }
        );
        assert_eq!(d(Some(&complete), &RUNNING), Decision::Unchanged);
        let stopped = Observed::Present(MachineState::Stopped);
        assert_eq!(
            d(Some(&complete), &stopped),
            Decision::Restart {
                state: MachineState::Stopped
            }
        );
        assert_eq!(
            d(Some(&creating), &RUNNING),
            Decision::Replace {
                reason: ReplaceReason::Incomplete,
                state: MachineState::Running
            }
        );
        let changed = decide(&fp("b"), Some(&complete), &RUNNING);
        assert_eq!(
            changed,
            Decision::Replace {
                reason: ReplaceReason::Changed(vec![Field::Image]),
                state: MachineState::Running
            }
        );
    }

    #[test]
    fn steps_follow_the_decision() {
        let shape = Shape {
            pack: true,
            secrets: false,
            copy: CopyShape::Files(2),
            execs: 1,
        };
        use Step::*;
        let full = [
            Pack,
            Record,
            Create,
            Start,
            WaitReady,
            Copy(0),
            Copy(1),
            Exec(0),
        ];
        assert_eq!(
            steps(
                &Decision::Create {
                    stale_record: false
                },
                shape
            ),
            full
        );
        assert_eq!(steps(&Decision::Unchanged, shape), []);
        let restart = Decision::Restart {
            state: MachineState::Stopped,
        };
        assert_eq!(steps(&restart, shape), [Start, WaitReady]);
        let replace = |state| Decision::Replace {
            reason: ReplaceReason::Incomplete,
            state,
        };
        assert_eq!(
            steps(&replace(MachineState::Running), shape),
            [
                Pack,
                StopOld,
                DeleteOld,
                Record,
                Create,
                Start,
                WaitReady,
                Copy(0),
                Copy(1),
                Exec(0)
            ]
        );
        let no_pack = Shape {
            pack: false,
            secrets: true,
            copy: CopyShape::None,
            execs: 0,
        };
        assert_eq!(
            steps(&replace(MachineState::Stopped), no_pack),
            [DeleteOld, Record, Create, Start, WaitReady, Secrets]
        );
    }
}
