//! A pairing is acknowledged only once it is durably stored on the side that acknowledges
//! it (issue 10, item 4): Alice's `Done{Accepted}` must not reach Bob before her device
//! saved the pairing, and a save that fails on her side must reach Bob as a rejection.

use paircode_core::messages::{Message, Outcome};
use paircode_core::testing::Pair;
use paircode_core::{Action, Config};

fn auto() -> Config {
    Config {
        auto_accept: true,
        ..Config::default()
    }
}

/// Where in Alice's actions her verdict to Bob was sent.
fn accepted_at(actions: &[Action]) -> Option<usize> {
    actions.iter().position(|a| match a {
        Action::Send { bytes, .. } => matches!(
            Message::decode(bytes),
            Ok(Message::Done(d)) if d.outcome == Outcome::Accepted
        ),
        _ => false,
    })
}

/// The old code sent `Done{Accepted}` first and handed the device to its embedder (which
/// saves it) only afterwards, so a crash or a failed save in between left Bob paired alone.
#[test]
#[ignore = "fails on the old code: Accepted goes out before the embedder has the device"]
fn accepted_only_after_store() {
    let mut pair = Pair::new(auto());
    pair.joiner_discovers_initiator();
    pair.drive();
    let handed_over = pair
        .initiator_actions
        .iter()
        .position(|a| matches!(a, Action::Completed(_)))
        .expect("alice paired");
    let accepted = accepted_at(&pair.initiator_actions).expect("alice accepted");
    assert!(
        handed_over < accepted,
        "Alice acknowledged (action {accepted}) before her embedder could store (action {handed_over})"
    );
}

/// Alice's embedder cannot save the pairing (full disk, say). Bob must not end up paired
/// with a device that has nothing; on the old code he completes regardless.
#[test]
#[ignore = "fails on the old code: Bob completes although Alice never stored the pairing"]
fn initiator_save_failure_rejects_joiner() {
    let mut pair = Pair::new(auto());
    pair.joiner_discovers_initiator();
    pair.drive();
    // Alice's embedder got the device and failed to save it: she has nothing.
    assert!(
        pair.joiner_completed().is_none(),
        "Bob stored a pairing Alice could not save"
    );
}
