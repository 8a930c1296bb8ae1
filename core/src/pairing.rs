//! One pairing session: either side of the handshake behind one sans-IO API.

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
    /// This device's PeerId.
    pub peer: PeerId,
    /// What this device shows the other.
    pub info: DeviceInfo,
}

/// A pairing session, deterministic in its inputs: the same calls with the same `now`s and
/// the same RNG output yield the same actions, bit for bit.
///
/// Both variants are boxed: their sizes differ by hundreds of bytes, and a session is
/// created once.
///
/// A driver usually holds a [`PairingHost`](crate::PairingHost), which owns the session
/// and routes messages to it; `Pairing` is the session alone, for tests and tools. After
/// every `handle_*`, drain [`poll_action`](Self::poll_action); call
/// [`handle_timeout`](Self::handle_timeout) once [`poll_timeout`](Self::poll_timeout) is
/// due.
pub enum Pairing {
    /// Holds the code and waits to be found.
    Initiator(Box<Initiator>),
    /// Was told the code and searches for the initiator.
    Joiner(Box<Joiner>),
}

/// The session's RNG is seeded once from the caller's, so later randomness (nonces and
/// ephemeral keys per attempt) needs no RNG argument and stays reproducible.
fn session_rng(rng: &mut impl CryptoRngCore) -> ChaCha20Rng {
    ChaCha20Rng::from_seed(random32(rng))
}

impl Pairing {
    /// Starts the initiator of `code` at `now`: it publishes the session (the first
    /// action) and answers joiners until the code expires after `cfg.code_ttl`.
    pub fn initiator(
        cfg: Config,
        local: LocalDevice,
        code: &Code,
        now: Instant,
        rng: &mut impl CryptoRngCore,
    ) -> Self {
        Pairing::Initiator(Box::new(Initiator::new(
            cfg.bounded(),
            local,
            code.keys(),
            now,
            session_rng(rng),
        )))
    }

    /// Starts a joiner of `code` at `now`: it looks the session up (the first action) and
    /// asks every peer reported through `handle_peer`, for up to `cfg.join_timeout`.
    pub fn joiner(
        cfg: Config,
        local: LocalDevice,
        code: &Code,
        now: Instant,
        rng: &mut impl CryptoRngCore,
    ) -> Self {
        Pairing::Joiner(Box::new(Joiner::new(
            cfg.bounded(),
            local,
            code.keys(),
            now,
            session_rng(rng),
        )))
    }

    /// A peer was discovered (mDNS, DHT) or connected. Only a joiner acts on it: it sends
    /// the peer a `Join`, which arms that attempt's timer.
    pub fn handle_peer(&mut self, peer: &PeerId, now: Instant) {
        if let Pairing::Joiner(j) = self {
            j.handle_peer(peer, now);
        }
    }

    /// A DHT lookup (`Action::Lookup`) ended without reaching any DHT peer. Only a
    /// searching joiner acts on it: it looks up again soon, which moves its timer.
    pub fn handle_lookup_failed(&mut self, now: Instant) {
        if let Pairing::Joiner(j) = self {
            j.handle_lookup_failed(now);
        }
    }

    /// The connection to `peer` is gone or a message could not be delivered. Only a
    /// joiner acts on it (an initiator's attempts run out by themselves): it retries the
    /// peer later, or shortens its wait for that peer's verdict; both move its timers.
    pub fn handle_unreachable(&mut self, peer: &PeerId, now: Instant) {
        if let Pairing::Joiner(j) = self {
            j.handle_unreachable(peer, now);
        }
    }

    /// Bytes from `peer` on `/paircode/pair/1`, as the transport authenticated it. May
    /// answer, advance or end the session, and so change `poll_timeout`.
    pub fn handle_message(&mut self, peer: &PeerId, bytes: &[u8], now: Instant) {
        match self {
            Pairing::Initiator(i) => i.handle_message(peer, bytes, now),
            Pairing::Joiner(j) => j.handle_message(peer, bytes, now),
        }
    }

    /// The local user's answer to an `Action::Confirm`. An initiator's session ends
    /// either way; a joiner's ends on "no" and goes on to prove the code on "yes".
    pub fn handle_confirm(&mut self, peer: &PeerId, accept: bool, now: Instant) {
        match self {
            Pairing::Initiator(i) => i.handle_confirm(peer, accept, now),
            Pairing::Joiner(j) => j.handle_confirm(peer, accept, now),
        }
    }

    /// The embedder's answer to an `Action::Store` for `peer`: whether the pairing is now
    /// durably stored on this device. Only a stored pairing completes; an initiator
    /// acknowledges it to the joiner only then.
    pub fn handle_stored(&mut self, peer: &PeerId, stored: bool, now: Instant) {
        match self {
            Pairing::Initiator(i) => i.handle_stored(peer, stored, now),
            Pairing::Joiner(j) => j.handle_stored(peer, stored, now),
        }
    }

    /// The local user cancels. Ends the session (`poll_timeout` becomes `None`) and tells
    /// a joiner waiting for our verdict.
    pub fn handle_cancel(&mut self, now: Instant) {
        match self {
            Pairing::Initiator(i) => i.handle_cancel(now),
            Pairing::Joiner(j) => j.handle_cancel(now),
        }
    }

    /// Call once `poll_timeout` is due; calling it early is harmless. Acts on every timer
    /// due by `now` and re-arms the rest.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self {
            Pairing::Initiator(i) => i.handle_timeout(now),
            Pairing::Joiner(j) => j.handle_timeout(now),
        }
    }

    /// The next thing to do; call after every `handle_*` until it returns `None`.
    pub fn poll_action(&mut self) -> Option<Action> {
        match self {
            Pairing::Initiator(i) => i.poll_action(),
            Pairing::Joiner(j) => j.poll_action(),
        }
    }

    /// When to call `handle_timeout` next; `None` once the session is over. Every
    /// `handle_*` may change it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timer().map(|(at, _)| at)
    }

    /// [`poll_timeout`](Self::poll_timeout) with the name of the timer it waits for.
    pub fn next_timer(&self) -> Option<(Instant, Timer)> {
        match self {
            Pairing::Initiator(i) => i.next_timer(),
            Pairing::Joiner(j) => j.next_timer(),
        }
    }

    /// The session's public name.
    pub fn discovery_id(&self) -> DiscoveryId {
        match self {
            Pairing::Initiator(i) => i.keys().discovery_id,
            Pairing::Joiner(j) => j.keys().discovery_id,
        }
    }

    /// Whether a `Done` to `peer` is on its way as soon as the embedder answers
    /// `Action::Store`: an initiator storing the pairing `peer` proved. A driver may hold
    /// the response to `peer`'s request open for it (see `PairingHost::verdict_pending`).
    pub fn verdict_pending(&self, peer: &PeerId) -> bool {
        match self {
            Pairing::Initiator(i) => i.verdict_pending(peer),
            Pairing::Joiner(_) => false,
        }
    }

    /// Whether this is the initiator's side.
    pub fn is_initiator(&self) -> bool {
        matches!(self, Pairing::Initiator(_))
    }
}
