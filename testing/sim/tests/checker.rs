//! The invariant checker catches what it claims to catch. The core gives it nothing to
//! find, so the violations here are staged by the simulation itself.

use std::time::{Duration, Instant};

use paircode_core::{Config, Role};
use paircode_sim::node::{ConfirmPolicy, Label, SessionSpec};
use paircode_sim::scenario::Scenario;
use paircode_sim::sim::session_brain;

/// A peer run by the attacker that *does* hold the code (it was leaked) pairs with Alice:
/// invariant 2 must flag it, while the same device labelled as a rival is legitimate.
#[test]
fn an_adversary_holding_the_code_is_flagged() {
    for (label, flagged) in [(Label::Adversary, true), (Label::Rival, false)] {
        let scenario = Scenario {
            bob_start: Duration::from_secs(10_000),
            confirm: ConfirmPolicy::AutoAccept,
            ..Scenario::honest(11)
        };
        let mut world = scenario.build(Instant::now());
        let mut rng = paircode_sim::random::stream_rng(99, paircode_sim::random::Stream::Setup);
        let spec = SessionSpec {
            role: Role::Joiner,
            code: world.code.clone(),
            cfg: Config::default(),
            seed: [5; 32],
            start_at: Duration::from_millis(10),
            policy: ConfirmPolicy::AutoAccept,
            store: Default::default(),
        };
        let dev = paircode_sim::ids::synthetic_device(&mut rng, "leaked");
        world.sim.add_node(dev, label, session_brain(spec));
        let result = world.run_checked();
        match (flagged, result) {
            (true, Err(v)) => assert_eq!(v.invariant, 2, "{v}"),
            (false, Ok(_)) => {}
            (_, other) => panic!("{label:?}: {:?}", other.err()),
        }
    }
}

/// An honest device that puts a secret on the wire is caught, whichever secret it is.
#[test]
fn a_secret_on_the_wire_is_flagged() {
    let scenario = Scenario {
        confirm: ConfirmPolicy::AutoAccept,
        ..Scenario::honest(12)
    };
    let world = scenario.build(Instant::now());
    let keys = world.code.keys();
    for secret in [keys.auth_key().to_vec(), world.code.entropy().to_vec()] {
        let mut world = scenario.build(Instant::now());
        let mut leak = b"some framing ".to_vec();
        leak.extend_from_slice(&secret);
        world
            .sim
            .inject(world.alice, world.bob, leak, Duration::from_millis(3));
        let v = world.run_checked().expect_err("a leak");
        assert_eq!(v.invariant, 2, "{v}");
        assert!(v.detail.contains("on the wire"), "{v}");
    }
    // And the session keys, once someone completed.
    let mut world = scenario.build(Instant::now());
    world.run_checked().expect("an honest run");
    let secret = world
        .sim
        .node(world.alice)
        .completed()
        .expect("paired")
        .1
        .keys
        .pairing_secret;
    let mut world = scenario.build(Instant::now());
    world.sim.inject(
        world.bob,
        world.alice,
        secret.to_vec(),
        Duration::from_secs(5),
    );
    let v = world.run_checked().expect_err("a leak");
    assert!(v.detail.contains("pairing secret"), "{v}");
}
