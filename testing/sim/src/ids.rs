//! Peer identities for simulated devices.
//!
//! Real Ed25519 identities cost a key generation each; thousands of simulated peers per
//! second need something cheaper. A synthetic id has exactly the shape of a libp2p Ed25519
//! PeerId (identity multihash of the protobuf-encoded public key) with random key bytes,
//! which is all the state machines look at: they treat a PeerId as opaque bytes that the
//! transport authenticated.

use paircode_core::{DeviceIdentity, DeviceInfo, LocalDevice, PeerId};
use rand_core::RngCore;

/// identity multihash (0x00), length 36, protobuf field 1 = KeyType::Ed25519, field 2 = 32 bytes.
const ED25519_PEER_ID_PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

pub fn synthetic_peer_id(rng: &mut impl RngCore) -> PeerId {
    let mut bytes = [0u8; 38];
    bytes[..6].copy_from_slice(&ED25519_PEER_ID_PREFIX);
    rng.fill_bytes(&mut bytes[6..]);
    PeerId::from_bytes(&bytes).expect("38 bytes is a valid peer id length")
}

/// A device with a synthetic identity drawn from `rng`: cheap, for simulations of many
/// peers (`paircode_core::testing::device` makes a real one from a seed).
pub fn synthetic_device(rng: &mut impl RngCore, name: &str) -> LocalDevice {
    LocalDevice {
        peer: synthetic_peer_id(rng),
        info: DeviceInfo::new(name).expect("simulated device names are valid"),
    }
}

/// A device with a real Ed25519 identity, for tests whose inputs must be reproducible by
/// another implementation (the PeerId follows from the 32-byte secret).
pub fn real_device(secret: [u8; 32], name: &str) -> LocalDevice {
    LocalDevice {
        peer: DeviceIdentity::from_secret(secret).peer_id(),
        info: DeviceInfo::new(name).expect("test device names are valid"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn synthetic_ids_parse_as_libp2p_ids() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let id = synthetic_peer_id(&mut rng);
        assert!(id.to_libp2p().is_ok());
        let real = real_device([7; 32], "x").peer;
        assert_eq!(real.as_bytes()[..6], ED25519_PEER_ID_PREFIX);
        assert_eq!(real.as_bytes().len(), id.as_bytes().len());
    }
}
