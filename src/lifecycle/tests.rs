use proptest::prelude::*;

use super::*;

const TEARDOWN: Rules = Rules {
    on_failure: OnFailure::TearDown,
    delete: DeleteKind::StopsVm,
};
const KEEP: Rules = Rules {
    on_failure: OnFailure::Keep,
    delete: DeleteKind::StopsVm,
};
const OLD: Rules = Rules {
    on_failure: OnFailure::TearDown,
    delete: DeleteKind::LeavesVmRunning,
};

const FULL: [Step; 8] = [
    Step::Pack,
    Step::Record,
    Step::Create,
    Step::Start,
    Step::WaitReady,
    Step::Copy(0),
    Step::Exec(0),
    Step::Exec(1),
];

/// An outcome whose error names the call that failed.
type O = Outcome<&'static str>;
const DONE: O = Outcome::Done;
const FAIL: O = Outcome::Failed("boom");

fn run_from(
    mut s: State<&'static str>,
    steps: &[Step],
    rules: Rules,
    outcomes: &[O],
) -> (State<&'static str>, Vec<Phase>) {
    let mut seen = vec![s.phase];
    for &o in outcomes {
        if matches!(s.phase, Phase::Ended(_)) {
            break;
        }
        s = next(steps, rules, s, o);
        seen.push(s.phase);
    }
    (s, seen)
}

fn run(steps: &[Step], rules: Rules, outcomes: &[O]) -> (State<&'static str>, Vec<Phase>) {
    run_from(State::initial(steps.len()), steps, rules, outcomes)
}

#[test]
fn all_done_walks_every_step_to_ready() {
    let (s, seen) = run(&FULL, TEARDOWN, &[DONE; 8]);
    assert_eq!(s.phase, Phase::Ended(End::Ready));
    assert_eq!(seen.len(), 9);
    assert!(s.created && s.started && s.failure.is_none());
}

#[test]
fn failure_before_create_leaves_nothing_and_keeps_its_error() {
    let (s, _) = run(&FULL, TEARDOWN, &[Outcome::Failed("no pack")]);
    assert_eq!(s.phase, Phase::Ended(End::NothingCreated));
    assert_eq!(
        s.failure,
        Some(Failed {
            at: 0,
            cause: Failure::Error("no pack")
        })
    );
}

#[test]
fn a_failed_record_means_nothing_was_created() {
    let (s, _) = run(&FULL, TEARDOWN, &[DONE, Outcome::Failed("disk full")]);
    assert_eq!(s.phase, Phase::Ended(End::NothingCreated));
    assert!(!s.created);
    assert_eq!(s.failure.map(|f| f.at), Some(1));
}

#[test]
fn failed_create_is_torn_down_without_stop() {
    let (s, seen) = run(&FULL, TEARDOWN, &[DONE, DONE, FAIL, DONE]);
    assert_eq!(seen[3], Phase::TearDown(Teardown::Delete));
    assert_eq!(s.phase, Phase::Ended(End::Removed));
    assert_eq!(s.failure.map(|f| f.cause), Some(Failure::Error("boom")));
}

#[test]
fn a_taken_name_is_never_torn_down() {
    let (s, _) = run(&FULL, TEARDOWN, &[DONE, DONE, Outcome::NameTaken("taken")]);
    assert_eq!(s.phase, Phase::Ended(End::NothingCreated));
    assert!(!s.created);
    assert_eq!(s.failure.map(|f| f.cause), Some(Failure::Error("taken")));
}

#[test]
fn an_interrupt_is_a_failure_with_its_signal() {
    let (s, seen) = run(
        &FULL,
        TEARDOWN,
        &[DONE, DONE, DONE, Outcome::Interrupted(2)],
    );
    assert_eq!(
        seen[4],
        Phase::TearDown(Teardown::Delete),
        "start never ran"
    );
    assert!(!s.started);
    assert_eq!(
        s.failure,
        Some(Failed {
            at: 3,
            cause: Failure::Interrupted(2)
        })
    );
    let (before_create, _) = run(&FULL, TEARDOWN, &[DONE, DONE, Outcome::Interrupted(15)]);
    assert_eq!(before_create.phase, Phase::Ended(End::NothingCreated));
}

