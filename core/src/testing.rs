//! The kit every test of the core drives it with (behind the `testing` feature): devices
//! with reproducible identities, and a [`Pair`] of hosts joined by a perfect in-memory
//! network on a virtual clock, after quinn-proto's `tests/util.rs` `Pair`.

use std::collections::VecDeque;
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::action::Action;
use crate::code::Code;
use crate::config::Config;
use crate::device::{DeviceInfo, PairedDevice, Role};
use crate::host::{PairingHost, SessionId};
use crate::identity::{DeviceIdentity, PeerId};
use crate::pairing::LocalDevice;

/// A device whose Ed25519 identity follows from `seed`, so its PeerId is the same in every
/// run. Panics if `name` is not a valid device name.
pub fn device(seed: u64, name: &str) -> LocalDevice {
    LocalDevice {
        peer: DeviceIdentity::generate(&mut ChaCha20Rng::seed_from_u64(seed)).peer_id(),
        info: DeviceInfo::new(name).expect("test device names are valid"),
    }
}

/// How many steps [`Pair::drive`] takes before it decides the two sides will never settle.
const MAX_STEPS: usize = 10_000;

/// Two hosts, "alice" the initiator and "bob" the joiner of one code, wired back to back.
///
/// Messages cross instantly and are never lost; time moves only when nothing is in flight,
/// straight to the earlier of the two hosts' `poll_timeout`s. Every action either host
/// emits is kept, in order, for the test to inspect.
pub struct Pair {
    /// The virtual clock.
    pub now: Instant,
    /// The code both sides were given.
    pub code: Code,
    /// The RNG sessions were (and further sessions may be) started with.
    pub rng: ChaCha20Rng,
    /// Alice, who generated the code.
    pub initiator: PairingHost,
    /// Bob, who joins with it.
    pub joiner: PairingHost,
    /// Alice's session.
    pub initiator_session: SessionId,
    /// Bob's session.
    pub joiner_session: SessionId,
    /// Everything Alice's host asked for, in order.
    pub initiator_actions: Vec<Action>,
    /// Everything Bob's host asked for, in order.
    pub joiner_actions: Vec<Action>,
    /// How Alice's embedder answers `Action::Store` (at once): saved (the default) or not.
    pub initiator_saves: bool,
    /// How Bob's embedder answers `Action::Store` (at once).
    pub joiner_saves: bool,
    to_initiator: VecDeque<Vec<u8>>,
    to_joiner: VecDeque<Vec<u8>>,
}

