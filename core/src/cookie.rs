//! The initiator's stateless challenge, in the manner of TCP SYN cookies.
//!
//! Anyone who knows the public discovery id can send `Join`s from freshly minted
//! identities; an initiator that kept a record per `Join` would have to evict someone once
//! its table filled, and an attacker sending enough of them would always evict the honest
//! joiner. So the initiator keeps nothing per attempt: its nonce and ephemeral key for an
//! attempt are derived from a per-session secret and the `Join` (with the joiner's
//! transport-authenticated PeerId), and `Prove` repeats the `Join`'s fields so that they can
//! be derived again when a proof arrives (`docs/PROTOCOL.md`, "Stateless challenge").
//! A repeated `Join` thereby gets the very same `Challenge`, with no table to look it up in.

use hkdf::Hkdf;
use rand_core::CryptoRngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::handshake::{random32, Ephemeral};
use crate::identity::PeerId;
use crate::keys::{TranscriptBuilder, KEY_LEN};
use crate::messages::{Join, Nonce, PROTOCOL_VERSION};

const LABEL_EPHEMERAL: &[u8] = b"cookie ephemeral";
const LABEL_NONCE: &[u8] = b"cookie nonce";

/// The per-session secret the initiator derives every attempt's values from. Drawn when
/// the session starts and wiped with it.
pub(crate) struct CookieKey(Zeroizing<[u8; KEY_LEN]>);

impl CookieKey {
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        CookieKey(Zeroizing::new(random32(rng)))
    }

    /// The initiator's ephemeral key and nonce for `join` from `joiner`: the same inputs
    /// always give the same values, different ones unrelated values.
    pub fn challenge_values(&self, join: &Join, joiner: &PeerId) -> (Ephemeral, Nonce) {
        let digest = TranscriptBuilder::default()
            .field(&[PROTOCOL_VERSION])
            .field(&join.discovery_id.0)
            .field(&join.nonce.0)
            .field(&join.eph.0)
            .field(join.info.name.as_bytes())
            .field(joiner.as_bytes())
            .finish();
        let hk = Hkdf::<Sha256>::new(Some(self.0.as_ref()), &digest.0);
        let mut secret = Zeroizing::new([0u8; KEY_LEN]);
        let mut nonce = [0u8; KEY_LEN];
        hk.expand(LABEL_EPHEMERAL, secret.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        hk.expand(LABEL_NONCE, &mut nonce)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        (Ephemeral::from_secret(&secret), Nonce(nonce))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DeviceInfo;
    use crate::keys::DiscoveryId;
    use crate::messages::EphemeralKey;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn join(nonce: u8) -> Join {
        Join {
            discovery_id: DiscoveryId([1; 32]),
            nonce: Nonce([nonce; 32]),
            eph: EphemeralKey([3; 32]),
            info: DeviceInfo::new("bob").unwrap(),
        }
    }

    #[test]
    fn same_join_same_values_other_join_other_values() {
        let key = CookieKey::generate(&mut ChaCha20Rng::seed_from_u64(1));
        let peer = PeerId::from_bytes(&[1]).unwrap();
        let other = PeerId::from_bytes(&[2]).unwrap();
        let (e1, n1) = key.challenge_values(&join(2), &peer);
        let (e2, n2) = key.challenge_values(&join(2), &peer);
        assert_eq!((e1.public, n1), (e2.public, n2));
        let (e3, n3) = key.challenge_values(&join(4), &peer);
        assert_ne!(e1.public, e3.public);
        assert_ne!(n1, n3);
        let (e4, n4) = key.challenge_values(&join(2), &other);
        assert_ne!(e1.public, e4.public);
        assert_ne!(n1, n4);
        let again = CookieKey::generate(&mut ChaCha20Rng::seed_from_u64(2));
        assert_ne!(again.challenge_values(&join(2), &peer).1, n1);
    }
}
