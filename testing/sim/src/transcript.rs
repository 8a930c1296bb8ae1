//! The docs/PROTOCOL.md §3 transcript, rebuilt from the messages on the wire.
//!
//! Core keeps its own helper private; attackers need the real layout to compute MACs that
//! are right in every respect except the key, and the known-answer test needs it to check
//! core against the design rather than against itself.

use paircode_core::keys::{Transcript, TranscriptBuilder};
use paircode_core::messages::{Challenge, Join};
use paircode_core::{PeerId, PROTOCOL_VERSION};

/// `SHA-256(version ‖ discovery_id ‖ nonce_j ‖ eph_j ‖ info_j ‖ peer_j ‖ nonce_i ‖ eph_i ‖
/// info_i ‖ peer_i)`, each field prefixed with its length as a big-endian u32.
pub fn transcript(
    join: &Join,
    joiner: &PeerId,
    challenge: &Challenge,
    initiator: &PeerId,
) -> Transcript {
    TranscriptBuilder::default()
        .field(&[PROTOCOL_VERSION])
        .field(&join.discovery_id.0)
        .field(&join.nonce.0)
        .field(&join.eph.0)
        .field(join.info.name.as_bytes())
        .field(joiner.as_bytes())
        .field(&challenge.nonce.0)
        .field(&challenge.eph.0)
        .field(challenge.info.name.as_bytes())
        .field(initiator.as_bytes())
        .finish()
}
