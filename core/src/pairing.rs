//! The one type a driver holds: either side of the handshake behind the DESIGN §5 API.

use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRngCore, SeedableRng};

use crate::action::Action;
use crate::code::Code;
use crate::config::Config;
use crate::device::DeviceInfo;
use crate::handshake::random32;
use crate::identity::PeerId;
use crate::initiator::Initiator;
use crate::joiner::Joiner;
use crate::keys::DiscoveryId;
use crate::timer::Timer;

/// Who we are in a pairing: the PeerId the transport authenticates, and what we show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDevice {
    pub peer: PeerId,
    pub info: DeviceInfo,
}

/// A pairing session, deterministic in its inputs: the same calls with the same `now`s and
/// the same RNG output yield the same actions, bit for bit.
pub enum Pairing {
    Initiator(Initiator),
    Joiner(Joiner),
}

/// The session's RNG is seeded once from the caller's, so later randomness (nonces and
/// ephemeral keys per attempt) needs no RNG argument and stays reproducible.
fn session_rng(rng: &mut impl CryptoRngCore) -> ChaCha20Rng {
    ChaCha20Rng::from_seed(random32(rng))
}

impl Pairing {
    pub fn initiator(
        cfg: Config,
        local: LocalDevice,
        code: &Code,
        now: Instant,
        rng: &mut impl CryptoRngCore,
    ) -> Self {
        Pairing::Initiator(Initiator::new(
            cfg,
            local,
            code.keys(),
            now,
            session_rng(rng),
        ))
    }

    pub fn joiner(
        cfg: Config,
        local: LocalDevice,
        code: &Code,
        now: Instant,
        rng: &mut impl CryptoRngCore,
    ) -> Self {
        Pairing::Joiner(Joiner::new(cfg, local, code.keys(), now, session_rng(rng)))
    }

    /// A peer was discovered or connected. Only a joiner acts on it.
    pub fn handle_peer(&mut self, peer: &PeerId, now: Instant) {
        if let Pairing::Joiner(j) = self {
            j.handle_peer(peer, now);
        }
    }

    /// The connection to `peer` is gone or a message could not be delivered. Only a
    /// joiner acts on it: an initiator's attempts run out by themselves.
    pub fn handle_unreachable(&mut self, peer: &PeerId, now: Instant) {
        if let Pairing::Joiner(j) = self {
            j.handle_unreachable(peer, now);
        }
    }

    pub fn handle_message(&mut self, peer: &PeerId, bytes: &[u8], now: Instant) {
        match self {
            Pairing::Initiator(i) => i.handle_message(peer, bytes, now),
            Pairing::Joiner(j) => j.handle_message(peer, bytes, now),
        }
    }

    /// The local user's answer to an `Action::Confirm`. Only an initiator asks.
    pub fn handle_confirm(&mut self, peer: &PeerId, accept: bool, now: Instant) {
        if let Pairing::Initiator(i) = self {
            i.handle_confirm(peer, accept, now);
        }
    }

    pub fn handle_cancel(&mut self, now: Instant) {
        match self {
            Pairing::Initiator(i) => i.handle_cancel(now),
            Pairing::Joiner(j) => j.handle_cancel(now),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self {
            Pairing::Initiator(i) => i.handle_timeout(now),
            Pairing::Joiner(j) => j.handle_timeout(now),
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        match self {
            Pairing::Initiator(i) => i.poll_action(),
            Pairing::Joiner(j) => j.poll_action(),
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timer().map(|(at, _)| at)
    }

    pub fn next_timer(&self) -> Option<(Instant, Timer)> {
        match self {
            Pairing::Initiator(i) => i.next_timer(),
            Pairing::Joiner(j) => j.next_timer(),
        }
    }

    pub fn discovery_id(&self) -> DiscoveryId {
        match self {
            Pairing::Initiator(i) => i.keys().discovery_id,
            Pairing::Joiner(j) => j.keys().discovery_id,
        }
    }

    pub fn is_initiator(&self) -> bool {
        matches!(self, Pairing::Initiator(_))
    }
}
