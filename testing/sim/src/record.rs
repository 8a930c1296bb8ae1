//! What each simulated peer did, in a form that two runs can compare.
//!
//! Instants are stored as offsets from the run's base so that the same seed replayed from a
//! different base `Instant` must still produce an equal log.

use std::time::Duration;

use paircode_core::{
    Action, DeviceInfo, DiscoveryId, FailReason, PairedDevice, PeerId, Progress, Verification,
};

use crate::clock::VirtualClock;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Send {
        to: PeerId,
        bytes: Vec<u8>,
    },
    Publish {
        key: DiscoveryId,
        until: Duration,
    },
    Unpublish {
        key: DiscoveryId,
    },
    Lookup {
        key: DiscoveryId,
    },
    Progress(Progress),
    Confirm {
        peer: PeerId,
        info: DeviceInfo,
        verification: Verification,
    },
    PrepareStore(Box<PairedDevice>),
    Store(Box<PairedDevice>),
    Completed(Box<PairedDevice>),
    Failed(FailReason),
}

impl Recorded {
    pub fn from_action(action: &Action, clock: &VirtualClock) -> Self {
        match action {
            Action::Send { peer, bytes } => Recorded::Send {
                to: peer.clone(),
                bytes: bytes.clone(),
            },
            Action::Publish { key, until } => Recorded::Publish {
                key: *key,
                until: clock.offset_of(*until),
            },
            Action::Unpublish { key } => Recorded::Unpublish { key: *key },
            Action::Lookup { key } => Recorded::Lookup { key: *key },
            Action::Progress(p) => Recorded::Progress(p.clone()),
            Action::Confirm {
                peer,
                info,
                verification,
            } => Recorded::Confirm {
                peer: peer.clone(),
                info: info.clone(),
                verification: *verification,
            },
            Action::PrepareStore(device) => Recorded::PrepareStore(device.clone()),
            Action::Store(device) => Recorded::Store(device.clone()),
            Action::Completed(device) => Recorded::Completed(device.clone()),
            Action::Failed(reason) => Recorded::Failed(reason.clone()),
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, Recorded::Completed(_) | Recorded::Failed(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub at: Duration,
    pub action: Recorded,
}

/// What happened to one message on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Lost,
    /// No route between the two peers (partitioned, or the address is unknown).
    Unreachable,
    /// The receiver refused the connection (its handshake queue was full, as during a
    /// connection flood); the sender is told one round trip later.
    Refused,
    /// Scheduled for delivery at this offset; `copy` > 0 marks a network duplicate.
    InFlight {
        arrives: Duration,
        copy: u8,
    },
    Delivered {
        copy: u8,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRecord {
    pub at: Duration,
    pub msg: u64,
    pub fate: Fate,
}
