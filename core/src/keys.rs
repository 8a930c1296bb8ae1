//! The key schedule (`docs/PROTOCOL.md`): everything derived from the code and the handshake.
//!
//! Labels are distinct per output so that no two keys can ever coincide, and the salt names
//! the protocol version so a future schedule cannot collide with this one.

use hkdf::Hkdf;
use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::identity::PeerId;
use crate::messages::{Mac, Nonce, PROTOCOL_VERSION};

/// Length of every key, MAC, nonce and hash in the protocol, in bytes.
pub const KEY_LEN: usize = 32;
const CODE_SALT: &[u8] = b"paircode v1";
const LABEL_DISCOVERY: &[u8] = b"discovery";
const LABEL_AUTH: &[u8] = b"auth";
const LABEL_PAIRING_SECRET: &[u8] = b"pairing secret";
const LABEL_INITIATOR_TO_JOINER: &[u8] = b"session initiator to joiner";
const LABEL_JOINER_TO_INITIATOR: &[u8] = b"session joiner to initiator";
const MAC_LABEL_INITIATOR: &[u8] = b"initiator";
const MAC_LABEL_JOINER: &[u8] = b"joiner";
const MAC_LABEL_EXPIRED: &[u8] = b"expired";

/// Public name of a pairing session: published in the DHT and sent in the clear.
/// It is an HKDF output, so it reveals nothing usable about the code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DiscoveryId(#[serde(with = "serde_bytes")] pub [u8; KEY_LEN]);

impl std::fmt::Debug for DiscoveryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DiscoveryId(")?;
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// Keys that follow from the code alone.
#[derive(Clone, ZeroizeOnDrop)]
pub struct CodeKeys {
    /// The session's public name.
    #[zeroize(skip)]
    pub discovery_id: DiscoveryId,
    auth_key: [u8; KEY_LEN],
}

impl CodeKeys {
    /// The keys of the code with this entropy.
    pub fn derive(entropy: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(CODE_SALT), entropy);
        let mut discovery = [0u8; KEY_LEN];
        let mut auth_key = [0u8; KEY_LEN];
        hk.expand(LABEL_DISCOVERY, &mut discovery)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        hk.expand(LABEL_AUTH, &mut auth_key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        CodeKeys {
            discovery_id: DiscoveryId(discovery),
            auth_key,
        }
    }

    /// The key both proofs are MACs under.
    pub fn auth_key(&self) -> &[u8; KEY_LEN] {
        &self.auth_key
    }

    /// `mac_i`: the initiator's proof that it knows the code, bound to the transcript.
    pub fn initiator_mac(&self, transcript: &Transcript) -> Mac {
        self.mac(MAC_LABEL_INITIATOR, transcript)
    }

    /// `mac_j`: the joiner's proof.
    pub fn joiner_mac(&self, transcript: &Transcript) -> Mac {
        self.mac(MAC_LABEL_JOINER, transcript)
    }

    /// `mac_x`: proof, on a `Done{Rejected(Expired)}` to `joiner`'s attempt
    /// `attempt_nonce`, that `initiator` held the code. Bound to both devices and the
    /// attempt, so it cannot be replayed to another joiner or another attempt.
    pub fn expired_mac(&self, attempt_nonce: &Nonce, joiner: &PeerId, initiator: &PeerId) -> Mac {
        let fields = TranscriptBuilder::default()
            .field(&[PROTOCOL_VERSION])
            .field(&self.discovery_id.0)
            .field(&attempt_nonce.0)
            .field(joiner.as_bytes())
            .field(initiator.as_bytes())
            .finish();
        self.mac(MAC_LABEL_EXPIRED, &fields)
    }

    fn mac(&self, label: &[u8], transcript: &Transcript) -> Mac {
        let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(&self.auth_key)
            .expect("HMAC accepts any key length");
        mac.update(label);
        mac.update(&transcript.0);
        Mac(mac.finalize().into_bytes().into())
    }

    /// Derives the long-term pairing secret and the two directional session keys.
    pub fn session_keys(&self, transcript: &Transcript, shared: &[u8; KEY_LEN]) -> SessionKeys {
        let mut ikm = [0u8; 2 * KEY_LEN];
        ikm[..KEY_LEN].copy_from_slice(shared);
        ikm[KEY_LEN..].copy_from_slice(&self.auth_key);
        let hk = Hkdf::<Sha256>::new(Some(&transcript.0), &ikm);
        ikm.zeroize();
        let mut keys = SessionKeys {
            pairing_secret: [0; KEY_LEN],
            initiator_to_joiner: [0; KEY_LEN],
            joiner_to_initiator: [0; KEY_LEN],
            transcript: *transcript,
        };
        for (label, out) in [
            (LABEL_PAIRING_SECRET, &mut keys.pairing_secret),
            (LABEL_INITIATOR_TO_JOINER, &mut keys.initiator_to_joiner),
            (LABEL_JOINER_TO_INITIATOR, &mut keys.joiner_to_initiator),
        ] {
            hk.expand(label, out)
                .expect("32 bytes is a valid HKDF-SHA256 output length");
        }
        keys
    }
}

impl std::fmt::Debug for CodeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeKeys")
            .field("discovery_id", &self.discovery_id)
            .field("auth_key", &"<redacted>")
            .finish()
    }
}

