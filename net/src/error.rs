//! Errors an embedder sees. A failed pairing carries the core's [`FailReason`] itself, as
//! quinn carries quinn-proto's errors: one type, one wording, from the state machine to the
//! user.

use std::sync::Arc;

use libp2p::Multiaddr;
use paircode_core::device::DeviceInfoError;
pub use paircode_core::{FailReason, RejectReason};

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The pairing ended without a paired device, for the core's reason.
    #[error(transparent)]
    Pairing(#[from] FailReason),
    #[error("a pairing session is already running on this node")]
    Busy,
    #[error("invalid device name: {0}")]
    InvalidName(#[from] DeviceInfoError),
    #[error("transport: {0}")]
    Transport(Arc<TransportError>),
    #[error("the node has shut down")]
    NodeStopped,
}

/// Why the node could not be brought up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    #[error("noise: {0}")]
    Noise(#[from] libp2p::noise::Error),
    #[error("mDNS: {0}")]
    Mdns(#[source] std::io::Error),
    #[error("bootstrap address {0} does not end in /p2p/<peer id>")]
    BootstrapWithoutPeerId(Multiaddr),
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        Error::Transport(Arc::new(e))
    }
}
