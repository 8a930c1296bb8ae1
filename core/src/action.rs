//! What the state machines ask their driver to do.

use std::time::Instant;

use crate::device::{DeviceInfo, PairedDevice};
use crate::identity::PeerId;
use crate::keys::DiscoveryId;
use crate::messages::RejectReason;
use crate::verification::Verification;

/// One thing for the driver to do, returned by `poll_action`. Carry each out in order
/// before feeding the next input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Deliver these bytes to the peer over `/paircode/pair/1`, connecting first if needed.
    Send {
        /// The recipient.
        peer: PeerId,
        /// One encoded message.
        bytes: Vec<u8>,
    },
    /// Announce the session in the DHT under `key` until `until`.
    Publish {
        /// The session's public name.
        key: DiscoveryId,
        /// When the code expires; the announcement is worthless after it.
        until: Instant,
    },
    /// The session is over: withdraw the announcement.
    Unpublish {
        /// What was published.
        key: DiscoveryId,
    },
    /// Look `key` up in the DHT and report the providers through `handle_peer`.
    Lookup {
        /// The session looked for.
        key: DiscoveryId,
    },
    /// Something happened worth showing the user.
    Progress(Progress),
    /// Ask the user whether to pair with this device, showing its name and the
    /// verification string; answer with `handle_confirm`. An initiator asks once the
    /// joiner proved the code; a joiner once the initiator did, before it proves the code
    /// back (so a "no" leaves nothing on either side). Skipped with `Config::auto_accept`.
    Confirm {
        /// The device that proved the code.
        peer: PeerId,
        /// What it says of itself.
        info: DeviceInfo,
        /// What the other device's screen shows too, if nobody is in the middle.
        verification: Verification,
    },
    /// `Store` may follow with this pairing: on a joiner (with its `Prove`) once the
    /// initiator accepts; on an initiator (with the `Challenge` to one of the session's
    /// first two `Join`s, before anything is proven) once that joiner proves the code and
    /// the user accepts. The embedder may prepare that save now (write it durably under a
    /// temporary name, so that `Store` has only to put it in place) while the messages
    /// travel; nothing of it may count as paired before `Store`. Ignoring it is correct; a
    /// prepared save the session does not ask for is discarded.
    PrepareStore(Box<PairedDevice>),
    /// Save this pairing durably now, then answer with `handle_stored`. The pairing
    /// counts only once it is stored: an initiator acknowledges it to the joiner after a
    /// successful save (and rejects the joiner if the save fails or takes longer than
    /// `Config::store_timeout`), a joiner completes after it. Comes before `Completed`.
    Store(Box<PairedDevice>),
    /// Paired, and stored on this side (`Store` was answered with success). Terminal.
    Completed(Box<PairedDevice>),
    /// Not paired. Terminal.
    Failed(FailReason),
}

/// A step of the handshake worth showing the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A joiner sent `Join` to this peer.
    Contacting {
        /// The peer asked.
        peer: PeerId,
    },
    /// The peer proved it knows the code; the handshake is finishing.
    Verified {
        /// The peer that proved the code.
        peer: PeerId,
        /// What it says of itself.
        info: DeviceInfo,
    },
}

/// Why a session ended without pairing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailReason {
    /// The code's lifetime ran out (initiator), or the initiator proved it had (joiner:
    /// a valid `Challenge` before, or `Done.proof`).
    #[error("the code has expired")]
    CodeExpired,
    /// The joiner searched for its whole `join_timeout` without finding the initiator.
    #[error("no device answered with this code")]
    NoDeviceAnswered,
    /// The initiator turned the joiner's proven attempt down.
    #[error("{peer} rejected the pairing: {reason}")]
    Rejected {
        /// The initiator.
        peer: PeerId,
        /// What it said.
        reason: RejectReason,
    },
    /// The local user answered no to `Action::Confirm`.
    #[error("the pairing with {peer} was declined here")]
    Declined {
        /// The device that was declined.
        peer: PeerId,
    },
    /// The joiner proved the code but the initiator's verdict never came.
    #[error("{peer} proved the code but never gave its answer")]
    NoAnswer {
        /// The initiator that went silent.
        peer: PeerId,
    },
    /// The local user cancelled the session.
    #[error("the pairing was cancelled")]
    Cancelled,
    /// This device could not store the pairing (`handle_stored` said so, or did not come
    /// within `store_timeout`). An initiator told the joiner; a joiner's initiator may
    /// already hold the pairing, and forgets it when the two next meet (presence).
    #[error("the pairing with {peer} could not be saved on this device")]
    NotStored {
        /// The device whose pairing was not stored.
        peer: PeerId,
    },
    /// The local user did not answer `Action::Confirm` within `confirm_timeout`.
    #[error("{peer} proved the code, but nobody answered whether to pair with it in time")]
    ConfirmTimeout {
        /// The device waiting for the answer.
        peer: PeerId,
    },
}
