//! What the state machines ask their driver to do.

use std::time::Instant;

use crate::device::{DeviceInfo, PairedDevice};
use crate::identity::PeerId;
use crate::keys::DiscoveryId;
use crate::messages::RejectReason;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Deliver these bytes to the peer over `/paircode/pair/1`, connecting first if needed.
    Send { peer: PeerId, bytes: Vec<u8> },
    /// Announce the session in the DHT under `key` until `until`.
    Publish { key: DiscoveryId, until: Instant },
    /// The session is over: withdraw the announcement.
    Unpublish { key: DiscoveryId },
    /// Look `key` up in the DHT and report the providers through `handle_peer`.
    Lookup { key: DiscoveryId },
    /// Something happened worth showing the user.
    Progress(Progress),
    /// Ask the user whether to pair with this device; answer with `handle_confirm`.
    Confirm { peer: PeerId, info: DeviceInfo },
    /// Paired. Terminal.
    Completed(Box<PairedDevice>),
    /// Not paired. Terminal.
    Failed(FailReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A joiner sent `Join` to this peer.
    Contacting { peer: PeerId },
    /// The peer proved it knows the code; the handshake is finishing.
    Verified { peer: PeerId, info: DeviceInfo },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailReason {
    #[error("the code has expired")]
    CodeExpired,
    #[error("no device answered with this code")]
    NoDeviceAnswered,
    #[error("{peer} rejected the pairing: {reason}")]
    Rejected { peer: PeerId, reason: RejectReason },
    #[error("the pairing with {peer} was declined here")]
    Declined { peer: PeerId },
    #[error("{peer} proved the code but never gave its answer")]
    NoAnswer { peer: PeerId },
    #[error("the pairing was cancelled")]
    Cancelled,
    #[error("{peer} proved the code, but nobody answered whether to pair with it in time")]
    ConfirmTimeout { peer: PeerId },
}