/// Constant-time comparison of two MACs.
pub(crate) fn macs_equal(a: &[u8; KEY_LEN], b: &[u8]) -> bool {
    b.len() == KEY_LEN && bool::from(a.ct_eq(b))
}

/// SHA-256 over the handshake fields, each length-prefixed so no two field lists share an
/// encoding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Transcript(pub [u8; KEY_LEN]);

impl std::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Transcript(")?;
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// Hashes the transcript's fields in order, each prefixed with its length.
#[derive(Default)]
pub struct TranscriptBuilder(Sha256);

impl TranscriptBuilder {
    /// Appends one field: its length as a big-endian `u32`, then its bytes.
    pub fn field(mut self, bytes: &[u8]) -> Self {
        let len =
            u32::try_from(bytes.len()).expect("transcript fields are capped by the message size");
        self.0.update(len.to_be_bytes());
        self.0.update(bytes);
        self
    }

    /// The hash of the fields appended.
    pub fn finish(self) -> Transcript {
        Transcript(self.0.finalize().into())
    }
}

/// What a completed pairing yields. Wiped on drop; `Debug` shows only the transcript.
#[derive(Clone, ZeroizeOnDrop)]
pub struct SessionKeys {
    /// The long-term secret the two devices share from now on.
    pub pairing_secret: [u8; KEY_LEN],
    /// Key for traffic from the initiator to the joiner.
    pub initiator_to_joiner: [u8; KEY_LEN],
    /// Key for traffic from the joiner to the initiator.
    pub joiner_to_initiator: [u8; KEY_LEN],
    /// The handshake these keys were derived from.
    #[zeroize(skip)]
    pub transcript: Transcript,
}

impl PartialEq for SessionKeys {
    fn eq(&self, other: &Self) -> bool {
        let a = [
            &self.pairing_secret,
            &self.initiator_to_joiner,
            &self.joiner_to_initiator,
        ];
        let b = [
            &other.pairing_secret,
            &other.initiator_to_joiner,
            &other.joiner_to_initiator,
        ];
        let mut equal = subtle::Choice::from(1);
        for (x, y) in a.iter().zip(b.iter()) {
            equal &= x.ct_eq(&y[..]);
        }
        bool::from(equal) && self.transcript == other.transcript
    }
}
impl Eq for SessionKeys {}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("transcript", &self.transcript)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_separate_outputs() {
        let keys = CodeKeys::derive(&[1; 16]);
        assert_ne!(&keys.discovery_id.0, keys.auth_key());
        let t = TranscriptBuilder::default().field(b"x").finish();
        assert_ne!(keys.initiator_mac(&t), keys.joiner_mac(&t));
        let s = keys.session_keys(&t, &[9; 32]);
        assert_ne!(s.pairing_secret, s.initiator_to_joiner);
        assert_ne!(s.initiator_to_joiner, s.joiner_to_initiator);
    }

    #[test]
    fn transcript_fields_are_unambiguous() {
        let a = TranscriptBuilder::default()
            .field(b"ab")
            .field(b"c")
            .finish();
        let b = TranscriptBuilder::default()
            .field(b"a")
            .field(b"bc")
            .finish();
        assert_ne!(a, b);
    }

    #[test]
    fn debug_redacts_secrets() {
        let keys = CodeKeys::derive(&[1; 16]);
        let text = format!("{keys:?}");
        assert!(text.contains("redacted"));
        assert!(!text.contains(&format!("{:?}", keys.auth_key())));
        let s = keys.session_keys(&TranscriptBuilder::default().finish(), &[0; 32]);
        assert!(!format!("{s:?}").contains("pairing_secret"));
    }

    #[test]
    fn macs_equal_checks_length() {
        assert!(macs_equal(&[3; 32], &[3; 32]));
        assert!(!macs_equal(&[3; 32], &[3; 31]));
        assert!(!macs_equal(&[3; 32], &[4; 32]));
    }
}
