//! Paired devices after pairing: keep in touch with the connected ones (so their
//! connections never go idle and "online" means reachable), look for the absent ones
//! through mDNS and the DHT, and deliver unpair notices.

use super::*;
use crate::device::DeviceMessage;

/// Well inside the idle-connection timeout, and cheap: one tiny request per device.
const PRESENCE_INTERVAL: Duration = Duration::from_secs(10);
/// DHT searches for absent devices running at once.
const MAX_PRESENCE_LOOKUPS: usize = 8;

impl<M> Driver<M>
where
    M: NetworkBehaviour<ToSwarm = mdns::Event> + Send + 'static,
{
    fn wants(&self, peer: &Libp2pPeerId) -> bool {
        self.paired.contains(peer) || self.unpair_pending.contains(peer)
    }

    pub(super) fn presence_tick(&mut self, now: Instant) {
        let targets: Vec<Libp2pPeerId> = self
            .paired
            .iter()
            .chain(self.unpair_pending.iter())
            .copied()
            .collect();
        self.next_presence = (!targets.is_empty()).then(|| now + PRESENCE_INTERVAL);
        for peer in targets {
            if self.swarm.is_connected(&peer) {
                self.greet(peer);
            } else {
                self.reach(peer);
            }
        }
    }

    fn greet(&mut self, peer: Libp2pPeerId) {
        let message = match self.unpair_pending.contains(&peer) {
            true => DeviceMessage::Unpaired,
            false => DeviceMessage::Hello,
        };
        let id = self
            .swarm
            .behaviour_mut()
            .device
            .send_request(&peer, message.encode());
        if message == DeviceMessage::Unpaired {
            self.unpair_requests.insert(id, peer);
        }
    }

    /// Dials an absent device at the addresses we know and asks the DHT where it is.
    fn reach(&mut self, peer: Libp2pPeerId) {
        if !self.our_dials.values().any(|p| *p == peer) {
            self.dial(peer);
        }
        if self.presence_lookups.len() < MAX_PRESENCE_LOOKUPS {
            let query = self.swarm.behaviour_mut().kad.get_closest_peers(peer);
            self.presence_lookups.insert(query);
        }
    }

    /// mDNS found these peers: dial those that are paired devices.
    pub(super) fn reach_known_devices(&mut self, found: &[Libp2pPeerId]) {
        for peer in found {
            if self.wants(peer) && !self.swarm.is_connected(peer) {
                self.dial(*peer);
            }
        }
    }

    pub(super) fn on_closest_peers(&mut self, peers: Vec<kad::PeerInfo>) {
        for info in peers {
            if !self.wants(&info.peer_id) || self.swarm.is_connected(&info.peer_id) {
                continue;
            }
            for addr in info.addrs {
                self.learn_address(info.peer_id, addr);
            }
            self.dial(info.peer_id);
        }
    }

    pub(super) fn on_connected(&mut self, peer: Libp2pPeerId) {
        if self.unpair_pending.contains(&peer) {
            self.greet(peer);
        }
    }

    pub(super) fn notify_unpaired(&mut self, peer: Libp2pPeerId) {
        self.paired.remove(&peer);
        self.online.remove(&peer);
        self.unpair_pending.insert(peer);
        if self.swarm.is_connected(&peer) {
            self.greet(peer);
        } else {
            self.reach(peer);
        }
        self.next_presence
            .get_or_insert_with(|| Instant::now() + PRESENCE_INTERVAL);
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
                if DeviceMessage::decode(&request) == Some(DeviceMessage::Unpaired)
                    && self.paired.remove(&peer)
                {
                    self.online.remove(&peer);
                    self.emit(NodeEvent::UnpairedByPeer(to_core(&peer)));
                }
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .device
                    .send_response(channel, Vec::new());
            }
            Event::Message {
                message: Message::Response { request_id, .. },
                ..
            } => {
                if let Some(peer) = self.unpair_requests.remove(&request_id) {
                    self.unpair_pending.remove(&peer);
                    self.emit(NodeEvent::UnpairDelivered(to_core(&peer)));
                }
            }
            Event::OutboundFailure { request_id, .. } => {
                // Tried again at the next presence tick.
                self.unpair_requests.remove(&request_id);
            }
            Event::InboundFailure { .. } | Event::ResponseSent { .. } => {}
        }
    }
}
