//! Targeted attacks, each run through the simulator with every invariant checked after
//! every step, plus what each attack specifically must (not) achieve.

use std::time::{Duration, Instant};

use paircode_core::messages::{Done, Message, Outcome, RejectReason};
use paircode_core::FailReason;
use paircode_sim::attacker::{MitmMode, ProveStrategy};
use paircode_sim::net::NetConfig;
use paircode_sim::node::{ConfirmPolicy, Node};
use paircode_sim::record::Recorded;
use paircode_sim::scenario::{AttackerSpec, Scenario, World};

/// Messages of this kind that `node` sent to `to`.
fn sent(node: &Node, to: &Node, kind: &str) -> usize {
    node.log
        .iter()
        .filter(|e| match &e.action {
            Recorded::Send { to: peer, bytes } => {
                *peer == to.local.peer && Message::decode(bytes).is_ok_and(|m| m.kind() == kind)
            }
            _ => false,
        })
        .count()
}

fn rejections(node: &Node, reason: RejectReason) -> usize {
    node.log
        .iter()
        .filter(|e| match &e.action {
            Recorded::Send { bytes, .. } => {
                matches!(Message::decode(bytes), Ok(Message::Done(Done { outcome: Outcome::Rejected(r), .. })) if r == reason)
            }
            _ => false,
        })
        .count()
}

fn asked_or_verified(node: &Node) -> bool {
    node.log.iter().any(|e| {
        matches!(
            e.action,
            Recorded::Confirm { .. } | Recorded::Progress(paircode_core::Progress::Verified { .. })
        )
    })
}

fn lossy() -> NetConfig {
    NetConfig {
        latency: (Duration::from_millis(5), Duration::from_millis(200)),
        loss: 0.1,
        duplicate: 0.0,
        reorder: 0.2,
        reorder_delay: Duration::from_millis(500),
        ..NetConfig::perfect()
    }
}

/// Alice and Bob cannot reach each other; the attacker relays between them under its own
/// PeerId, forwarding verbatim or rewriting keys, names or MACs. It is the only path, and
/// it has everything but the code.
#[test]
fn a_relay_without_the_code_completes_nothing() {
    let modes = [
        MitmMode::Verbatim,
        MitmMode::OwnEphemeral,
        MitmMode::OwnInfo,
        MitmMode::ReflectMac,
    ];
    for (i, mode) in modes.into_iter().enumerate() {
        for (net, policy) in [
            (NetConfig::perfect(), ConfirmPolicy::AutoAccept),
            (
                lossy(),
                ConfirmPolicy::Accept {
                    after: Duration::from_secs(1),
                },
            ),
        ] {
            let scenario = Scenario {
                partition: true,
                net,
                confirm: policy,
                attackers: vec![AttackerSpec::Mitm { mode, budget: 1000 }],
                ..Scenario::honest(100 + i as u64)
            };
            let mut world = scenario.build(Instant::now());
            world
                .run_checked()
                .unwrap_or_else(|v| panic!("{mode:?}: {v}"));
            let sim = &world.sim;
            let (alice, bob) = (sim.node(world.alice), sim.node(world.bob));
            let mitm = sim.node(world.adversaries[0]);
            // The relay really stood in the middle, both ways.
            assert!(
                sent(mitm, alice, "Join") > 0,
                "{mode:?}: nothing relayed to alice"
            );
            assert!(
                sent(alice, mitm, "Challenge") > 0,
                "{mode:?}: alice never answered"
            );
            assert!(
                sent(mitm, bob, "Challenge") > 0,
                "{mode:?}: nothing relayed to bob"
            );
            let direct = ["Challenge", "Done"]
                .iter()
                .map(|k| sent(alice, bob, k))
                .sum::<usize>();
            assert_eq!(direct, 0, "{mode:?}: alice answered bob directly");
            // Nobody completed, and nobody was even believed.
            assert!(
                alice.completed().is_none() && bob.completed().is_none(),
                "{mode:?}"
            );
            assert!(
                !asked_or_verified(alice) && !asked_or_verified(bob),
                "{mode:?}"
            );
            assert_eq!(
                sent(bob, mitm, "Prove"),
                0,
                "{mode:?}: bob believed the relay"
            );
            assert!(matches!(alice.failed(), Some((_, FailReason::CodeExpired))));
            assert!(matches!(
                bob.failed(),
                Some((_, FailReason::NoDeviceAnswered))
            ));
            if mode == MitmMode::ReflectMac {
                assert!(rejections(alice, RejectReason::BadProof) > 0);
            }
        }
    }
}