#[test]
fn failure_after_start_stops_then_deletes_and_keeps_teardown_errors() {
    let o = [DONE, DONE, DONE, DONE, FAIL];
    let (_, seen) = run(&FULL, TEARDOWN, &o);
    assert_eq!(seen[5], Phase::TearDown(Teardown::Stop));
    let all = [
        o.as_slice(),
        &[Outcome::Failed("stop"), Outcome::Failed("delete")],
    ]
    .concat();
    let (s, _) = run(&FULL, TEARDOWN, &all);
    assert_eq!(s.phase, Phase::Ended(End::Left));
    assert_eq!(s.failure.map(|f| f.at), Some(4));
    assert_eq!(s.teardown_errors, ["stop", "delete"]);
}

#[test]
fn on_0_8_a_failed_stop_is_not_followed_by_delete() {
    let o = [DONE, DONE, DONE, DONE, FAIL, Outcome::Failed("stop")];
    let (s, seen) = run(&FULL, OLD, &o);
    assert_eq!(s.phase, Phase::Ended(End::Left));
    assert!(!seen.contains(&Phase::TearDown(Teardown::Delete)));
}

#[test]
fn keep_on_failure_skips_teardown() {
    let (s, _) = run(&FULL, KEEP, &[DONE, DONE, DONE, FAIL]);
    assert_eq!(s.phase, Phase::Ended(End::Kept));
}

#[test]
fn a_restart_plan_never_tears_down() {
    let steps = [Step::Start, Step::WaitReady];
    let (s, _) = run(&steps, TEARDOWN, &[DONE, FAIL]);
    assert_eq!(s.phase, Phase::Ended(End::NothingCreated));
}

#[test]
fn an_empty_plan_is_ready_at_once() {
    assert_eq!(State::<()>::initial(0).phase, Phase::Ended(End::Ready));
}

/// `down` and `gc` are teardown runs: the same rules, no failed step.
#[test]
fn teardown_runs_follow_the_same_rules() {
    let (s, seen) = run_from(State::teardown(true), &[], TEARDOWN, &[DONE, DONE]);
    assert_eq!(seen[0], Phase::TearDown(Teardown::Stop));
    assert_eq!(s.phase, Phase::Ended(End::Removed));
    assert!(s.failure.is_none());
    let (s, seen) = run_from(State::teardown(false), &[], TEARDOWN, &[DONE]);
    assert_eq!(seen[0], Phase::TearDown(Teardown::Delete));
    assert_eq!(s.phase, Phase::Ended(End::Removed));
    let (s, _) = run_from(State::teardown(true), &[], TEARDOWN, &[FAIL, DONE]);
    assert_eq!(s.phase, Phase::Ended(End::Removed), "1.x: delete stops it");
    assert_eq!(s.teardown_errors, ["boom"]);
    let (s, seen) = run_from(State::teardown(true), &[], OLD, &[FAIL, DONE]);
    assert_eq!(s.phase, Phase::Ended(End::Left), "0.8: never orphan a VM");
    assert!(!seen.contains(&Phase::TearDown(Teardown::Delete)));
    let (s, _) = run_from(
        State::teardown(false),
        &[],
        OLD,
        &[Outcome::Failed("gone?")],
    );
    assert_eq!(s.phase, Phase::Ended(End::Left));
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Pack),
        Just(Step::StopOld),
        Just(Step::DeleteOld),
        Just(Step::Record),
        Just(Step::Create),
        Just(Step::Start),
        Just(Step::WaitReady),
        Just(Step::Secrets),
        Just(Step::Upload),
        Just(Step::Unpack),
        (0..3usize).prop_map(Step::Copy),
        (0..3usize).prop_map(Step::Exec),
    ]
}

fn arb_outcome() -> impl Strategy<Value = O> {
    prop_oneof![
        Just(DONE),
        Just(FAIL),
        Just(Outcome::NameTaken("taken")),
        Just(Outcome::Interrupted(2)),
    ]
}

fn arb_rules() -> impl Strategy<Value = Rules> {
    let on_failure = prop_oneof![Just(OnFailure::TearDown), Just(OnFailure::Keep)];
    let delete = prop_oneof![Just(DeleteKind::StopsVm), Just(DeleteKind::LeavesVmRunning)];
    (on_failure, delete).prop_map(|(on_failure, delete)| Rules { on_failure, delete })
}