impl Pair {
    /// Alice (`device(1, "alice")`) generates a code, Bob (`device(2, "bob")`) joins it;
    /// both start now with `cfg`, from an RNG seeded with 42 that also drew the code. Bob
    /// has not found Alice yet: see [`joiner_discovers_initiator`](Self::joiner_discovers_initiator).
    pub fn new(cfg: Config) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(42);
        let code = Code::generate(&mut rng);
        Self::with(cfg, device(1, "alice"), device(2, "bob"), code, rng)
    }

    /// Alice generates `code` and Bob joins it, both now with `cfg`; their sessions draw
    /// from `rng`, Alice's first.
    pub fn with(
        cfg: Config,
        alice: LocalDevice,
        bob: LocalDevice,
        code: Code,
        mut rng: ChaCha20Rng,
    ) -> Self {
        let now = Instant::now();
        let mut initiator = PairingHost::new(alice);
        let mut joiner = PairingHost::new(bob);
        let initiator_session = initiator
            .start(Role::Initiator, cfg.clone(), &code, now, &mut rng)
            .expect("a new host is idle");
        let joiner_session = joiner
            .start(Role::Joiner, cfg, &code, now, &mut rng)
            .expect("a new host is idle");
        Pair {
            now,
            code,
            rng,
            initiator,
            joiner,
            initiator_session,
            joiner_session,
            initiator_actions: Vec::new(),
            joiner_actions: Vec::new(),
            initiator_saves: true,
            joiner_saves: true,
            to_initiator: VecDeque::new(),
            to_joiner: VecDeque::new(),
        }
    }

    /// Bob's discovery (mDNS or DHT) reports Alice.
    pub fn joiner_discovers_initiator(&mut self) {
        let alice = self.initiator.local().peer.clone();
        self.joiner.handle_peer(&alice, self.now);
    }

    /// One step: delivers the messages in flight, then collects what both hosts asked for.
    /// With nothing in flight and nothing asked, moves the clock to the next timeout and
    /// fires it. Returns `false` once neither side has anything left to do.
    pub fn step(&mut self) -> bool {
        let mut moved = false;
        let (alice, bob) = (
            self.initiator.local().peer.clone(),
            self.joiner.local().peer.clone(),
        );
        while let Some(bytes) = self.to_initiator.pop_front() {
            self.initiator.handle_message(&bob, &bytes, self.now);
            moved = true;
        }
        while let Some(bytes) = self.to_joiner.pop_front() {
            self.joiner.handle_message(&alice, &bytes, self.now);
            moved = true;
        }
        moved |= collect(
            &mut self.initiator,
            (self.initiator_session, self.initiator_saves, self.now),
            &bob,
            &mut self.to_joiner,
            &mut self.initiator_actions,
        );
        moved |= collect(
            &mut self.joiner,
            (self.joiner_session, self.joiner_saves, self.now),
            &alice,
            &mut self.to_initiator,
            &mut self.joiner_actions,
        );
        if moved {
            return true;
        }
        let next = [self.initiator.poll_timeout(), self.joiner.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(at) = next else {
            return false;
        };
        self.now = self.now.max(at);
        self.initiator.handle_timeout(self.now);
        self.joiner.handle_timeout(self.now);
        true
    }

    /// Steps until neither side has anything left to do. Panics if that never happens.
    pub fn drive(&mut self) {
        self.drive_until(|_| false);
    }

    /// Steps until `done` holds (checked after every step) or nothing is left to do.
    /// Panics if neither happens within a generous number of steps.
    pub fn drive_until(&mut self, mut done: impl FnMut(&Pair) -> bool) {
        for _ in 0..MAX_STEPS {
            if done(self) || !self.step() {
                return;
            }
        }
        panic!("the pair did not settle within {MAX_STEPS} steps");
    }

    /// The device Alice paired with, once she has.
    pub fn initiator_completed(&self) -> Option<&PairedDevice> {
        completed(&self.initiator_actions)
    }

    /// The device Bob paired with, once he has.
    pub fn joiner_completed(&self) -> Option<&PairedDevice> {
        completed(&self.joiner_actions)
    }

    /// The bytes of every message Bob sent, in order.
    pub fn sent_by_joiner(&self) -> Vec<Vec<u8>> {
        sent(&self.joiner_actions)
    }

    /// The bytes of every message Alice sent, in order.
    pub fn sent_by_initiator(&self) -> Vec<Vec<u8>> {
        sent(&self.initiator_actions)
    }
}

/// Logs what `host` asks for, answers its `Store` (for `session`, with `saves`, at `now`)
/// and puts what it sends to `peer` in flight; `true` if it asked for anything.
fn collect(
    host: &mut PairingHost,
    (session, saves, now): (SessionId, bool, Instant),
    peer: &PeerId,
    in_flight: &mut VecDeque<Vec<u8>>,
    log: &mut Vec<Action>,
) -> bool {
    let before = log.len();
    while let Some(action) = host.poll_action() {
        match &action {
            Action::Send { peer: to, bytes } if to == peer => in_flight.push_back(bytes.clone()),
            Action::Store(device) => host.handle_stored(session, &device.peer, saves, now),
            _ => {}
        }
        log.push(action);
    }
    log.len() > before
}

fn completed(actions: &[Action]) -> Option<&PairedDevice> {
    actions.iter().find_map(|a| match a {
        Action::Completed(device) => Some(&**device),
        _ => None,
    })
}

fn sent(actions: &[Action]) -> Vec<Vec<u8>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { bytes, .. } => Some(bytes.clone()),
            _ => None,
        })
        .collect()
}
