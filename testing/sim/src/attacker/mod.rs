//! The adversary. It runs its own peers under its own PeerIds: the transport authenticates
//! every PeerId, so it can never speak as Alice or Bob. It is granted more than a real one
//! would have: a tap showing the plaintext of every message on the network, the PeerIds of
//! Alice and Bob, the public discovery id, and a corpus of messages from earlier sessions.

mod mitm;
mod noise;
mod prober;
mod replay;

use std::time::{Duration, Instant};

use paircode_core::{DiscoveryId, PeerId};

pub use mitm::{Mitm, MitmMode};
pub use noise::Noise;
pub use prober::{Prober, ProveStrategy};
pub use replay::Replayer;

use crate::net::Captured;

/// What the attacker knows before it starts.
#[derive(Debug, Clone)]
pub struct Intel {
    pub discovery_id: DiscoveryId,
    pub alice: PeerId,
    pub bob: PeerId,
    /// Every other device on the network.
    pub peers: Vec<PeerId>,
    /// Messages recorded in earlier sessions (other codes, same or other devices).
    pub corpus: Vec<Captured>,
}

/// What an attacker peer asks the simulator to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    Send { to: PeerId, bytes: Vec<u8> },
    Publish { key: DiscoveryId, until: Instant },
    WakeAt(Instant),
}

/// The world as an attacker peer sees it during one callback.
pub struct Ctx<'a> {
    pub now: Instant,
    pub me: &'a PeerId,
    pub tap: &'a [Captured],
    pub(crate) out: Vec<Out>,
}

impl<'a> Ctx<'a> {
    pub fn new(now: Instant, me: &'a PeerId, tap: &'a [Captured]) -> Self {
        Ctx {
            now,
            me,
            tap,
            out: Vec::new(),
        }
    }

    pub fn send(&mut self, to: &PeerId, bytes: Vec<u8>) {
        if to != self.me {
            self.out.push(Out::Send {
                to: to.clone(),
                bytes,
            });
        }
    }

    pub fn publish(&mut self, key: DiscoveryId, until: Instant) {
        self.out.push(Out::Publish { key, until });
    }

    pub fn wake_in(&mut self, delay: Duration) {
        self.out.push(Out::WakeAt(self.now + delay));
    }

    pub fn into_out(self) -> Vec<Out> {
        self.out
    }
}

pub enum Attacker {
    /// Sends malformed bytes of every kind to everyone.
    Noise(Noise),
    /// Replays recorded messages, live or from earlier sessions, to either side.
    Replay(Replayer),
    /// Relays between Bob and Alice under its own PeerId, rewriting what it can.
    Mitm(Mitm),
    /// Knows the public discovery id but not the auth key: Join, then a Prove it cannot get right.
    Prober(Prober),
}

impl Attacker {
    pub fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        match self {
            Attacker::Noise(a) => a.on_start(ctx),
            Attacker::Replay(a) => a.on_start(ctx),
            Attacker::Mitm(a) => a.on_start(ctx),
            Attacker::Prober(a) => a.on_start(ctx),
        }
    }

    pub fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        match self {
            Attacker::Noise(a) => a.on_tick(ctx),
            Attacker::Replay(a) => a.on_tick(ctx),
            Attacker::Mitm(_) => {}
            Attacker::Prober(a) => a.on_tick(ctx),
        }
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_>, from: &PeerId, bytes: &[u8]) {
        match self {
            Attacker::Noise(a) => a.on_message(ctx, from, bytes),
            Attacker::Replay(a) => a.on_message(ctx, from, bytes),
            Attacker::Mitm(a) => a.on_message(ctx, from, bytes),
            Attacker::Prober(a) => a.on_message(ctx, from, bytes),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Attacker::Noise(_) => "noise",
            Attacker::Replay(_) => "replay",
            Attacker::Mitm(_) => "mitm",
            Attacker::Prober(_) => "prober",
        }
    }
}
