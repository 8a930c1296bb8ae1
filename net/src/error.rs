//! Errors an embedder sees. Pairing failures map the core's `FailReason`s one to one where
//! the user can act on the difference.

use std::sync::Arc;

use libp2p::Multiaddr;
use paircode_core::device::DeviceInfoError;
use paircode_core::{FailReason, PeerId, RejectReason};

/// Why a node call or a pairing session failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The joiner's search ended without any device proving the code.
    #[error("no device answered with this code")]
    NoDeviceAnswered,
    /// The code's lifetime ended before a pairing completed.
    #[error("the code has expired")]
    CodeExpired,
    /// The other side turned the pairing down.
    #[error("{peer} rejected the pairing: {reason}")]
    Rejected {
        /// Who rejected it.
        peer: PeerId,
        /// Why, as it said.
        reason: RejectReason,
    },
    /// This side's user declined.
    #[error("the pairing with {peer} was declined here")]
    Declined {
        /// The peer that was declined.
        peer: PeerId,
    },
    /// The peer proved the code, then went silent.
    #[error("{peer} proved the code but its answer never arrived")]
    NoAnswer {
        /// The silent peer.
        peer: PeerId,
    },
    /// [`crate::PairingHandle::cancel`], or the node shut down during the session.
    #[error("the pairing was cancelled")]
    Cancelled,
    /// Nobody answered the confirm prompt in time.
    #[error("{peer} proved the code, but the pairing was not confirmed in time")]
    ConfirmTimeout {
        /// The joiner that waited.
        peer: PeerId,
    },
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
