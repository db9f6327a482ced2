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

const FULL: [Step; 7] = [
    Step::Pack,
    Step::Create,
    Step::Start,
    Step::WaitReady,
    Step::Copy(0),
    Step::Exec(0),
    Step::Exec(1),
];

fn run(steps: &[Step], rules: Rules, outcomes: &[Outcome]) -> (State, Vec<Phase>) {
    let mut s = State::initial(steps.len());
    let mut seen = vec![s.phase];
    for &o in outcomes {
        if s.is_terminal() {
            break;
        }
        s = next(steps, rules, s, o);
        seen.push(s.phase);
    }
    (s, seen)
}

#[test]
fn all_done_walks_every_step_to_ready() {
    let (s, seen) = run(&FULL, TEARDOWN, &[Outcome::Done; 7]);
    assert_eq!(s.phase, Phase::Ready);
    assert_eq!(seen.len(), 8);
    assert!(s.created && s.started);
}

#[test]
fn failure_before_create_leaves_nothing() {
    let (s, _) = run(&FULL, TEARDOWN, &[Outcome::Failed]);
    assert_eq!(s.phase, Phase::Failed(Cleanup::NothingCreated));
    assert_eq!(s.failed_at, Some(0));
}

#[test]
fn failed_create_is_torn_down_without_stop() {
    let (s, seen) = run(
        &FULL,
        TEARDOWN,
        &[Outcome::Done, Outcome::Failed, Outcome::Done],
    );
    assert_eq!(seen[2], Phase::TearDown(Teardown::Delete));
    assert_eq!(s.phase, Phase::Failed(Cleanup::Removed));
}

#[test]
fn a_taken_name_is_never_torn_down() {
    let (s, _) = run(&FULL, TEARDOWN, &[Outcome::Done, Outcome::NameTaken]);
    assert_eq!(s.phase, Phase::Failed(Cleanup::NothingCreated));
    assert!(!s.created);
}

#[test]
fn failure_after_start_stops_then_deletes() {
    let o = [Outcome::Done, Outcome::Done, Outcome::Done, Outcome::Failed];
    let (_, seen) = run(&FULL, TEARDOWN, &o);
    assert_eq!(seen[4], Phase::TearDown(Teardown::Stop));
    let (s, _) = run(
        &FULL,
        TEARDOWN,
        &[o.as_slice(), &[Outcome::Failed, Outcome::Failed]].concat(),
    );
    assert_eq!(s.phase, Phase::Failed(Cleanup::Left));
    assert_eq!(s.failed_at, Some(3));
}

#[test]
fn keep_on_failure_skips_teardown() {
    let (s, _) = run(
        &FULL,
        KEEP,
        &[Outcome::Done, Outcome::Done, Outcome::Failed],
    );
    assert_eq!(s.phase, Phase::Failed(Cleanup::Kept));
}

#[test]
fn a_restart_plan_never_tears_down() {
    let steps = [Step::Start, Step::WaitReady];
    let (s, _) = run(&steps, TEARDOWN, &[Outcome::Done, Outcome::Failed]);
    assert_eq!(s.phase, Phase::Failed(Cleanup::NothingCreated));
}

#[test]
fn an_empty_plan_is_ready_at_once() {
    assert_eq!(State::initial(0).phase, Phase::Ready);
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Pack),
        Just(Step::StopOld),
        Just(Step::DeleteOld),
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

fn arb_outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Done),
        Just(Outcome::Failed),
        Just(Outcome::NameTaken)
    ]
}

fn arb_rules() -> impl Strategy<Value = Rules> {
    let on_failure = prop_oneof![Just(OnFailure::TearDown), Just(OnFailure::Keep)];
    let delete = prop_oneof![Just(DeleteKind::StopsVm), Just(DeleteKind::LeavesVmRunning)];
    (on_failure, delete).prop_map(|(on_failure, delete)| Rules { on_failure, delete })
}

/// The apply plans the reconciler builds: optional pack, optional replace
/// of an old machine, then create, start, readiness, copies and execs.
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
            v.extend([Step::Create, Step::Start, Step::WaitReady]);
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
            let n = next(&steps, rules, s, o);
            prop_assert!(allowed_successors(&steps, s.phase).contains(&n.phase),
                "{:?} --{:?}--> {:?}", s.phase, o, n.phase);
            s = n;
        }
    }

    /// Whatever fails, teardown happens exactly when this run issued
    /// `create` (and the user did not ask to keep it), stop comes before
    /// delete iff `start` was issued, and a failure is always terminal.
    #[test]
    fn teardown_happens_iff_something_was_created(
        steps in arb_plan(),
        rules in arb_rules(),
        outcomes in proptest::collection::vec(arb_outcome(), 1..24),
    ) {
        let mut s = State::initial(steps.len());
        let mut trace = Vec::new();
        for &o in &outcomes {
            if s.is_terminal() { break; }
            trace.push(s.phase);
            s = next(&steps, rules, s, o);
        }
        let on_failure = rules.on_failure;
        let Phase::Failed(cleanup) = s.phase else { return Ok(()); };
        let failed = s.failed_at.expect("a failure records its step");
        let create_idx = steps.iter().position(|&st| st == Step::Create);
        let start_idx = steps.iter().position(|&st| st == Step::Start);
        let created = create_idx.is_some_and(|c| c < failed
            || (c == failed && outcomes[trace.iter().position(|&p| p == Phase::Run(c)).unwrap()] == Outcome::Failed));
        let started = start_idx.is_some_and(|c| c <= failed);
        let tore_down = trace.contains(&Phase::TearDown(Teardown::Delete))
            || trace.contains(&Phase::TearDown(Teardown::Stop));
        prop_assert_eq!(tore_down, created && on_failure == OnFailure::TearDown);
        prop_assert_eq!(trace.contains(&Phase::TearDown(Teardown::Stop)),
            tore_down && started);
        // Where delete leaves a running VM behind, a failed stop is never
        // followed by a delete.
        if let Some(k) = trace.iter().position(|&p| p == Phase::TearDown(Teardown::Stop)) {
            let stop_failed = outcomes[k] != Outcome::Done;
            let deleted = trace.contains(&Phase::TearDown(Teardown::Delete));
            if rules.delete == DeleteKind::LeavesVmRunning && stop_failed {
                prop_assert!(!deleted);
                prop_assert_eq!(cleanup, Cleanup::Left);
            } else {
                prop_assert!(deleted);
            }
        }
        prop_assert_eq!(cleanup == Cleanup::NothingCreated, !created);
        prop_assert_eq!(cleanup == Cleanup::Kept, created && on_failure == OnFailure::Keep);
    }

    /// Terminal states stay put.
    #[test]
    fn terminal_states_are_absorbing(steps in arb_plan(), o in arb_outcome()) {
        for phase in [Phase::Ready, Phase::Failed(Cleanup::Removed), Phase::Failed(Cleanup::Left)] {
            let s = State { phase, created: true, started: true, failed_at: None };
            prop_assert_eq!(next(&steps, TEARDOWN, s, o), s);
        }
    }
}
