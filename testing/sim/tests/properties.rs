//! Property tests over generated schedules: every invariant of docs/PROTOCOL.md §6 is checked after
//! every simulation step, and honest pairings on a tame network always finish.
//!
//! Each case is one whole simulation, reproducible from the printed `Scenario` (its seed
//! drives every random choice). Cases default to 2000 per property; `PROPTEST_CASES`
//! overrides that.

use std::time::Instant;

use paircode_sim::node::ConfirmPolicy;
use paircode_sim::scenario::{AttackerSpec, Scenario};
use paircode_sim::schedule::{any_scenario, honest_scenario, proptest_config};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

fn check(scenario: &Scenario) -> Result<(), TestCaseError> {
    let mut world = scenario.build(Instant::now());
    if let Err(violation) = world.run_checked() {
        return Err(TestCaseError::fail(format!("{violation}")));
    }
    Ok(())
}

proptest! {
    #![proptest_config(proptest_config())]

    /// Every schedule without network-level duplication: any latency, loss and reordering,
    /// every attacker behaviour, bystanders, a rival holding the same code, partitions, late
    /// starts, every confirm policy, short and long codes.
    #[test]
    fn every_invariant_holds_after_every_step(scenario in any_scenario(false)) {
        check(&scenario)?;
    }

    /// The same space with the network duplicating messages too.
    #[test]
    fn every_invariant_holds_with_network_duplicates(scenario in any_scenario(true)) {
        check(&scenario)?;
    }

    /// No attacker, loss below 30 %, no duplication, a round trip shorter than the attempt
    /// timeout, and a user who accepts within 20 s: both sides complete, with each other,
    /// before the joiner's own timeout.
    #[test]
    fn honest_pairing_completes_before_the_joiner_times_out(scenario in honest_scenario()) {
        let mut world = scenario.build(Instant::now());
        if let Err(violation) = world.run_checked() {
            return Err(TestCaseError::fail(format!("{violation}")));
        }
        let alice = world.sim.node(world.alice);
        let bob = world.sim.node(world.bob);
        let deadline = scenario.bob_start + scenario.cfg.join_timeout;
        prop_assert_eq!(bob.failed(), None);
        prop_assert_eq!(alice.failed(), None);
        let (alice_at, on_alice) = alice.completed().expect("alice completed");
        let (bob_at, on_bob) = bob.completed().expect("bob completed");
        prop_assert!(bob_at < deadline, "bob completed at {:?}, after {:?}", bob_at, deadline);
        prop_assert!(alice_at < deadline, "alice completed at {:?}, after {:?}", alice_at, deadline);
        prop_assert_eq!(&on_alice.peer, &bob.local.peer);
        prop_assert_eq!(&on_bob.peer, &alice.local.peer);
        prop_assert_eq!(&on_alice.keys, &on_bob.keys);
    }
}

/// The generated schedules really exercise what the invariants are about: pairings that
/// complete, codes that expire, relays, malformed, duplicated and out-of-order input reaching
/// live sessions. Without this, a property could pass because nothing ever happened.
#[test]
fn generated_schedules_exercise_every_invariant() {
    let mut runner = TestRunner::deterministic();
    let (mut total, mut paired, mut expired, mut attacked) = (0u32, 0u32, 0u32, 0u32);
    let mut exercised = paircode_sim::invariants::Exercised::default();
    for duplicates in [false, true] {
        let strategy = any_scenario(duplicates);
        for _ in 0..150 {
            let scenario = strategy
                .new_tree(&mut runner)
                .expect("a scenario")
                .current();
            let mut world = scenario.build(Instant::now());
            let invariants = world
                .run_checked()
                .unwrap_or_else(|v| panic!("{v}\n{scenario:?}"));
            total += 1;
            let e = invariants.exercised;
            exercised.malformed += e.malformed;
            exercised.network_duplicates += e.network_duplicates;
            exercised.out_of_order += e.out_of_order;
            let alice = world.sim.node(world.alice);
            if alice.completed().is_some() {
                paired += 1;
            }
            if matches!(
                alice.failed(),
                Some((_, paircode_core::FailReason::CodeExpired))
            ) {
                expired += 1;
            }
            if !scenario.attackers.is_empty() {
                attacked += 1;
                if scenario.confirm == ConfirmPolicy::Never {
                    assert!(alice.completed().is_none());
                }
            }
        }
    }
    // A floor on coverage, not a success rate: most schedules are built to fail (wrong
    // codes, attackers, users who never confirm, partitions). 62 of 300 paired when the
    // first lookup always waited 50 ms, 60 since a joiner with no peer at hand looks up
    // at once (its lookup can come before the initiator's record, as it may in reality).
    assert!(
        paired * 6 > total,
        "only {paired} of {total} schedules paired"
    );
    assert!(
        expired * 10 > total,
        "only {expired} of {total} codes expired"
    );
    assert!(
        attacked * 3 > total,
        "only {attacked} of {total} were attacked"
    );
    assert!(exercised.malformed > 100, "{exercised:?}");
    assert!(exercised.out_of_order > 100, "{exercised:?}");
    assert!(exercised.network_duplicates > 20, "{exercised:?}");
    // Every attacker kind is generated.
    let kinds = (0..500)
        .filter_map(|_| any_scenario(false).new_tree(&mut runner).ok())
        .flat_map(|t| t.current().attackers)
        .fold([false; 5], |mut seen, a| {
            seen[match a {
                AttackerSpec::Noise { .. } => 0,
                AttackerSpec::Replay { .. } => 1,
                AttackerSpec::Mitm { .. } => 2,
                AttackerSpec::Probers { .. } => 3,
                AttackerSpec::WrongCode { .. } => 4,
            }] = true;
            seen
        });
    assert_eq!(kinds, [true; 5]);
}
