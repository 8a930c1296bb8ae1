//! The driver's bookkeeping of established connections: when each last carried a pairing
//! or device message, and which one makes room when there are too many (see `limits`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::swarm::{ConnectionId, NetworkBehaviour};
use libp2p::{mdns, PeerId as Libp2pPeerId};

use super::Driver;
use crate::node::PresenceCommand;

/// How often closings for room are reported: a flood must not become a flood of log lines.
const REPORT_EVERY: Duration = Duration::from_secs(60);

struct Open {
    peer: Libp2pPeerId,
    last_useful: Instant,
}

pub(super) struct Connections {
    open: HashMap<ConnectionId, Open>,
    keep: usize,
    /// Paired devices, bootstrap peers and meeting points: never closed for room.
    spared: HashSet<Libp2pPeerId>,
    paired: HashSet<Libp2pPeerId>,
    bootstrap: HashSet<Libp2pPeerId>,
    /// Closing one would drop our reservation and every circuit through it.
    meeting_points: HashSet<Libp2pPeerId>,
    /// Connections closed for room since the last report, and when that was.
    closed_for_room: u64,
    reported_at: Option<Instant>,
}

impl Connections {
    pub(super) fn new(keep: usize) -> Self {
        Connections {
            open: HashMap::new(),
            keep,
            spared: HashSet::new(),
            paired: HashSet::new(),
            bootstrap: HashSet::new(),
            meeting_points: HashSet::new(),
            closed_for_room: 0,
            reported_at: None,
        }
    }

    pub(super) fn set_bootstrap(&mut self, peers: impl IntoIterator<Item = Libp2pPeerId>) {
        self.bootstrap = peers.into_iter().collect();
        self.update_spared();
    }

    pub(super) fn set_meeting_points(&mut self, peers: impl IntoIterator<Item = Libp2pPeerId>) {
        self.meeting_points = peers.into_iter().collect();
        self.update_spared();
    }

    pub(super) fn set_paired(&mut self, peers: impl IntoIterator<Item = Libp2pPeerId>) {
        self.paired = peers.into_iter().collect();
        self.update_spared();
    }

    pub(super) fn add_paired(&mut self, peer: Libp2pPeerId) {
        self.paired.insert(peer);
        self.update_spared();
    }

    pub(super) fn remove_paired(&mut self, peer: &Libp2pPeerId) {
        self.paired.remove(peer);
        self.update_spared();
    }

    /// A paired device, a bootstrap peer or a meeting point.
    pub(super) fn is_spared(&self, peer: &Libp2pPeerId) -> bool {
        self.spared.contains(peer)
    }

    fn update_spared(&mut self) {
        self.spared = self
            .paired
            .iter()
            .chain(&self.bootstrap)
            .chain(&self.meeting_points)
            .copied()
            .collect();
    }

    /// A new connection; returns the one to close to make room for it, if any.
    pub(super) fn opened(
        &mut self,
        id: ConnectionId,
        peer: Libp2pPeerId,
        now: Instant,
    ) -> Option<ConnectionId> {
        self.open.insert(
            id,
            Open {
                peer,
                last_useful: now,
            },
        );
        if self.open.len() <= self.keep {
            return None;
        }
        let victim = self
            .open
            .iter()
            .filter(|(_, c)| !self.spared.contains(&c.peer))
            .min_by_key(|(_, c)| c.last_useful)
            .map(|(id, _)| *id)?;
        // Forgotten now: the swarm reports the closing later, and until then the victim
        // must not be picked again.
        self.open.remove(&victim);
        self.closed_for_room += 1;
        Some(victim)
    }

    pub(super) fn closed(&mut self, id: ConnectionId) {
        self.open.remove(&id);
    }

    /// `peer` sent a pairing or device message: its connections are worth keeping.
    pub(super) fn used(&mut self, peer: &Libp2pPeerId, now: Instant) {
        for c in self.open.values_mut().filter(|c| c.peer == *peer) {
            c.last_useful = now;
        }
    }

    /// How many connections were closed for room since the last report, once per
    /// [`REPORT_EVERY`] and only if any were.
    pub(super) fn report(&mut self, now: Instant) -> Option<u64> {
        if self.closed_for_room == 0 {
            return None;
        }
        if self
            .reported_at
            .is_some_and(|at| now.duration_since(at) < REPORT_EVERY)
        {
            return None;
        }
        self.reported_at = Some(now);
        Some(std::mem::take(&mut self.closed_for_room))
    }
}

impl<M> Driver<M>
where
    M: NetworkBehaviour<ToSwarm = mdns::Event> + Send + 'static,
{
    /// Lets `keep` connections stand before closing one for each newcomer.
    pub(crate) fn keep_connections(&mut self, keep: usize) {
        self.connections.keep = keep;
    }

    pub(super) fn connection_opened(&mut self, peer: Libp2pPeerId, id: ConnectionId) {
        // Our dial, if it was one, is over: a finished dial left here would grow the
        // table forever and make the peer look as if still being dialed.
        self.our_dials.remove(&id);
        let now = Instant::now();
        if let Some(victim) = self.connections.opened(id, peer, now) {
            self.swarm.close_connection(victim);
        }
        if let Some(closed) = self.connections.report(now) {
            tracing::info!(
                closed,
                keep = self.connections.keep,
                "closed idle connections to make room for new ones"
            );
        }
    }

    /// Paired devices' connections are never closed for room.
    pub(super) fn spare_paired(&mut self, command: &PresenceCommand) {
        let libp2p = |peer: &paircode_core::PeerId| peer.to_libp2p().ok();
        match command {
            PresenceCommand::SetPaired(peers) => {
                self.connections.set_paired(peers.iter().filter_map(libp2p));
            }
            PresenceCommand::Add(peer) => {
                if let Some(peer) = libp2p(peer) {
                    self.connections.add_paired(peer);
                }
            }
            PresenceCommand::Remove(peer) | PresenceCommand::NotifyUnpaired(peer) => {
                if let Some(peer) = libp2p(peer) {
                    self.connections.remove_paired(&peer);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_useful_unspared_connection_makes_room() {
        let now = Instant::now();
        let mut c = Connections::new(2);
        let (paired, useful, idle, new) = (
            Libp2pPeerId::random(),
            Libp2pPeerId::random(),
            Libp2pPeerId::random(),
            Libp2pPeerId::random(),
        );
        c.set_paired([paired]);
        let ids: Vec<ConnectionId> = (1..=4).map(ConnectionId::new_unchecked).collect();
        assert_eq!(c.opened(ids[0], paired, now), None);
        assert_eq!(c.opened(ids[1], useful, now + Duration::from_secs(1)), None);
        assert_eq!(
            c.opened(ids[2], idle, now + Duration::from_secs(2)),
            Some(ids[1])
        );
        c.used(&idle, now + Duration::from_secs(3));
        // The paired device's connection is the oldest but is spared.
        assert_eq!(
            c.opened(ids[3], new, now + Duration::from_secs(4)),
            Some(ids[2])
        );
        assert_eq!(c.report(now), Some(2));
        assert_eq!(c.report(now + Duration::from_secs(5)), None);
    }
}
