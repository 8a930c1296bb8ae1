//! The simulator routes every input through the `PairingHost` the network driver uses, so
//! what the simulation shows about routing is what ships. Here: a `Prove` repeated after
//! Alice's session ended reaches her lingering initiator, and the bytes she answers in the
//! simulation are, to the byte, those of a host fed the same inputs the way the driver
//! feeds it (`handle_*`, then `poll_action` until `None`; `handle_timeout` when due).

use std::time::{Duration, Instant};

use paircode_core::messages::{Message, Outcome};
use paircode_core::{Action, PairingHost, PeerId};
use paircode_sim::node::ConfirmPolicy;
use paircode_sim::record::Recorded;
use paircode_sim::scenario::{Scenario, World};
use paircode_sim::sim::StepKind;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// One input Alice's host got in the simulation.
enum Input {
    Start(Instant),
    Message(Instant, PeerId, Vec<u8>),
    Timeout(Instant),
    /// Alice's embedder reports the pairing with this peer saved.
    Stored(Instant, PeerId),
}

#[test]
fn a_prove_for_the_lingering_initiator_is_answered_alike_by_simulator_and_driver() {
    let scenario = Scenario {
        confirm: ConfirmPolicy::AutoAccept,
        ..Scenario::honest(11)
    };
    let base = Instant::now();
    let mut world = scenario.build(base);
    let (alice, bob) = (world.alice, world.bob);
    let bob_peer = world.sim.node(bob).local.peer.clone();
    let mut inputs = Vec::new();
    let mut record = |sim: &paircode_sim::sim::Simulator, step: &paircode_sim::sim::StepReport| {
        if step.node != alice {
            return;
        }
        let at = sim.now();
        match (step.kind, &step.delivery) {
            (StepKind::Start, _) => inputs.push(Input::Start(at)),
            (StepKind::Timer, _) => inputs.push(Input::Timeout(at)),
            (StepKind::Store, _) => inputs.push(Input::Stored(at, bob_peer.clone())),
            (StepKind::Deliver, Some(d)) => {
                let from = sim.node(d.from).local.peer.clone();
                let bytes = sim.tap()[d.msg as usize].bytes.clone();
                inputs.push(Input::Message(at, from, bytes));
            }
            (kind, _) => panic!("an initiator with auto-accept got a {kind:?} input"),
        }
    };
    world.sim.run_while(world.horizon, |sim, step| {
        record(sim, step);
        !World::paired(sim, alice, bob)
    });
    assert!(World::paired(&world.sim, alice, bob));
    assert!(world.sim.node(alice).host.session().is_none());
    assert!(world.sim.node(alice).host.lingering().is_some());

    // Bob lost the verdict (say) and proves the code again, well within the lingering.
    let prove = world
        .sim
        .tap()
        .iter()
        .rev()
        .find(|c| c.from == bob_peer && matches!(Message::decode(&c.bytes), Ok(Message::Prove(_))))
        .expect("bob proved the code")
        .bytes
        .clone();
    let replies_before = world.sim.node(alice).log.len();
    world.sim.inject(bob, alice, prove, Duration::from_secs(5));
    let horizon = world.sim.clock().elapsed() + Duration::from_secs(6);
    world.sim.run(horizon, |sim, step| record(sim, step));

    // In the simulation, the lingering initiator said "accepted" again.
    let answered: Vec<&Recorded> = world.sim.node(alice).log[replies_before..]
        .iter()
        .map(|e| &e.action)
        .collect();
    let [Recorded::Send { to, bytes }] = answered.as_slice() else {
        panic!("one reply expected, got {answered:?}");
    };
    assert_eq!(*to, bob_peer);
    let Ok(Message::Done(done)) = Message::decode(bytes) else {
        panic!("a verdict expected");
    };
    assert_eq!(done.outcome, Outcome::Accepted);

    // A host driven as the driver drives it, with the same inputs, sends the same bytes.
    let node = world.sim.node(alice);
    let spec = &node.session().expect("alice runs a session").spec;
    let mut host = PairingHost::new(node.local.clone());
    let mut sent = Vec::new();
    let mut session = None;
    let mut drain = |host: &mut PairingHost| {
        while let Some(action) = host.poll_action() {
            if let Action::Send { peer, bytes } = action {
                sent.push(Recorded::Send { to: peer, bytes });
            }
        }
    };
    for input in &inputs {
        match input {
            Input::Start(at) => {
                let mut rng = ChaCha20Rng::from_seed(spec.seed);
                session = Some(
                    host.start(spec.role, spec.cfg.clone(), &spec.code, *at, &mut rng)
                        .expect("the host is idle"),
                );
            }
            Input::Message(at, from, bytes) => host.handle_message(from, bytes, *at),
            Input::Timeout(at) => host.handle_timeout(*at),
            Input::Stored(at, peer) => {
                let session = session.expect("started before anything was stored");
                host.handle_stored(session, peer, true, *at)
            }
        }
        drain(&mut host);
    }
    let simulated: Vec<&Recorded> = node
        .log
        .iter()
        .map(|e| &e.action)
        .filter(|a| matches!(a, Recorded::Send { .. }))
        .collect();
    assert_eq!(simulated, sent.iter().collect::<Vec<_>>());
    assert_eq!(sent.last(), answered.last().copied());
}