/// The same relay when Alice and Bob can also reach each other: the honest pairing goes
/// through around it, with the real PeerIds.
#[test]
fn a_relay_beside_the_real_path_does_not_get_in_the_way() {
    for (i, mode) in [MitmMode::Verbatim, MitmMode::OwnEphemeral]
        .into_iter()
        .enumerate()
    {
        let scenario = Scenario {
            net: lossy(),
            attackers: vec![AttackerSpec::Mitm { mode, budget: 1000 }],
            ..Scenario::honest(200 + i as u64)
        };
        let mut world = scenario.build(Instant::now());
        world
            .run_checked()
            .unwrap_or_else(|v| panic!("{mode:?}: {v}"));
        let (alice, bob) = (world.sim.node(world.alice), world.sim.node(world.bob));
        assert_eq!(
            alice.completed().expect("alice paired").1.peer,
            bob.local.peer
        );
        assert_eq!(
            bob.completed().expect("bob paired").1.peer,
            alice.local.peer
        );
    }
}

/// 1000 joiners with valid codes that are not Alice's (half of them one bit away from it)
/// knock on Alice while Bob pairs. They reach only Alice: see regressions.rs for what they
/// do to Bob when he can see them too (core bug 5).
#[test]
fn a_thousand_wrong_codes_do_not_stop_the_real_joiner() {
    let scenario = Scenario {
        net: lossy(),
        confirm: ConfirmPolicy::AutoAccept,
        bob_start: Duration::from_secs(1),
        attackers: vec![
            AttackerSpec::WrongCode {
                count: 500,
                near_miss: false,
            },
            AttackerSpec::WrongCode {
                count: 500,
                near_miss: true,
            },
        ],
        ..Scenario::honest(300)
    };
    let mut world = scenario.build(Instant::now());
    for &adversary in &world.adversaries {
        world.sim.confine(adversary, [world.alice]);
    }
    let (alice, bob) = (world.alice, world.bob);
    world
        .run_checked_until(|sim| {
            World::paired(sim, alice, bob)
                && sim.now() > sim.clock().base() + Duration::from_secs(4)
        })
        .unwrap_or_else(|v| panic!("{v}"));
    let (alice, bob) = (world.sim.node(alice), world.sim.node(bob));
    assert_eq!(
        alice.completed().expect("alice paired").1.peer,
        bob.local.peer
    );
    assert_eq!(
        bob.completed().expect("bob paired").1.peer,
        alice.local.peer
    );
    // Every wrong code was turned away at the door, none got a Challenge.
    assert!(rejections(alice, RejectReason::NoSession) >= 1000);
    let challenged = world
        .adversaries
        .iter()
        .map(|&n| sent(alice, world.sim.node(n), "Challenge"))
        .sum::<usize>();
    assert_eq!(challenged, 0);
}

/// 1000 attackers that know the public discovery id but not the auth key: each Join is
/// answered (Alice spends a Challenge on it, but keeps nothing), each Prove fails. Bob
/// still pairs.
#[test]
fn a_thousand_attackers_with_the_discovery_id_do_not_stop_the_real_joiner() {
    let attackers = ProveStrategy::ALL
        .into_iter()
        .map(|strategy| AttackerSpec::Probers {
            count: 200,
            strategy,
            attempts: 3,
            start_within: Duration::from_secs(4),
        })
        .collect();
    let scenario = Scenario {
        net: lossy(),
        confirm: ConfirmPolicy::AutoAccept,
        bob_start: Duration::from_secs(1),
        attackers,
        ..Scenario::honest(400)
    };
    let mut world = scenario.build(Instant::now());
    for &adversary in &world.adversaries {
        world.sim.confine(adversary, [world.alice]);
    }
    let (alice, bob) = (world.alice, world.bob);
    world
        .run_checked_until(|sim| {
            World::paired(sim, alice, bob)
                && sim.now() > sim.clock().base() + Duration::from_secs(6)
        })
        .unwrap_or_else(|v| panic!("{v}"));
    let (alice, bob) = (world.sim.node(alice), world.sim.node(bob));
    assert_eq!(
        alice.completed().expect("alice paired").1.peer,
        bob.local.peer
    );
    assert_eq!(
        bob.completed().expect("bob paired").1.peer,
        alice.local.peer
    );
    let challenged = world
        .adversaries
        .iter()
        .filter(|&&n| sent(alice, world.sim.node(n), "Challenge") > 0)
        .count();
    let answered = world
        .adversaries
        .iter()
        .filter(|&&n| {
            let n = world.sim.node(n);
            ["Challenge", "Done"].iter().any(|k| sent(alice, n, k) > 0)
        })
        .count();
    let bad = rejections(alice, RejectReason::BadProof);
    let none = rejections(alice, RejectReason::NoSession);
    // Nothing is evicted any more (the Challenge is stateless): attempts before Bob's
    // proof get a Challenge and fail on the MAC, later ones hear "busy" or "no session".
    // Either way the flood really reached Alice.
    assert!(
        challenged > 200,
        "only {challenged} attackers got a challenge"
    );
    assert!(answered > 900, "only {answered} attackers got an answer");
    assert!(bad > 100, "bad proofs {bad}");
    assert!(none > 0);
    let verified: Vec<_> = alice
        .log
        .iter()
        .filter_map(|e| match &e.action {
            Recorded::Progress(paircode_core::Progress::Verified { peer, .. }) => Some(peer),
            _ => None,
        })
        .collect();
    assert_eq!(verified, [&bob.local.peer]);
}

