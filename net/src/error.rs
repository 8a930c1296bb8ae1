//! Errors an embedder sees. A failed pairing carries the core's [`FailReason`] itself, as
//! quinn carries quinn-proto's errors: one type, one wording, from the state machine to the
//! user.

use std::sync::Arc;

use libp2p::Multiaddr;
use paircode_core::device::DeviceInfoError;
pub use paircode_core::{FailReason, RejectReason};

/// Why a node call or a pairing session failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The pairing ended without a paired device, for the core's reason.
    #[error(transparent)]
    Pairing(#[from] FailReason),
    /// A node runs one session at a time.
    #[error("a pairing session is already running on this node")]
    Busy,
    /// The configured device name cannot be shown to the other side.
    #[error("invalid device name: {0}")]
    InvalidName(#[from] DeviceInfoError),
    /// The node could not be brought up.
    #[error("transport: {0}")]
    Transport(Arc<TransportError>),
    /// The node is gone (shut down, or every handle dropped).
    #[error("the node has shut down")]
    NodeStopped,
}

/// Why the node could not be brought up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// What the transport said.
        reason: String,
    },
    /// The Noise keys could not be set up from the identity.
    #[error("noise: {0}")]
    Noise(#[from] libp2p::noise::Error),
    /// mDNS could not start (e.g. no multicast socket).
    #[error("mDNS: {0}")]
    Mdns(#[source] std::io::Error),
    /// A bootstrap address must name its peer.
    #[error("bootstrap address {0} does not end in /p2p/<peer id>")]
    BootstrapWithoutPeerId(Multiaddr),
    /// A meeting point's address must name its peer.
    #[error("meeting point address {0} does not end in /p2p/<peer id>")]
    RelayWithoutPeerId(Multiaddr),
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        Error::Transport(Arc::new(e))
    }
}
