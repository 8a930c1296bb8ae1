//! Keys for the application, derived from a pairing: an exporter in the manner of TLS
//! (RFC 8446 §7.5), so an application gets its own keys without ever holding the pairing
//! secret itself, and keys for different purposes or devices never coincide.
//!
//! `key = HKDF-Expand(PRK = pairing_secret, info, 32)` with
//! `info = "paircode exporter v1" ‖ len(label) ‖ label ‖ len(p₁) ‖ p₁ ‖ len(p₂) ‖ p₂`,
//! lengths as 4-byte big-endian integers and p₁ < p₂ the two devices' PeerId bytes in
//! byte order. The pairing secret is already an HKDF output (uniformly random), so it
//! serves as the PRK directly. Ordering the PeerIds by value rather than by role makes the
//! derivation the same on both sides without either side needing to know who initiated.

use hkdf::Hkdf;
use sha2::Sha256;

use crate::identity::PeerId;
use crate::keys::KEY_LEN;

/// Names this derivation and its version, apart from every label of the key schedule.
const EXPORTER_CONTEXT: &[u8] = b"paircode exporter v1";

/// The application key for `label` between the devices `a` and `b` (in either order)
/// that share `pairing_secret`.
pub fn export_key(
    pairing_secret: &[u8; KEY_LEN],
    a: &PeerId,
    b: &PeerId,
    label: &str,
) -> [u8; KEY_LEN] {
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    let mut info = Vec::with_capacity(EXPORTER_CONTEXT.len() + 12 + label.len() + 2 * 40);
    info.extend_from_slice(EXPORTER_CONTEXT);
    for field in [label.as_bytes(), first.as_bytes(), second.as_bytes()] {
        let len = u32::try_from(field.len()).expect("a label longer than 4 GiB is a bug");
        info.extend_from_slice(&len.to_be_bytes());
        info.extend_from_slice(field);
    }
    let hk =
        Hkdf::<Sha256>::from_prk(pairing_secret).expect("a 32-byte PRK is valid for HKDF-SHA256");
    let mut key = [0u8; KEY_LEN];
    hk.expand(&info, &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DeviceIdentity;

    fn peers() -> (PeerId, PeerId) {
        (
            DeviceIdentity::from_secret([1; 32]).peer_id(),
            DeviceIdentity::from_secret([2; 32]).peer_id(),
        )
    }

    fn secret() -> [u8; KEY_LEN] {
        std::array::from_fn(|i| i as u8)
    }

    #[test]
    fn both_sides_agree_and_inputs_separate_keys() {
        let (alice, bob) = peers();
        let carol = DeviceIdentity::from_secret([3; 32]).peer_id();
        let key = export_key(&secret(), &alice, &bob, "myapp/sync");
        assert_eq!(key, export_key(&secret(), &bob, &alice, "myapp/sync"));
        assert_ne!(key, export_key(&secret(), &alice, &bob, "myapp/chat"));
        assert_ne!(key, export_key(&secret(), &alice, &carol, "myapp/sync"));
        assert_ne!(key, export_key(&[7; KEY_LEN], &alice, &bob, "myapp/sync"));
        assert_ne!(&key, &secret(), "the pairing secret itself never comes out");
        // Length prefixes: moving bytes between the label and a PeerId changes the key.
        assert_ne!(
            export_key(&secret(), &alice, &bob, ""),
            export_key(&secret(), &alice, &bob, "\0")
        );
    }

    /// Computed independently in Python (`cryptography` for the Ed25519 public keys; HKDF-Expand
    /// of 32 bytes is one HMAC block): `hmac.new(bytes(range(32)), info + b"\x01", "sha256")`,
    /// `info` as in the module docs, the PeerIds those of the Ed25519 secrets `[1; 32]` and
    /// `[2; 32]` (`00 24 08 01 12 20 ‖ public key`).
    #[test]
    fn known_answer() {
        let (alice, bob) = peers();
        assert_eq!(
            hex::encode(export_key(&secret(), &alice, &bob, "myapp/sync")),
            KAT_MYAPP_SYNC
        );
    }

    const KAT_MYAPP_SYNC: &str = "9a401436c8626515d069b7c762ac9b570de548d7894dacfbe9318128ff2f8439";
}
