//! Pieces both sides compute identically: ephemeral keys and the transcript of `docs/PROTOCOL.md`.

use rand_core::CryptoRngCore;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::device::DeviceInfo;
use crate::identity::PeerId;
use crate::keys::KEY_LEN;
use crate::keys::{Transcript, TranscriptBuilder};
use crate::messages::{EphemeralKey, Join, Nonce, PROTOCOL_VERSION};

pub(crate) struct Ephemeral {
    secret: StaticSecret,
    pub public: EphemeralKey,
}

impl Ephemeral {
    pub fn new(rng: &mut impl CryptoRngCore) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        Self::from_secret(&bytes)
    }

    /// The key pair of these secret bytes (the initiator derives them: see `cookie`).
    pub fn from_secret(bytes: &[u8; KEY_LEN]) -> Self {
        let secret = StaticSecret::from(*bytes);
        let public = EphemeralKey(PublicKey::from(&secret).to_bytes());
        Ephemeral { secret, public }
    }

    /// `None` for a low-order point: a peer must not be able to force a known shared secret.
    pub fn agree(&self, theirs: &EphemeralKey) -> Option<Zeroizing<[u8; KEY_LEN]>> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(theirs.0));
        shared
            .was_contributory()
            .then(|| Zeroizing::new(shared.to_bytes()))
    }
}

pub(crate) fn random32(rng: &mut impl CryptoRngCore) -> [u8; KEY_LEN] {
    let mut out = [0u8; 32];
    rng.fill_bytes(&mut out);
    out
}

/// The initiator's half of the transcript.
pub(crate) struct ChallengeFields<'a> {
    pub nonce: &'a Nonce,
    pub eph: &'a EphemeralKey,
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
        .field(&join.discovery_id.0)
        .field(&join.nonce.0)
        .field(&join.eph.0)
        .field(join.info.name.as_bytes())
        .field(joiner.as_bytes())
        .field(&initiator.nonce.0)
        .field(&initiator.eph.0)
        .field(initiator.info.name.as_bytes())
        .field(initiator.peer.as_bytes())
        .finish()
}
