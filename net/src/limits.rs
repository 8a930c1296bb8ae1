//! How many connections a node holds, so that no flood of peers can take every file
//! descriptor of the process (each TCP connection is one).
//!
//! Two layers: libp2p's connection-limits behaviour refuses connections beyond hard caps
//! (in all, per peer, still handshaking in each direction); below the cap, the driver
//! keeps room for newcomers by closing, for each connection beyond [`keep`], the one that
//! has gone longest without carrying a pairing or device message, sparing paired devices
//! and bootstrap peers. A real pairing thus gets through a flood of idle connections.
//!
//! [`keep`]: ConnectionLimits::keep

/// Connection caps; see the module docs. [`ConnectionLimits::for_descriptors`] sizes
/// them from a process's descriptor limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Established connections in all; beyond this, new ones are refused.
    pub max_established: u32,
    /// Established connections with one peer (a peer dialing us while we dial it makes 2).
    pub max_per_peer: u32,
    /// Incoming connections still in their handshake (each holds a descriptor).
    pub max_pending_incoming: u32,
    /// Our dials still in their handshake.
    pub max_pending_outgoing: u32,
}

/// Peers may hold this many connections each.
const PER_PEER: u32 = 8;
/// Fewer descriptors than this for connections make no usable node.
const MIN_FOR_CONNECTIONS: u64 = 32;
/// Established connections a device needs at most, however many descriptors it may open:
/// its paired devices, a few meeting points and the DHT's routing table fit many times
/// over. Each connection costs the node CPU (handshake, identify, keep-alive) and memory
/// however idle it is, so a higher cap only lets a flood of fresh identities slow the
/// daemon for its user (measured: 1,100 connections held at once on 2 cores made
/// `paircode status` take 3 s).
const MAX_ESTABLISHED: u32 = 256;
/// Handshakes at once in each direction, however many descriptors are left: Noise
/// handshakes are the CPU a flood makes the node spend, and a real peer waits behind them.
const MAX_PENDING: u32 = 32;

impl ConnectionLimits {
    /// Caps for a process that may open `fd_limit` descriptors and needs `reserved` of
    /// them for everything else (its files, sockets to its user, the runtime). Of what is
    /// left, three quarters go to established connections and an eighth to handshakes in
    /// each direction, up to 256 established connections and 32 handshakes each way.
    pub fn for_descriptors(fd_limit: u64, reserved: u64) -> Self {
        let available = fd_limit
            .saturating_sub(reserved)
            .max(MIN_FOR_CONNECTIONS)
            .min(u64::from(u32::MAX));
        let available = available as u32;
        ConnectionLimits {
            max_established: (available / 4 * 3).min(MAX_ESTABLISHED),
            max_per_peer: PER_PEER,
            max_pending_incoming: (available / 8).min(MAX_PENDING),
            max_pending_outgoing: (available / 8).min(MAX_PENDING),
        }
    }

    /// Established connections the driver lets stand before it closes the least recently
    /// useful one for each newcomer: an eighth below the hard cap, so that a burst of
    /// handshakes finishing at once is not refused.
    pub fn keep(&self) -> usize {
        let margin = (self.max_established / 8).max(1);
        self.max_established.saturating_sub(margin).max(1) as usize
    }

    pub(crate) fn behaviour(&self) -> libp2p::connection_limits::Behaviour {
        libp2p::connection_limits::Behaviour::new(
            libp2p::connection_limits::ConnectionLimits::default()
                .with_max_established(Some(self.max_established))
                .with_max_established_per_peer(Some(self.max_per_peer))
                .with_max_pending_incoming(Some(self.max_pending_incoming))
                .with_max_pending_outgoing(Some(self.max_pending_outgoing)),
        )
    }
}

/// Sized for the common default of 1,024 descriptors with 128 kept for the rest.
impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits::for_descriptors(1024, 128)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_fit_in_the_descriptors_left() {
        for (fds, reserved) in [(256, 128), (1024, 128), (65_536, 128), (10, 128)] {
            let l = ConnectionLimits::for_descriptors(fds, reserved);
            let total = u64::from(l.max_established)
                + u64::from(l.max_pending_incoming)
                + u64::from(l.max_pending_outgoing);
            assert!(total <= fds.saturating_sub(reserved).max(MIN_FOR_CONNECTIONS));
            assert!(l.keep() < l.max_established as usize);
            assert!(l.keep() >= 1);
        }
        let l = ConnectionLimits::for_descriptors(256, 128);
        assert_eq!(
            (l.max_established, l.max_pending_incoming, l.keep()),
            (96, 16, 84)
        );
        let l = ConnectionLimits::for_descriptors(65_536, 128);
        assert_eq!(
            (l.max_established, l.max_pending_incoming, l.keep()),
            (256, 32, 224)
        );
    }
}
