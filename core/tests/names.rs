//! Issue 10 item 7: a device name that would mislead a person (a bidi override that
//! reverses what follows it, a zero-width character that makes a second "alice", a
//! look-alike space) is refused in the handshake itself. The peer that sends one never gets
//! its name in front of the other user, and never pairs: the message carrying it is
//! malformed (docs/PROTOCOL.md, `name`), which ends that attempt only.

use paircode_core::testing::{device, Pair};
use paircode_core::{Action, Config, DeviceInfo, LocalDevice};

/// The device of `seed` (its identity from `device`) under a name that skips the validity
/// check, as an attacker's own build would send it.
fn named(seed: u64, name: &str) -> LocalDevice {
    LocalDevice {
        peer: device(seed, "attacker").peer,
        info: DeviceInfo { name: name.into() },
    }
}

fn asks_about_a_name(actions: &[Action]) -> bool {
    actions.iter().any(|a| {
        matches!(
            a,
            Action::Progress(paircode_core::Progress::Verified { .. })
                | Action::Confirm { .. }
                | Action::Completed(_)
        )
    })
}

/// Both sides auto-accept, so that nothing but the name check stands between the name and
/// the other side's list (without it the joiner's own question would stop the run first).
fn run(alice: LocalDevice, bob: LocalDevice) -> Pair {
    let cfg = Config {
        auto_accept: true,
        ..Config::default()
    };
    let mut pair = Pair::new(cfg.clone());
    let code = pair.code.clone();
    let rng = pair.rng.clone();
    pair = Pair::with(cfg, alice, bob, code, rng);
    pair.joiner_discovers_initiator();
    pair.drive();
    pair
}

/// "bob" + U+202E + "enohp" shows as "bobphone" (the override reverses the rest).
const REVERSED: &str = "bob\u{202E}enohp";
/// "alice" with a zero-width space inside: a second "alice" that looks like the first.
const ZERO_WIDTH: &str = "ali\u{200B}ce";

#[test]
fn a_joiner_named_with_a_bidi_override_is_never_shown_to_the_initiator() {
    let pair = run(device(1, "alice"), named(2, REVERSED));
    assert!(!asks_about_a_name(&pair.initiator_actions));
    assert!(pair.initiator_completed().is_none());
    assert!(pair.joiner_completed().is_none());
}

#[test]
fn an_initiator_named_with_a_zero_width_space_is_never_shown_to_the_joiner() {
    let pair = run(named(1, ZERO_WIDTH), device(2, "bob"));
    assert!(!asks_about_a_name(&pair.joiner_actions));
    assert!(pair.joiner_completed().is_none());
    assert!(pair.initiator_completed().is_none());
}

#[test]
fn look_alike_spaces_and_edge_spaces_are_refused_too() {
    for name in ["bob\u{00A0}phone", "bob\u{2028}phone", " bob", "bob "] {
        let pair = run(device(1, "alice"), named(2, name));
        assert!(!asks_about_a_name(&pair.initiator_actions), "{name:?}");
        assert!(pair.initiator_completed().is_none(), "{name:?}");
    }
}

#[test]
fn an_ordinary_name_still_pairs() {
    let pair = run(device(1, "alice"), named(2, "Bob's phone"));
    assert_eq!(
        pair.initiator_completed().map(|d| d.info.name.as_str()),
        Some("Bob's phone")
    );
}
