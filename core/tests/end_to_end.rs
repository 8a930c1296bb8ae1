//! One honest pairing through the public API: the smallest proof that both machines fit
//! together.

use paircode_core::testing::Pair;
use paircode_core::{Action, Config};

#[test]
fn honest_pairing_completes_with_equal_keys() {
    let cfg = Config {
        auto_accept: true,
        ..Config::default()
    };
    let mut pair = Pair::new(cfg);
    let (alice, bob) = (pair.initiator.local().clone(), pair.joiner.local().clone());
    pair.joiner_discovers_initiator();
    pair.drive_until(|p| p.initiator_completed().is_some() && p.joiner_completed().is_some());
    let (on_alice, on_bob) = (
        pair.initiator_completed().expect("alice completed"),
        pair.joiner_completed().expect("bob completed"),
    );
    assert_eq!(on_alice.peer, bob.peer);
    assert_eq!(on_bob.peer, alice.peer);
    assert_eq!(on_alice.info.name, "bob");
    assert_eq!(on_bob.info.name, "alice");
    assert_eq!(on_alice.keys, on_bob.keys);
    // Both sessions are over: no timer of theirs is left (Alice's host only lingers).
    let lingering = pair.initiator.lingering().expect("alice lingers");
    assert_eq!(lingering.poll_timeout(), None);
    assert!(pair.joiner.pairing().is_none());
    assert_eq!(pair.joiner.poll_timeout(), None);
    // Every message went to the other side.
    for (sent, to) in [
        (&pair.initiator_actions, &bob.peer),
        (&pair.joiner_actions, &alice.peer),
    ] {
        for action in sent.iter() {
            if let Action::Send { peer, .. } = action {
                assert_eq!(peer, to);
            }
        }
    }
}
