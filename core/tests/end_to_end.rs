//! One honest pairing, driven by hand: the smallest proof that both machines fit together.

use std::time::{Duration, Instant};

use paircode_core::{Action, Code, Config, DeviceIdentity, DeviceInfo, LocalDevice, Pairing};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn device(seed: u64, name: &str) -> LocalDevice {
    let identity = DeviceIdentity::generate(&mut ChaCha20Rng::seed_from_u64(seed));
    LocalDevice {
        peer: identity.peer_id(),
        info: DeviceInfo::new(name).unwrap(),
    }
}

#[test]
fn honest_pairing_completes_with_equal_keys() {
    let now = Instant::now();
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let code = Code::generate(&mut rng);
    let (alice, bob) = (device(1, "alice"), device(2, "bob"));
    let cfg = Config {
        auto_accept: true,
        ..Config::default()
    };
    let mut a = Pairing::initiator(cfg.clone(), alice.clone(), &code, now, &mut rng);
    let mut b = Pairing::joiner(cfg, bob.clone(), &code, now, &mut rng);
    b.handle_peer(&alice.peer, now);
    let mut done = (None, None);
    for step in 0..10 {
        let t = now + Duration::from_millis(step);
        while let Some(action) = a.poll_action() {
            match action {
                Action::Send { peer, bytes } => {
                    assert_eq!(peer, bob.peer);
                    b.handle_message(&alice.peer, &bytes, t);
                }
                Action::Completed(d) => done.0 = Some(d),
                _ => {}
            }
        }
        while let Some(action) = b.poll_action() {
            match action {
                Action::Send { peer, bytes } => {
                    assert_eq!(peer, alice.peer);
                    a.handle_message(&bob.peer, &bytes, t);
                }
                Action::Completed(d) => done.1 = Some(d),
                _ => {}
            }
        }
    }
    let (on_alice, on_bob) = (
        done.0.expect("alice completed"),
        done.1.expect("bob completed"),
    );
    assert_eq!(on_alice.peer, bob.peer);
    assert_eq!(on_bob.peer, alice.peer);
    assert_eq!(on_alice.info.name, "bob");
    assert_eq!(on_bob.info.name, "alice");
    assert_eq!(on_alice.keys, on_bob.keys);
    assert_eq!(a.poll_timeout(), None);
    assert_eq!(b.poll_timeout(), None);
}
