//! Presence I/O: translates the embedder's commands and what the swarm reports into
//! inputs of the core's [`Presence`], and its actions into swarm calls and node events.
//! Which devices to greet, seek, dial or report is decided there, not here; the driver
//! only keeps blind redials from taking every handshake slot (see [`MAX_SEEK_DIALS`]).

use paircode_core::PresenceAction;

use super::*;
use crate::node::PresenceCommand;

/// A `Seek` dials only while fewer dials of ours than this are under way; `presence`
/// seeks again every `PRESENCE_INTERVAL`, and a device found by discovery (`Dial`) is
/// dialed whatever the count.
const MAX_SEEK_DIALS: usize = 8;

/// The presence machine of a swarm that may already have connections (a peer can dial in
/// while the node is still waiting for its listeners).
pub(super) fn initial_presence<B: NetworkBehaviour>(swarm: &Swarm<B>) -> Presence {
    let mut presence = Presence::new();
    let now = Instant::now();
    for peer in swarm.connected_peers() {
        presence.handle_connected(&to_core(peer), now);
    }
    presence
}

impl<M> Driver<M>
where
    M: NetworkBehaviour<ToSwarm = mdns::Event> + Send + 'static,
{
    pub(super) fn on_presence_command(&mut self, command: PresenceCommand) {
        let now = Instant::now();
        // Only peers the swarm can address.
        let valid = |peer: &PeerId| peer.to_libp2p().is_ok();
        self.spare_paired(&command);
        match command {
            PresenceCommand::SetPaired(peers) => {
                let kept: HashSet<Libp2pPeerId> =
                    peers.iter().filter_map(|p| p.to_libp2p().ok()).collect();
                let dropped: Vec<Libp2pPeerId> = self
                    .rendezvous_peers()
                    .into_iter()
                    .filter(|p| !kept.contains(p))
                    .collect();
                for peer in dropped {
                    self.set_rendezvous(peer, None);
                }
                self.presence
                    .set_paired(peers.into_iter().filter(valid), now);
            }
            PresenceCommand::Add(peer) if valid(&peer) => self.presence.add_paired(peer, now),
            PresenceCommand::Remove(peer) => {
                if let Ok(p) = peer.to_libp2p() {
                    self.set_rendezvous(p, None);
                }
                self.presence.remove_paired(&peer)
            }
            PresenceCommand::NotifyUnpaired(peer) if valid(&peer) => {
                if let Ok(p) = peer.to_libp2p() {
                    self.set_rendezvous(p, None);
                }
                self.presence.unpair(peer, now)
            }
            PresenceCommand::Add(_) | PresenceCommand::NotifyUnpaired(_) => {}
        }
        self.drain_presence();
    }

    pub(super) fn presence_connected(&mut self, peer: Libp2pPeerId) {
        self.presence
            .handle_connected(&to_core(&peer), Instant::now());
        self.drain_presence();
    }

    pub(super) fn presence_disconnected(&mut self, peer: Libp2pPeerId) {
        self.presence
            .handle_disconnected(&to_core(&peer), Instant::now());
        self.drain_presence();
    }

    /// mDNS found these peers (their addresses are learnt already).
    pub(super) fn presence_found(&mut self, peers: &[Libp2pPeerId]) {
        let now = Instant::now();
        for peer in peers {
            self.presence.handle_found(&to_core(peer), now);
        }
        self.drain_presence();
    }

    /// A DHT search for an absent device returned these peers.
    pub(super) fn on_closest_peers(&mut self, peers: Vec<kad::PeerInfo>) {
        let now = Instant::now();
        for info in peers {
            for addr in info.addrs {
                self.learn_address(info.peer_id, addr);
            }
            self.presence.handle_found(&to_core(&info.peer_id), now);
        }
        self.drain_presence();
    }

    pub(super) fn presence_lookup_done(&mut self) {
        self.presence.handle_lookup_done(Instant::now());
        self.drain_presence();
    }

    pub(super) fn on_device_event(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let now = Instant::now();
                self.connections.used(&peer, now);
                if let Err(e) = self.presence.handle_message(&to_core(&peer), &request, now) {
                    tracing::debug!(%peer, "ignoring a device message: {e}");
                }
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .device
                    .send_response(channel, Vec::new());
                self.drain_presence();
            }
            Event::Message {
                message: Message::Response { request_id, .. },
                ..
            } => {
                if let Some((peer, message)) = self.device_requests.remove(&request_id) {
                    self.presence
                        .handle_acknowledged(&to_core(&peer), message, Instant::now());
                    self.drain_presence();
                    self.leave_relay(peer);
                }
            }
            Event::OutboundFailure { request_id, .. } => {
                // `presence` sends whatever is still owed again at its next tick.
                if let Some((peer, _)) = self.device_requests.remove(&request_id) {
                    self.leave_relay(peer);
                }
            }
            Event::InboundFailure { .. } | Event::ResponseSent { .. } => {}
        }
    }

    /// Carries out everything `presence` asks for.
    pub(super) fn drain_presence(&mut self) {
        while let Some(action) = self.presence.poll_action() {
            match action {
                PresenceAction::Send { peer, message } => {
                    let Ok(peer) = peer.to_libp2p() else { continue };
                    let id = self
                        .swarm
                        .behaviour_mut()
                        .device
                        .send_request(&peer, message.encode());
                    self.device_requests.insert(id, (peer, message));
                }
                PresenceAction::Seek { peer } => {
                    let Ok(peer) = peer.to_libp2p() else { continue };
                    // A blind redial of an absent device can hang until the transport's
                    // timeout (a NAT that drops the SYN): with many absent devices these
                    // dials filled the handshake slots (`limits`) and DCUtR's hole punch
                    // right after a pairing was refused (measured: 3 of ~120 benchmark
                    // joins never went direct). The rest wait for the next round.
                    let busy = self.our_dials.len() >= MAX_SEEK_DIALS;
                    if !busy && !self.our_dials.values().any(|p| *p == peer) {
                        self.dial(peer);
                    }
                }
                PresenceAction::Lookup { peer } => {
                    let Ok(peer) = peer.to_libp2p() else {
                        self.presence.handle_lookup_done(Instant::now());
                        continue;
                    };
                    let query = self.swarm.behaviour_mut().kad.get_closest_peers(peer);
                    self.presence_lookups.insert(query);
                    // A device behind a NAT is in nobody's routing table: its pair's
                    // rendezvous record is how it is found across networks.
                    self.seek_rendezvous(peer);
                }
                PresenceAction::Dial { peer } => {
                    let Ok(peer) = peer.to_libp2p() else { continue };
                    self.dial(peer);
                }
                PresenceAction::Online(peer) => self.emit(NodeEvent::PairedOnline(peer)),
                PresenceAction::Offline(peer) => self.emit(NodeEvent::PairedOffline(peer)),
                PresenceAction::UnpairedByPeer(peer) => self.emit(NodeEvent::UnpairedByPeer(peer)),
                PresenceAction::UnpairDelivered(peer) => {
                    self.emit(NodeEvent::UnpairDelivered(peer))
                }
                PresenceAction::ToldNotPaired(peer) => self.emit(NodeEvent::ToldNotPaired(peer)),
            }
        }
    }
}
