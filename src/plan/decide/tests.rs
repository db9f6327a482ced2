use std::collections::BTreeMap;

use super::*;
use crate::spec::CopyPrint;

const OWNER: &str = "/p/spec.toml";

fn copy(dest: &str, files: &[(&str, &str)]) -> CopyPrint {
    let entries: BTreeMap<String, String> = files
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    CopyPrint::new(dest, entries)
}

fn fp(image: &str) -> Fingerprint {
    Fingerprint {
        image: image.into(),
        network: "n".into(),
        env: "e".into(),
        secrets: String::new(),
        copies: vec![copy("/w", &[("/w/a", "1"), ("/w/b", "2")])],
        execs: vec!["x0".into(), "x1".into()],
    }
}

fn recorded(phase: RecordPhase, applied: Fingerprint) -> Recorded {
    Recorded {
        phase,
        owner: OWNER.into(),
        applied,
    }
}

fn want(f: &Fingerprint) -> Want<'_> {
    Want {
        fingerprint: f,
        owner: Path::new(OWNER),
    }
}

const RUNNING: Observed = Observed::Present(MachineState::Running);
const STOPPED: Observed = Observed::Present(MachineState::Stopped);
const NONE: Allow = Allow {
    keep_removed: false,
    replace: false,
    adopt: false,
    rerun_exec: false,
};

#[test]
fn every_combination_decides() {
    let complete = recorded(RecordPhase::Complete, fp("a"));
    let creating = recorded(RecordPhase::Creating, fp("a"));
    let failed = recorded(RecordPhase::Failed, fp("a"));
    let a = fp("a");
    let d = |r: Option<&Recorded>, o: &Observed| decide(want(&a), r, o, NONE);
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
    assert_eq!(
        d(Some(&complete), &STOPPED),
        Decision::Update {
            state: MachineState::Stopped,
            work: Work::default()
        }
    );
    for incomplete in [&creating, &failed] {
        assert_eq!(
            d(Some(incomplete), &RUNNING),
            Decision::Replace {
                reason: ReplaceReason::Incomplete,
                state: MachineState::Running,
                consent: Consent::NotNeeded
            },
            "an apply that never completed is replaced without asking"
        );
    }
}

#[test]
fn only_a_field_fixed_at_create_replaces_and_only_with_consent() {
    let complete = recorded(RecordPhase::Complete, fp("a"));
    let b = fp("b");
    for replace in [false, true] {
        let allow = Allow { replace, ..NONE };
        assert_eq!(
            decide(want(&b), Some(&complete), &RUNNING, allow),
            Decision::Replace {
                reason: ReplaceReason::Changed(vec![Field::Image]),
                state: MachineState::Running,
                consent: match replace {
                    true => Consent::Given,
                    false => Consent::Needed,
                }
            }
        );
    }
    for (field, edit) in [
        (
            Field::Network,
            (|f: &mut Fingerprint| f.network = "n2".into()) as fn(&mut Fingerprint),
        ),
        (Field::Env, |f| f.env = "e2".into()),
    ] {
        let mut changed = fp("a");
        edit(&mut changed);
        let got = decide(want(&changed), Some(&complete), &STOPPED, NONE);
        assert_eq!(
            got,
            Decision::Replace {
                reason: ReplaceReason::Changed(vec![field]),
                state: MachineState::Stopped,
                consent: Consent::Needed
            }
        );
    }
    let mut with_copy = fp("b");
    with_copy.copies[0] = copy("/w", &[("/w/a", "9")]);
    let got = decide(want(&with_copy), Some(&complete), &RUNNING, NONE);
    let Decision::Replace {
        reason: ReplaceReason::Changed(fields),
        ..
    } = got
    else {
        panic!("{got:?}");
    };
    assert_eq!(
        fields,
        [Field::Image, Field::Copy],
        "every change is listed"
    );
}

fn diff(added: usize, changed: usize, removed: usize, kept: usize) -> CopyDiff {
    CopyDiff {
        added,
        changed,
        removed,
        kept,
    }
}

fn sent_paths(t: &Transfer) -> Vec<(usize, &str)> {
    t.send.iter().map(|(i, p)| (*i, p.as_str())).collect()
}