/// The attacker replays traffic recorded in an earlier pairing of the same two devices,
/// and live traffic, to both sides, including whole Join-then-Prove sessions and Done
/// messages. Nothing completes with it; the honest pairing still completes.
#[test]
fn replays_across_sessions_complete_nothing() {
    let mut replayed_proofs_refused = 0;
    for seed in 0..80 {
        let scenario = Scenario {
            net: lossy(),
            earlier_session: true,
            attackers: vec![AttackerSpec::Replay { budget: 300 }],
            ..Scenario::honest(500 + seed)
        };
        let mut world = scenario.build(Instant::now());
        world
            .run_checked()
            .unwrap_or_else(|v| panic!("seed {seed}: {v}"));
        let sim = &world.sim;
        let (alice, bob) = (sim.node(world.alice), sim.node(world.bob));
        let replayer = sim.node(world.adversaries[0]);
        assert!(sent(replayer, alice, "Join") + sent(replayer, bob, "Challenge") > 0);
        assert_eq!(
            alice.completed().expect("alice paired").1.peer,
            bob.local.peer
        );
        assert_eq!(
            bob.completed().expect("bob paired").1.peer,
            alice.local.peer
        );
        if sent(alice, replayer, "Challenge") > 0 && sent(replayer, alice, "Prove") > 0 {
            replayed_proofs_refused += 1;
        }
    }
    // In some runs the replayer got a Challenge for Bob's replayed Join and followed up with
    // Bob's recorded Prove: the PeerId in the transcript made it fail.
    assert!(replayed_proofs_refused > 0);
}

/// Replays of an earlier session alone, with Bob absent: the old Joins name another
/// discovery id and are turned away, and Alice is never asked to confirm anything.
#[test]
fn replays_alone_never_reach_the_user() {
    for seed in 0..20 {
        let scenario = Scenario {
            earlier_session: true,
            bob_start: Duration::from_secs(100_000),
            attackers: vec![AttackerSpec::Replay { budget: 400 }],
            ..Scenario::honest(600 + seed)
        };
        let mut world = scenario.build(Instant::now());
        world
            .run_checked()
            .unwrap_or_else(|v| panic!("seed {seed}: {v}"));
        let alice = world.sim.node(world.alice);
        assert!(!asked_or_verified(alice));
        assert!(alice.completed().is_none());
        let replayer = world.sim.node(world.adversaries[0]);
        assert!(sent(replayer, alice, "Join") > 0);
        assert_eq!(sent(alice, replayer, "Challenge"), 0);
    }
}

/// Malformed bytes of every family, to everyone, unprompted and in answer to anything.
#[test]
fn noise_changes_nothing() {
    for seed in 0..20 {
        let scenario = Scenario {
            net: lossy(),
            idle_bystanders: 2,
            busy_bystanders: 1,
            attackers: vec![AttackerSpec::Noise { budget: 300 }],
            ..Scenario::honest(700 + seed)
        };
        let mut world = scenario.build(Instant::now());
        let invariants = world
            .run_checked()
            .unwrap_or_else(|v| panic!("seed {seed}: {v}"));
        assert!(invariants.exercised.malformed > 0);
        let (alice, bob) = (world.sim.node(world.alice), world.sim.node(world.bob));
        assert_eq!(
            alice.completed().expect("alice paired").1.peer,
            bob.local.peer
        );
        assert_eq!(
            bob.completed().expect("bob paired").1.peer,
            alice.local.peer
        );
    }
}
