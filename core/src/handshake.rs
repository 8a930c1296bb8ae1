//! Pieces both sides compute identically: ephemeral keys and the transcript of DESIGN §3.

use rand_core::CryptoRngCore;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::device::DeviceInfo;
use crate::identity::PeerId;
use crate::keys::{Transcript, TranscriptBuilder};
use crate::messages::{Bytes32, Join, PROTOCOL_VERSION};

pub(crate) struct Ephemeral {
    secret: StaticSecret,
    pub public: Bytes32,
}

impl Ephemeral {
    pub fn new(rng: &mut impl CryptoRngCore) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        let secret = StaticSecret::from(*bytes);
        let public = PublicKey::from(&secret).to_bytes();
        Ephemeral { secret, public }
    }

    /// `None` for a low-order point: a peer must not be able to force a known shared secret.
    pub fn agree(&self, theirs: &Bytes32) -> Option<Zeroizing<Bytes32>> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(*theirs));
        shared
            .was_contributory()
            .then(|| Zeroizing::new(shared.to_bytes()))
    }
}

pub(crate) fn random32(rng: &mut impl CryptoRngCore) -> Bytes32 {
    let mut out = [0u8; 32];
    rng.fill_bytes(&mut out);
    out
}

/// The initiator's half of the transcript.
pub(crate) struct ChallengeFields<'a> {
    pub nonce: &'a Bytes32,
    pub eph: &'a Bytes32,
    pub info: &'a DeviceInfo,
    pub peer: &'a PeerId,
}

pub(crate) fn transcript(
    join: &Join,
    joiner: &PeerId,
    initiator: ChallengeFields<'_>,
) -> Transcript {
    TranscriptBuilder::default()
        .field(&[PROTOCOL_VERSION])
        .field(&join.discovery_id)
        .field(&join.nonce)
        .field(&join.eph)
        .field(join.info.name.as_bytes())
        .field(joiner.as_bytes())
        .field(initiator.nonce)
        .field(initiator.eph)
        .field(initiator.info.name.as_bytes())
        .field(initiator.peer.as_bytes())
        .finish()
}