#[test]
fn copies_and_exec_steps_update_in_place() {
    let complete = recorded(RecordPhase::Complete, fp("a"));
    let mut edited = fp("a");
    edited.copies[0] = copy("/w", &[("/w/a", "1"), ("/w/b", "3"), ("/w/c", "4")]);
    edited.copies.push(copy("/v", &[("/v/x", "5")]));
    edited.execs.push("x2".into());
    edited.secrets = "s2".into();
    let got = decide(want(&edited), Some(&complete), &RUNNING, NONE);
    let Decision::Update { state, work } = got else {
        panic!("{got:?}");
    };
    assert_eq!(state, MachineState::Running);
    let copies = [
        CopyWork {
            dest: "/w".into(),
            diff: diff(1, 1, 0, 0),
        },
        CopyWork {
            dest: "/v".into(),
            diff: diff(1, 0, 0, 0),
        },
    ];
    assert_eq!(work.copies, copies);
    assert_eq!(
        sent_paths(&work.transfer),
        [(0, "/w/b"), (0, "/w/c"), (1, "/v/x")],
        "only what changed, in spec order; /w/a is unchanged"
    );
    assert_eq!(
        work.execs,
        [ExecWork {
            index: 2,
            why: ExecWhy::New
        }]
    );
}

#[test]
fn a_path_gone_from_the_source_is_removed_or_with_no_prune_kept() {
    let complete = recorded(RecordPhase::Complete, fp("a"));
    let mut fewer = fp("a");
    fewer.copies[0] = copy("/w", &[("/w/a", "1")]);
    let work = |allow| match decide(want(&fewer), Some(&complete), &RUNNING, allow) {
        Decision::Update { work, .. } => work,
        other => panic!("{other:?}"),
    };
    let pruned = work(NONE);
    assert_eq!(pruned.transfer.remove, ["/w/b"]);
    assert!(pruned.transfer.send.is_empty());
    assert_eq!(pruned.copies[0].diff, diff(0, 0, 1, 0));
    let keep = Allow {
        keep_removed: true,
        ..NONE
    };
    let kept = work(keep);
    assert!(kept.transfer.send.is_empty() && !kept.transfer.prunes());
    assert_eq!(kept.transfer.kept, ["/w/b"]);
    assert_eq!(kept.copies[0].diff, diff(0, 0, 0, 1));
}

#[test]
fn a_removed_copy_is_pruned_under_its_old_destination() {
    let mut two = fp("a");
    two.copies.push(copy("/v", &[("/v/x", "5")]));
    let complete = recorded(RecordPhase::Complete, two);
    let Decision::Update { work, .. } = decide(want(&fp("a")), Some(&complete), &RUNNING, NONE)
    else {
        panic!("an update");
    };
    assert_eq!(work.transfer.remove, ["/v/x"]);
    assert_eq!(
        work.copies,
        [CopyWork {
            dest: "/v".into(),
            diff: diff(0, 0, 1, 0)
        }]
    );
}

#[test]
fn a_change_that_sends_and_runs_nothing_only_updates_the_record() {
    let complete = recorded(RecordPhase::Complete, fp("a"));
    let mut moved = fp("a");
    moved.secrets = "from a file now".into();
    let mut split = fp("a");
    split.copies = vec![copy("/w", &[("/w/a", "1")]), copy("/w", &[("/w/b", "2")])];
    for want_ in [moved, split] {
        assert_eq!(
            decide(want(&want_), Some(&complete), &RUNNING, NONE),
            Decision::Update {
                state: MachineState::Running,
                work: Work::default()
            }
        );
    }
}

#[test]
fn an_exec_step_runs_once_for_each_content() {
    let mut ran = fp("a");
    ran.execs = vec!["x0".into()];
    let partial = recorded(RecordPhase::Complete, ran);
    let mut want_ = fp("a");
    want_.execs = vec!["y0".into(), "x0".into(), "x1".into()];
    let work = |allow| match decide(want(&want_), Some(&partial), &RUNNING, allow) {
        Decision::Update { work, .. } => work.execs,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        work(NONE),
        [
            ExecWork {
                index: 0,
                why: ExecWhy::New
            },
            ExecWork {
                index: 2,
                why: ExecWhy::New
            }
        ],
        "x0 ran, wherever it is now"
    );
    let rerun = Allow {
        rerun_exec: true,
        ..NONE
    };
    let whys: Vec<ExecWhy> = work(rerun).iter().map(|e| e.why).collect();
    assert_eq!(whys, [ExecWhy::New, ExecWhy::Rerun, ExecWhy::New]);
    let done = recorded(RecordPhase::Complete, fp("a"));
    let again = decide(want(&fp("a")), Some(&done), &RUNNING, rerun);
    let Decision::Update { work, .. } = again else {
        panic!("{again:?}");
    };
    assert_eq!(work.execs.len(), 2);
    assert!(work.copies.is_empty());
}

