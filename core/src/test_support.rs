//! Fixtures shared by the per-transition unit tests.

use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub use crate::testing::device;
use crate::{Action, Code, Config, LocalDevice, Message, Pairing, PeerId};

pub struct Fixture {
    pub now: Instant,
    pub cfg: Config,
    pub code: Code,
    pub alice: LocalDevice,
    pub bob: LocalDevice,
    pub rng: ChaCha20Rng,
}

pub fn peer(n: u32) -> PeerId {
    PeerId::from_bytes(&n.to_be_bytes()).unwrap()
}

impl Fixture {
    pub fn new() -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(99);
        Fixture {
            now: Instant::now(),
            cfg: Config::default(),
            code: Code::generate(&mut rng),
            alice: device(1, "alice"),
            bob: device(2, "bob"),
            rng,
        }
    }

    pub fn at(&self, ms: u64) -> Instant {
        self.now + Duration::from_millis(ms)
    }

    pub fn initiator(&mut self) -> Pairing {
        Pairing::initiator(
            self.cfg.clone(),
            self.alice.clone(),
            &self.code,
            self.now,
            &mut self.rng,
        )
    }

    pub fn joiner(&mut self) -> Pairing {
        Pairing::joiner(
            self.cfg.clone(),
            self.bob.clone(),
            &self.code,
            self.now,
            &mut self.rng,
        )
    }

    /// A joiner with another code, as a device with a typo'd (but valid) code would be.
    pub fn wrong_joiner(&mut self, who: LocalDevice) -> Pairing {
        let other = Code::generate(&mut self.rng);
        Pairing::joiner(self.cfg.clone(), who, &other, self.now, &mut self.rng)
    }
}

pub fn drain(p: &mut Pairing) -> Vec<Action> {
    std::iter::from_fn(|| p.poll_action()).collect()
}

/// Tells `joiner` about `to` and returns the Join it sends there.
pub fn join_bytes(joiner: &mut Pairing, to: &PeerId, now: Instant) -> Vec<u8> {
    joiner.handle_peer(to, now);
    only_bytes_to(&drain(joiner), to)
}

/// The decoded messages among `actions` addressed to `to`.
pub fn sent_to(actions: &[Action], to: &PeerId) -> Vec<Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { peer, bytes } if peer == to => Some(Message::decode(bytes).unwrap()),
            _ => None,
        })
        .collect()
}

/// The outcomes of the verdicts among `actions` addressed to `to`, checking that each
/// names an attempt (or none, for unreadable input).
pub fn verdicts(actions: &[Action], to: &PeerId) -> Vec<crate::messages::Outcome> {
    sent_to(actions, to)
        .into_iter()
        .filter_map(|m| match m {
            Message::Done(done) => Some(done.outcome),
            _ => None,
        })
        .collect()
}

/// The raw bytes of the only message among `actions` addressed to `to`.
pub fn only_bytes_to(actions: &[Action], to: &PeerId) -> Vec<u8> {
    let mut sends = actions.iter().filter_map(|a| match a {
        Action::Send { peer, bytes } if peer == to => Some(bytes.clone()),
        _ => None,
    });
    let first = sends.next().expect("a message was sent");
    assert!(sends.next().is_none(), "exactly one message expected");
    first
}

/// Delivers the initiator's `challenge` to `joiner` and returns the joiner's proof,
/// saying yes for its user if it asks first.
pub fn prove_for(joiner: &mut Pairing, from: &PeerId, challenge: &[u8], now: Instant) -> Vec<u8> {
    joiner.handle_message(from, challenge, now);
    let mut out = drain(joiner);
    if out.iter().any(|a| matches!(a, Action::Confirm { .. })) {
        joiner.handle_confirm(from, true, now);
        out = drain(joiner);
    }
    only_bytes_to(&out, from)
}

/// Checks that `out` asks to store a pairing and neither completes nor acknowledges it
/// yet, answers that it is stored (at `now`) and returns what `p` does next.
pub fn stored(p: &mut Pairing, out: &[Action], now: Instant) -> Vec<Action> {
    let device = out
        .iter()
        .find_map(|a| match a {
            Action::Store(d) => Some(d.peer.clone()),
            _ => None,
        })
        .expect("asked to store the pairing");
    assert!(
        !out.iter().any(|a| matches!(a, Action::Completed(_))),
        "completed before it was stored"
    );
    assert!(
        !verdicts(out, &device).contains(&crate::messages::Outcome::Accepted),
        "acknowledged before it was stored"
    );
    p.handle_stored(&device, true, now);
    drain(p)
}
