//! A relay in the middle: Bob talks to the attacker, the attacker talks to Alice, under its
//! own PeerId, rewriting messages on the way. The transcript binds the PeerIds the transport
//! authenticated: Alice computes it with the attacker as the joiner, Bob with the attacker
//! as the initiator, so no MAC made for one of them verifies for the other.

use std::time::Duration;

use paircode_core::messages::{Challenge, EphemeralKey, Join, Message, Prove};
use paircode_core::{DeviceInfo, PeerId};
use rand_chacha::ChaCha20Rng;
use x25519_dalek::{PublicKey, StaticSecret};

use super::{Ctx, Intel};
use crate::random::bytes32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MitmMode {
    /// Forward the bytes unchanged.
    Verbatim,
    /// Put its own ephemeral key into Join and Challenge, hoping to learn the shared secret.
    OwnEphemeral,
    /// Swap the device names, hoping a user confirms the wrong device.
    OwnInfo,
    /// Forward, and also answer Alice's Challenge with her own MAC reflected back as a Prove.
    ReflectMac,
}

pub struct Mitm {
    intel: Intel,
    mode: MitmMode,
    eph_public: EphemeralKey,
    /// Relayed messages left; the relay ends so that a run ends.
    budget: u32,
    /// The last Join relayed to Alice, for a reflected proof to repeat.
    join: Option<Join>,
}

impl Mitm {
    pub fn new(mut rng: ChaCha20Rng, intel: Intel, mode: MitmMode, budget: u32) -> Self {
        let secret = StaticSecret::from(bytes32(&mut rng));
        Mitm {
            intel,
            mode,
            eph_public: EphemeralKey(PublicKey::from(&secret).to_bytes()),
            budget,
            join: None,
        }
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        // Advertise under Alice's discovery id, so a DHT lookup leads Bob here too.
        let until = ctx.now + Duration::from_secs(3600);
        ctx.publish(self.intel.discovery_id, until);
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_>, from: &PeerId, bytes: &[u8]) {
        if self.budget == 0 {
            return;
        }
        let to = if *from == self.intel.bob {
            self.intel.alice.clone()
        } else if *from == self.intel.alice {
            self.intel.bob.clone()
        } else {
            return;
        };
        self.budget -= 1;
        let forwarded = match (self.mode, Message::decode(bytes)) {
            (MitmMode::Verbatim, _) | (_, Err(_)) => bytes.to_vec(),
            (_, Ok(Message::Join(join))) => {
                let join = self.rewrite_join(join);
                self.join = Some(join.clone());
                Message::Join(join).encode()
            }
            (_, Ok(Message::Challenge(challenge))) => {
                if let (MitmMode::ReflectMac, Some(join)) = (self.mode, &self.join) {
                    let reflected = Message::Prove(Prove {
                        nonce: join.nonce,
                        eph: join.eph,
                        info: join.info.clone(),
                        mac: challenge.mac,
                    })
                    .encode();
                    ctx.send(from, reflected);
                }
                Message::Challenge(self.rewrite_challenge(challenge)).encode()
            }
            (_, Ok(other)) => other.encode(),
        };
        ctx.send(&to, forwarded);
    }

    fn rewrite_join(&self, mut join: Join) -> Join {
        match self.mode {
            MitmMode::OwnEphemeral => join.eph = self.eph_public,
            MitmMode::OwnInfo => join.info = mallory(),
            MitmMode::Verbatim | MitmMode::ReflectMac => {}
        }
        join
    }

    fn rewrite_challenge(&self, mut challenge: Challenge) -> Challenge {
        match self.mode {
            MitmMode::OwnEphemeral => challenge.eph = self.eph_public,
            MitmMode::OwnInfo => challenge.info = mallory(),
            MitmMode::Verbatim | MitmMode::ReflectMac => {}
        }
        challenge
    }
}

fn mallory() -> DeviceInfo {
    DeviceInfo::new("mallory").expect("a valid device name")
}