#[test]
fn a_machine_another_spec_owns_is_refused_adopted_or_replaced() {
    let theirs = Recorded {
        owner: "/other/spec.toml".into(),
        ..recorded(RecordPhase::Complete, fp("a"))
    };
    let a = fp("a");
    assert_eq!(
        decide(want(&a), Some(&theirs), &RUNNING, NONE),
        Decision::OwnedElsewhere {
            owner: "/other/spec.toml".into(),
            state: MachineState::Running
        }
    );
    let adopt = Allow {
        adopt: true,
        ..NONE
    };
    assert_eq!(
        decide(want(&a), Some(&theirs), &RUNNING, adopt),
        Decision::Unchanged
    );
    let replace = Allow {
        replace: true,
        ..NONE
    };
    assert_eq!(
        decide(want(&a), Some(&theirs), &RUNNING, replace),
        Decision::Replace {
            reason: ReplaceReason::OtherOwner("/other/spec.toml".into()),
            state: MachineState::Running,
            consent: Consent::NotNeeded
        }
    );
    let gone = decide(want(&a), Some(&theirs), &Observed::Missing, NONE);
    assert_eq!(gone, Decision::Create { stale_record: true });
}

#[test]
fn what_the_guest_holds_is_compared_path_by_path_whatever_copy_makes_it() {
    let applied = Fingerprint {
        copies: vec![
            copy("/d", &[("/d/f", "A")]),
            copy("/d", &[("/d/g", "B")]),
            copy("/d/sub", &[("/d/sub/x", "C")]),
            copy("/e", &[("/e/y", "D")]),
        ],
        ..fp("a")
    };
    let complete = recorded(RecordPhase::Complete, applied.clone());
    let same = decide(want(&applied), Some(&complete), &RUNNING, NONE);
    assert_eq!(
        same,
        Decision::Unchanged,
        "two copies to one dest are two copies"
    );
    let mut edited = applied.clone();
    edited.copies[0] = copy("/d", &[("/d/f", "A2"), ("/d/sub/x", "early")]);
    let got = decide(want(&edited), Some(&complete), &RUNNING, NONE);
    let Decision::Update { work, .. } = got else {
        panic!("{got:?}");
    };
    assert_eq!(
        sent_paths(&work.transfer),
        [(0, "/d/f")],
        "/d/sub/x stays the later copy's: nothing overwrites it"
    );
    let mut moved = applied.clone();
    moved.copies.swap(2, 3);
    assert_eq!(
        decide(want(&moved), Some(&complete), &RUNNING, NONE),
        Decision::Update {
            state: MachineState::Running,
            work: Work::default()
        },
        "copies that moved in the spec but put the same paths send nothing"
    );
    let mut dropped = applied.clone();
    dropped.copies[2] = copy("/d/sub", &[]);
    dropped.copies[0] = copy("/d", &[("/d/f", "A"), ("/d/sub/x", "base")]);
    let Decision::Update { work, .. } = decide(want(&dropped), Some(&complete), &RUNNING, NONE)
    else {
        panic!("an update");
    };
    assert_eq!(
        sent_paths(&work.transfer),
        [(0, "/d/sub/x")],
        "the earlier copy's file takes the place of the one the later copy dropped"
    );
    assert!(work.transfer.remove.is_empty());
    assert_eq!(
        work.copies,
        [CopyWork {
            dest: "/d".into(),
            diff: diff(0, 1, 0, 0)
        }]
    );
}

#[test]
fn a_step_that_ran_and_left_the_spec_is_no_change_and_does_not_run_again() {
    let mut ran = fp("a");
    ran.execs = vec!["a".into(), "b".into(), "c".into()];
    let done = recorded(RecordPhase::Complete, ran);
    let mut fewer = fp("a");
    fewer.execs = vec!["a".into(), "c".into()];
    assert_eq!(
        decide(want(&fewer), Some(&done), &RUNNING, NONE),
        Decision::Unchanged
    );
    let mut back = fp("a");
    back.execs = vec!["c".into(), "b".into(), "a".into()];
    assert_eq!(
        decide(want(&back), Some(&done), &RUNNING, NONE),
        Decision::Unchanged,
        "reordered: every step ran"
    );
}

