//! What a node reports about reaching beyond its LAN: its meeting points, whether each
//! holds a relay reservation, and whether each connected peer is reached directly or
//! through a relay.

use std::time::Duration;

use libp2p::Multiaddr;
use paircode_core::PeerId;

/// A snapshot from [`Node::reach`](crate::Node::reach).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReachStatus {
    /// One entry per configured meeting point, in configuration order.
    pub meeting_points: Vec<MeetingPointStatus>,
    /// Our address as AutoNAT confirmed it publicly reachable, if it did.
    pub public_addr: Option<Multiaddr>,
    /// Every connected peer (meeting points excluded) and how it is reached.
    pub connections: Vec<(PeerId, ConnectionPath)>,
    /// Every connected peer (meeting points excluded) and how many of its connections go
    /// through a relay. Once a direct connection exists the relayed ones are closed, so a
    /// peer reached directly has 0 here soon after.
    pub relayed_connections: Vec<(PeerId, usize)>,
}

impl ReachStatus {
    /// How `peer` is reached now; `None` if it is not connected.
    pub fn path(&self, peer: &PeerId) -> Option<ConnectionPath> {
        self.connections
            .iter()
            .find(|(p, _)| p == peer)
            .map(|(_, path)| *path)
    }

    /// How many of `peer`'s connections go through a relay (0 if not connected).
    pub fn relayed_connections(&self, peer: &PeerId) -> usize {
        self.relayed_connections
            .iter()
            .find(|(p, _)| p == peer)
            .map_or(0, |(_, n)| *n)
    }
}

/// One meeting point and where we stand with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingPointStatus {
    /// Its address, as configured (ending in `/p2p/<peer id>`).
    pub addr: Multiaddr,
    /// Where we stand.
    pub state: MeetingPointState,
}

/// Where a node stands with one meeting point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeetingPointState {
    /// Waiting for a listen address to dial from, dialing, or exchanging identify.
    Connecting,
    /// Connected; the relay reservation is requested.
    Reserving,
    /// A relay slot is held: peers can reach us at `circuit`.
    Reserved {
        /// Our address through this meeting point.
        circuit: Multiaddr,
    },
    /// The last attempt failed; the next one starts in `retry_in` (zero: it is under
    /// way).
    Unreachable {
        /// What went wrong, as the transport or the relay said it.
        error: String,
        /// Until the next attempt.
        retry_in: Duration,
    },
}

/// How a connected peer is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionPath {
    /// At least one connection goes straight to the peer (LAN, public address, or a
    /// hole punched by DCUtR).
    Direct,
    /// Every connection goes through a meeting point's relay.
    Relayed,
}

impl ConnectionPath {
    /// `"direct"` or `"relayed"`, as the CLI's JSON says it.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionPath::Direct => "direct",
            ConnectionPath::Relayed => "relayed",
        }
    }
}
