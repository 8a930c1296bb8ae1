//! Moving traffic off a relay once a direct connection exists.
//!
//! After DCUtR punched a hole (or the peer turned up on the LAN, or at a public address),
//! a peer has a direct connection and the relayed one it started on. libp2p would keep
//! using both: request-response spreads requests over a peer's connections by request id,
//! libp2p-stream picks one at random. So the relayed connections of a peer that has a
//! direct one are closed, and everything new (pairing and presence messages,
//! `Node::connect` streams, `paircode send`) goes direct; the relay's circuit slot is freed
//! too (circuits are limited in time and bytes).
//!
//! Not while a pairing or presence message with that peer is under way: closing the
//! connection it travels on would fail it (a pairing attempt would be retried, but only
//! after its timeout). The relayed connections are closed as soon as the last such message
//! is answered. The peer decides for itself, and may close the connection under one of
//! our requests: a request that fails with its connection closed while the peer is still
//! connected is sent again. Closing takes a moment, and request-response would still hand a new
//! request to a closing connection (it picks by request id), so pairing messages to the
//! peer wait until the relayed connections are gone, then go direct. An application stream
//! opened over the relay before the direct connection came up is cut with it; the direct
//! connection is there for its retry (`paircode send` resumes).
//!
//! Nor while a pairing session with that peer runs. Between two messages of a pairing
//! nothing is under way on our side, but the peer's next one may be (the joiner's `Prove`,
//! the initiator's `Done`, when its store outlasted the `Prove`'s held response and it goes
//! as a request of its own): the peer does not know the connection is closing, sends it
//! there, and loses it with it if its own direct connection is not up yet; the session
//! then waits for the resend (`attempt_timeout`, 3 s). DCUtR's hole punch completes in
//! the middle of a pairing across NATs, so this happened in a third of the benchmark's
//! joins (3.7 s instead of 0.9 s). The relayed connections of the session's peers are
//! closed when it ends.

use super::*;

impl<M> Driver<M>
where
    M: NetworkBehaviour<ToSwarm = mdns::Event> + Send + 'static,
{
    /// Closes `peer`'s relayed connections if it has a direct one and nothing is under way
    /// with it; called when a connection comes up and whenever a message exchange with the
    /// peer ends.
    pub(super) fn leave_relay(&mut self, peer: Libp2pPeerId) {
        let relayed = self.superseded_relayed(&peer);
        if relayed.is_empty() || self.exchanging_with(&peer) {
            return;
        }
        tracing::debug!(%peer, count = relayed.len(), "direct now: closing relayed connections");
        for id in relayed {
            if self.swarm.close_connection(id) {
                self.leaving_relay.entry(peer).or_default().insert(id);
            }
        }
    }

    /// Relayed connections of `peer` are closing: a pairing message must wait.
    pub(super) fn leaving_relay(&self, peer: &Libp2pPeerId) -> bool {
        self.leaving_relay.contains_key(peer)
    }

    /// A connection closed; once the last relayed one of its peer is gone, the messages
    /// that waited go out (direct).
    pub(super) fn left_relay(&mut self, peer: Libp2pPeerId, connection: ConnectionId) {
        let Some(closing) = self.leaving_relay.get_mut(&peer) else {
            return;
        };
        closing.remove(&connection);
        if !closing.is_empty() {
            return;
        }
        self.leaving_relay.remove(&peer);
        let waiting = self.pending.remove(&peer).unwrap_or_default();
        if self.swarm.is_connected(&peer) {
            for bytes in waiting {
                self.request(peer, bytes);
            }
        }
    }

    /// A pairing message went to or came from `peer` while a session runs.
    pub(super) fn in_session_with(&mut self, peer: Libp2pPeerId) {
        // Only connected peers: the set stays within the connection limits, and a peer
        // that disconnects leaves it.
        if self.host.session().is_some() && self.swarm.is_connected(&peer) {
            self.session_peers.insert(peer);
        }
    }

    /// The session ended (or none runs): its peers' relayed connections may go.
    pub(super) fn session_ended(&mut self) {
        if self.host.session().is_some() {
            return;
        }
        for peer in std::mem::take(&mut self.session_peers) {
            self.leave_relay(peer);
        }
    }

    fn exchanging_with(&self, peer: &Libp2pPeerId) -> bool {
        self.session_peers.contains(peer)
            || self.requests_in_flight.values().any(|(p, _, _)| p == peer)
            || self.responses_in_flight.values().any(|p| p == peer)
            || self.device_requests.values().any(|(p, _)| p == peer)
    }
}
