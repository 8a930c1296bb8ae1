//! An attacker that knows the public discovery id (it is in the DHT and in every Join) but
//! not the auth key. Its Join is accepted, so Alice spends an attempt on it; its Prove
//! cannot verify. Several ways of guessing the MAC are tried.

use std::time::Duration;

use paircode_core::code::ENTROPY_LEN;
use paircode_core::keys::CodeKeys;
use paircode_core::messages::{Done, EphemeralKey, Join, Mac, Message, Nonce, Outcome, Prove};
use paircode_core::{DeviceInfo, PeerId};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;
use x25519_dalek::{PublicKey, StaticSecret};

use super::{Ctx, Intel};
use crate::random::{bytes32, duration_between, index};
use crate::transcript::transcript;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProveStrategy {
    RandomMac,
    /// The exact transcript, MACed with the auth key of a code it made up.
    WrongKey,
    /// Alice's own `mac_i` sent back as `mac_j`.
    ReflectInitiatorMac,
    /// A `mac_j` some honest joiner sent (tap or earlier sessions).
    ReplayedJoinerMac,
    /// The all-zero (low-order) ephemeral key, so any shared secret would be known, with a
    /// wrong-key MAC.
    LowOrderEphemeral,
}

impl ProveStrategy {
    pub const ALL: [ProveStrategy; 5] = [
        ProveStrategy::RandomMac,
        ProveStrategy::WrongKey,
        ProveStrategy::ReflectInitiatorMac,
        ProveStrategy::ReplayedJoinerMac,
        ProveStrategy::LowOrderEphemeral,
    ];
}

pub struct Prober {
    rng: ChaCha20Rng,
    intel: Intel,
    strategy: ProveStrategy,
    /// Joins left to send.
    attempts: u32,
    start_within: Duration,
    retry_after: Duration,
    pending: Option<Join>,
    guess: CodeKeys,
}

impl Prober {
    pub fn new(
        mut rng: ChaCha20Rng,
        intel: Intel,
        strategy: ProveStrategy,
        attempts: u32,
        start_within: Duration,
    ) -> Self {
        let mut entropy = [0u8; ENTROPY_LEN];
        rng.fill_bytes(&mut entropy);
        Prober {
            rng,
            intel,
            strategy,
            attempts,
            start_within,
            retry_after: Duration::from_millis(500),
            pending: None,
            guess: CodeKeys::derive(&entropy),
        }
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        let delay = duration_between(&mut self.rng, Duration::ZERO, self.start_within);
        ctx.wake_in(delay);
    }

    pub fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        if self.attempts == 0 {
            return;
        }
        self.attempts -= 1;
        let eph = match self.strategy {
            ProveStrategy::LowOrderEphemeral => EphemeralKey([0u8; 32]),
            _ => EphemeralKey(
                PublicKey::from(&StaticSecret::from(bytes32(&mut self.rng))).to_bytes(),
            ),
        };
        let join = Join {
            discovery_id: self.intel.discovery_id,
            nonce: Nonce(bytes32(&mut self.rng)),
            eph,
            info: DeviceInfo::new("prober").expect("a valid device name"),
        };
        ctx.send(&self.intel.alice, Message::Join(join.clone()).encode());
        self.pending = Some(join);
        // If Alice never answers (lost, evicted), try again later anyway.
        ctx.wake_in(self.retry_after * 4);
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_>, from: &PeerId, bytes: &[u8]) {
        if *from != self.intel.alice {
            return;
        }
        match Message::decode(bytes) {
            Ok(Message::Challenge(challenge)) => {
                let Some(join) = self.pending.take() else {
                    return;
                };
                let mac = match self.strategy {
                    ProveStrategy::RandomMac => Mac(bytes32(&mut self.rng)),
                    ProveStrategy::WrongKey | ProveStrategy::LowOrderEphemeral => {
                        let t = transcript(&join, ctx.me, &challenge, from);
                        self.guess.joiner_mac(&t)
                    }
                    ProveStrategy::ReflectInitiatorMac => challenge.mac,
                    ProveStrategy::ReplayedJoinerMac => self.replayed_mac(ctx),
                };
                ctx.send(
                    from,
                    Message::Prove(Prove {
                        nonce: join.nonce,
                        eph: join.eph,
                        info: join.info.clone(),
                        mac,
                    })
                    .encode(),
                );
            }
            Ok(Message::Done(Done {
                outcome: Outcome::Rejected(_),
                ..
            })) if self.attempts > 0 => {
                ctx.wake_in(self.retry_after);
            }
            _ => {}
        }
    }

    fn replayed_mac(&mut self, ctx: &Ctx<'_>) -> Mac {
        // Recent traffic only: with a thousand probers, scanning the whole tap each time
        // would dominate the run.
        let macs: Vec<Mac> = ctx
            .tap
            .iter()
            .rev()
            .take(256)
            .chain(&self.intel.corpus)
            .filter_map(|c| match Message::decode(&c.bytes) {
                Ok(Message::Prove(p)) => Some(p.mac),
                _ => None,
            })
            .collect();
        match macs.len() {
            0 => Mac(bytes32(&mut self.rng)),
            n => macs[index(&mut self.rng, n)],
        }
    }
}