/// The apply plans the reconciler builds: optional pack, optional replace
/// of an old machine, then record, create, start, readiness, copies and
/// execs.
fn arb_plan() -> impl Strategy<Value = Vec<Step>> {
    (any::<bool>(), any::<bool>(), 0..4usize, 0..4usize).prop_map(
        |(pack, replace, copies, execs)| {
            let mut v = Vec::new();
            if pack {
                v.push(Step::Pack);
            }
            if replace {
                v.extend([Step::StopOld, Step::DeleteOld]);
            }
            v.extend([Step::Record, Step::Create, Step::Start, Step::WaitReady]);
            v.extend((0..copies).map(Step::Copy));
            v.extend((0..execs).map(Step::Exec));
            v
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// From every reachable state and every outcome, the next phase is one
    /// the table allows.
    #[test]
    fn every_transition_is_allowed(
        steps in proptest::collection::vec(arb_step(), 0..10),
        rules in arb_rules(),
        outcomes in proptest::collection::vec(arb_outcome(), 0..16),
    ) {
        let mut s = State::initial(steps.len());
        for o in outcomes {
            let from = s.phase;
            let n = next(&steps, rules, s, o);
            prop_assert!(allowed_successors(&steps, from).contains(&n.phase),
                "{:?} --{:?}--> {:?}", from, o, n.phase);
            s = n;
        }
    }

    /// Whatever fails, teardown happens exactly when this run issued
    /// `create` (and the user did not ask to keep it), stop comes before
    /// delete iff `start` was issued, and the failure is kept.
    #[test]
    fn teardown_happens_iff_something_was_created(
        steps in arb_plan(),
        rules in arb_rules(),
        outcomes in proptest::collection::vec(arb_outcome(), 1..24),
    ) {
        let mut s = State::initial(steps.len());
        let mut trace = Vec::new();
        let mut fed = Vec::new();
        for &o in &outcomes {
            if matches!(s.phase, Phase::Ended(_)) { break; }
            trace.push(s.phase);
            fed.push(o);
            s = next(&steps, rules, s, o);
        }
        let on_failure = rules.on_failure;
        let Phase::Ended(end) = s.phase else { return Ok(()); };
        if end == End::Ready { return Ok(()); }
        let failed = s.failure.expect("a failure records its step");
        let at = trace.iter().position(|&p| p == Phase::Run(failed.at)).unwrap();
        prop_assert_eq!(failed.cause, match fed[at] {
            Outcome::Failed(e) | Outcome::NameTaken(e) => Failure::Error(e),
            Outcome::Interrupted(sig) => Failure::Interrupted(sig),
            Outcome::Done => unreachable!(),
        });
        let fed_at = |i: usize| trace.iter().position(|&p| p == Phase::Run(i)).map(|k| fed[k]);
        let create_idx = steps.iter().position(|&st| st == Step::Create);
        let start_idx = steps.iter().position(|&st| st == Step::Start);
        // A create that ran made something, unless the name was taken.
        let created = create_idx.and_then(fed_at)
            .is_some_and(|o| matches!(o, Outcome::Done | Outcome::Failed(_)));
        // A start that ran may have started the VM, however it ended.
        let started = start_idx.and_then(fed_at)
            .is_some_and(|o| !matches!(o, Outcome::Interrupted(_)));
        let tore_down = trace.contains(&Phase::TearDown(Teardown::Delete))
            || trace.contains(&Phase::TearDown(Teardown::Stop));
        prop_assert_eq!(tore_down, created && on_failure == OnFailure::TearDown);
        prop_assert_eq!(trace.contains(&Phase::TearDown(Teardown::Stop)),
            tore_down && started);
        // Where delete leaves a running VM behind, a failed stop is never
        // followed by a delete.
        if let Some(k) = trace.iter().position(|&p| p == Phase::TearDown(Teardown::Stop)) {
            let stop_failed = fed[k] != Outcome::Done;
            let deleted = trace.contains(&Phase::TearDown(Teardown::Delete));
            if rules.delete == DeleteKind::LeavesVmRunning && stop_failed {
                prop_assert!(!deleted);
                prop_assert_eq!(end, End::Left);
            } else {
                prop_assert!(deleted);
            }
        }
        prop_assert_eq!(end == End::NothingCreated, !created);
        prop_assert_eq!(end == End::Kept, created && on_failure == OnFailure::Keep);
    }

    /// Terminal states stay put.
    #[test]
    fn terminal_states_are_absorbing(steps in arb_plan(), o in arb_outcome()) {
        for end in [End::Ready, End::Removed, End::Left, End::Kept, End::NothingCreated] {
            let s = State { phase: Phase::Ended(end), ..State::teardown(true) };
            prop_assert_eq!(next(&steps, TEARDOWN, s.clone(), o), s);
        }
    }
}
