//! Errors an embedder sees. Pairing failures map the core's `FailReason`s one to one where
//! the user can act on the difference.

use std::sync::Arc;

use libp2p::Multiaddr;
use paircode_core::device::DeviceInfoError;
use paircode_core::{FailReason, PeerId, RejectReason};

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("no device answered with this code")]
    NoDeviceAnswered,
    #[error("the code has expired")]
    CodeExpired,
    #[error("{peer} rejected the pairing: {reason}")]
    Rejected { peer: PeerId, reason: RejectReason },
    #[error("the pairing with {peer} was declined here")]
    Declined { peer: PeerId },
    #[error("{peer} proved the code but its answer never arrived")]
    NoAnswer { peer: PeerId },
    #[error("the pairing was cancelled")]
    Cancelled,
    #[error("{peer} proved the code, but the pairing was not confirmed in time")]
    ConfirmTimeout { peer: PeerId },
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

impl From<FailReason> for Error {
    fn from(reason: FailReason) -> Self {
        match reason {
            FailReason::CodeExpired => Error::CodeExpired,
            FailReason::NoDeviceAnswered => Error::NoDeviceAnswered,
            FailReason::Rejected { peer, reason } => Error::Rejected { peer, reason },
            FailReason::Declined { peer } => Error::Declined { peer },
            FailReason::NoAnswer { peer } => Error::NoAnswer { peer },
            FailReason::Cancelled => Error::Cancelled,
            FailReason::ConfirmTimeout { peer } => Error::ConfirmTimeout { peer },
        }
    }
}