#[test]
fn consent_is_needed_only_for_a_changed_field_and_given_by_replace_or_a_yes() {
    let allow = |replace| Allow { replace, ..NONE };
    let changed = ReplaceReason::Changed(vec![Field::Env]);
    assert_eq!(Consent::of(&changed, allow(false)), Consent::Needed);
    assert_eq!(Consent::of(&changed, allow(true)), Consent::Given);
    for r in [
        ReplaceReason::Incomplete,
        ReplaceReason::OtherOwner("/o".into()),
    ] {
        assert_eq!(Consent::of(&r, allow(false)), Consent::NotNeeded);
    }
    let needed = Decision::Replace {
        reason: changed.clone(),
        state: MachineState::Running,
        consent: Consent::Needed,
    };
    assert_eq!(
        needed.consented(),
        Decision::Replace {
            reason: changed,
            state: MachineState::Running,
            consent: Consent::Given
        }
    );
    assert_eq!(Decision::Unchanged.consented(), Decision::Unchanged);
    let kept: Vec<bool> = [
        Decision::Unchanged,
        Decision::Update {
            state: MachineState::Stopped,
            work: Work::default(),
        },
        Decision::Create { stale_record: true },
        Decision::Unmanaged {
            state: MachineState::Running,
        },
    ]
    .iter()
    .map(Decision::keeps_machine)
    .collect();
    assert_eq!(kept, [true, true, false, false]);
}

#[test]
fn only_a_changed_field_needs_consent() {
    assert!(ReplaceReason::Changed(vec![Field::Image]).needs_consent());
    assert!(!ReplaceReason::Incomplete.needs_consent());
    assert!(!ReplaceReason::OtherOwner("/o".into()).needs_consent());
}

fn shape(copy: CopyShape, secrets: bool) -> Shape {
    Shape {
        pack: true,
        secrets,
        prune: false,
        copy,
        execs: 2,
    }
}

#[test]
fn steps_follow_the_decision() {
    use Step::*;
    let s = shape(CopyShape::Files(2), false);
    let full = [
        Pack,
        Record,
        Create,
        Start,
        WaitReady,
        Copy(0),
        Copy(1),
        Exec(0),
        Exec(1),
    ];
    assert_eq!(
        steps(
            &Decision::Create {
                stale_record: false
            },
            s
        ),
        full
    );
    assert_eq!(steps(&Decision::Unchanged, s), []);
    let replace = |state| Decision::Replace {
        reason: ReplaceReason::Incomplete,
        state,
        consent: Consent::NotNeeded,
    };
    assert_eq!(
        steps(&replace(MachineState::Running), s),
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
            Exec(0),
            Exec(1)
        ]
    );
    let no_pack = Shape {
        pack: false,
        secrets: true,
        prune: false,
        copy: CopyShape::None,
        execs: 0,
    };
    assert_eq!(
        steps(&replace(MachineState::Stopped), no_pack),
        [DeleteOld, Record, Create, Start, WaitReady, Secrets]
    );
    let refused = [
        Decision::Unmanaged {
            state: MachineState::Running,
        },
        Decision::OwnedElsewhere {
            owner: "/o".into(),
            state: MachineState::Running,
        },
    ];
    for d in refused {
        assert_eq!(steps(&d, s), [], "{d:?}");
    }
}

#[test]
fn an_update_starts_if_needed_then_sends_and_runs_only_its_work() {
    use Step::*;
    let update = |state, execs: &[usize]| Decision::Update {
        state,
        work: Work {
            copies: Vec::new(),
            transfer: Transfer::default(),
            execs: execs
                .iter()
                .map(|&index| ExecWork {
                    index,
                    why: ExecWhy::New,
                })
                .collect(),
        },
    };
    let archive = shape(CopyShape::Archive, false);
    assert_eq!(
        steps(&update(MachineState::Running, &[1]), archive),
        [Upload, Unpack, Exec(1)],
        "no pack, no create: the machine is kept"
    );
    assert_eq!(
        steps(
            &update(MachineState::Stopped, &[]),
            shape(CopyShape::None, true)
        ),
        [Start, WaitReady],
        "a restart; secret files only for steps that run"
    );
    assert_eq!(
        steps(
            &update(MachineState::Unreachable, &[0]),
            shape(CopyShape::Files(1), true)
        ),
        [Start, WaitReady, Secrets, Copy(0), Exec(0)]
    );
    let pruning = Shape {
        prune: true,
        ..shape(CopyShape::Archive, true)
    };
    assert_eq!(
        steps(&update(MachineState::Running, &[0]), pruning),
        [Secrets, Prune, Upload, Unpack, Exec(0)],
        "removal comes before anything is sent"
    );
    let only_prune = Shape {
        prune: true,
        ..shape(CopyShape::None, false)
    };
    assert_eq!(
        steps(&update(MachineState::Running, &[]), only_prune),
        [Prune]
    );
}
