//! Device identity: an Ed25519 key whose public half is the libp2p PeerId, so the identity
//! the Noise handshake authenticates is the one the pairing transcript binds.

use libp2p_identity::{ed25519, Keypair};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

/// Upper bound on an encoded peer id (an identity multihash of an Ed25519 key is 38 bytes;
/// other key types hash to 34).
pub const MAX_PEER_ID_LEN: usize = 64;

/// A peer as the transport authenticated it: the bytes of a libp2p PeerId.
///
/// Core keeps its own type so it never depends on a swarm or runtime; a libp2p PeerId
/// converts into it and back.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(Vec<u8>);

/// Why bytes are not a peer id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerIdError {
    /// Longer than [`MAX_PEER_ID_LEN`] bytes (this long).
    #[error("peer id is {0} bytes long, at most {MAX_PEER_ID_LEN} are allowed")]
    TooLong(usize),
    /// No bytes at all.
    #[error("peer id is empty")]
    Empty,
    /// Not the encoding of a libp2p PeerId.
    #[error("not a valid libp2p peer id")]
    NotLibp2p,
}

impl PeerId {
    /// The peer with these bytes; only the length is checked, so that synthetic ids work in
    /// simulations.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PeerIdError> {
        match bytes.len() {
            0 => Err(PeerIdError::Empty),
            n if n > MAX_PEER_ID_LEN => Err(PeerIdError::TooLong(n)),
            _ => Ok(PeerId(bytes.to_vec())),
        }
    }

    /// The bytes of the libp2p PeerId (a multihash): what the transcript binds.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The libp2p PeerId these bytes encode.
    pub fn to_libp2p(&self) -> Result<libp2p_identity::PeerId, PeerIdError> {
        libp2p_identity::PeerId::from_bytes(&self.0).map_err(|_| PeerIdError::NotLibp2p)
    }

    /// The last characters of the base58 form, as shown to people.
    pub fn short(&self) -> String {
        let full = self.to_string();
        let skip = full.chars().count().saturating_sub(8);
        full.chars().skip(skip).collect()
    }
}

impl From<libp2p_identity::PeerId> for PeerId {
    fn from(id: libp2p_identity::PeerId) -> Self {
        PeerId(id.to_bytes())
    }
}

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_libp2p() {
            Ok(id) => write!(f, "{id}"),
            Err(_) => {
                for b in &self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::fmt::Debug for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PeerId({self})")
    }
}

/// This device's long-term key. The secret is wiped on drop (the libp2p key type does it)
/// and never printed.
#[derive(Clone)]
pub struct DeviceIdentity {
    keypair: ed25519::Keypair,
}

impl DeviceIdentity {
    /// A new identity from the caller's RNG.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(secret.as_mut());
        Self::from_secret(*secret)
    }

    /// Rebuilds the identity from its 32-byte Ed25519 secret (as stored at rest).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let mut secret = secret;
        let secret = ed25519::SecretKey::try_from_bytes(&mut secret)
            .expect("any 32 bytes are an Ed25519 secret key");
        DeviceIdentity {
            keypair: ed25519::Keypair::from(secret),
        }
    }

    /// The 32-byte Ed25519 secret, to store at rest.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(self.keypair.secret().as_ref());
        out
    }

    /// The PeerId this identity authenticates as.
    pub fn peer_id(&self) -> PeerId {
        PeerId::from(self.libp2p_keypair().public().to_peer_id())
    }

    /// The same key as a libp2p keypair, for the transport.
    pub fn libp2p_keypair(&self) -> Keypair {
        Keypair::from(self.keypair.clone())
    }
}

impl std::fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceIdentity")
            .field("peer_id", &self.peer_id())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn peer_id_matches_libp2p() {
        let identity = DeviceIdentity::generate(&mut ChaCha20Rng::seed_from_u64(1));
        let libp2p_id = identity.libp2p_keypair().public().to_peer_id();
        assert_eq!(identity.peer_id(), PeerId::from(libp2p_id));
        assert_eq!(identity.peer_id().to_libp2p().unwrap(), libp2p_id);
        assert_eq!(identity.peer_id().to_string(), libp2p_id.to_string());
    }

    #[test]
    fn secret_round_trips() {
        let identity = DeviceIdentity::generate(&mut ChaCha20Rng::seed_from_u64(2));
        let again = DeviceIdentity::from_secret(*identity.secret_bytes());
        assert_eq!(identity.peer_id(), again.peer_id());
        assert!(!format!("{identity:?}").contains(&format!("{:?}", *identity.secret_bytes())));
    }

    #[test]
    fn peer_id_bounds() {
        assert_eq!(PeerId::from_bytes(&[]), Err(PeerIdError::Empty));
        assert_eq!(PeerId::from_bytes(&[0; 65]), Err(PeerIdError::TooLong(65)));
        assert_eq!(PeerId::from_bytes(&[1, 2]).unwrap().to_string(), "0102");
    }
}
