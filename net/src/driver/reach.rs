//! Reaching beyond the LAN: the node's meeting points (connect, reserve a relay slot,
//! advertise the circuit address, retry with backoff when one is down), AutoNAT's verdict,
//! and whether each connected peer is reached directly or through a relay.
//!
//! The order matters for hole punching (measured, see `shared/netbed/NOTES.md`): a meeting
//! point is dialed only once the node listens on a non-loopback address, so the dial
//! leaves from the listen port and the meeting point observes the NAT's mapping of that
//! port; the reservation is asked for only once identify went both ways, so that the
//! observed address is known before DCUtR needs it.

use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::{autonat, dcutr, relay};

use super::*;
use crate::reach::{ConnectionPath, MeetingPointState, MeetingPointStatus, ReachStatus};
use crate::transport::ReusePorts;

/// The first retry after a failure; doubled after each further failure, up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A listen address a meeting point can be dialed from: neither loopback (libp2p-tcp
/// would reuse only a loopback socket's port for a loopback destination) nor a circuit.
fn dialable_from(address: &Multiaddr) -> bool {
    address.iter().all(|p| match p {
        Protocol::Ip4(ip) => !ip.is_loopback(),
        Protocol::Ip6(ip) => !ip.is_loopback(),
        Protocol::P2pCircuit => false,
        _ => true,
    })
}

pub(crate) struct Reach {
    meeting_points: Vec<MeetingPoint>,
    /// A non-loopback listen address exists, so a dial can leave from the listen port.
    can_dial: bool,
    /// Peers whose dials keep the listen port: meeting points, and peers reached through
    /// a relay (the hole-punching dials). See `transport`.
    reuse: ReusePorts,
    /// What AutoNAT confirmed, if it said we are publicly reachable.
    public_addr: Option<Multiaddr>,
    /// Every open connection of every peer.
    connections: HashMap<Libp2pPeerId, HashMap<ConnectionId, Connection>>,
}

#[derive(Clone, Copy)]
struct Connection {
    relayed: bool,
    we_dialed: bool,
    /// The IP address the connection comes from (a relay's, if relayed): the witness
    /// when the peer tells us how it sees us (see `observed`).
    remote_ip: Option<std::net::IpAddr>,
}

struct MeetingPoint {
    addr: Multiaddr,
    peer: Libp2pPeerId,
    state: State,
    backoff: Duration,
}

enum State {
    /// Not connected: the next attempt is due at `retry_at`; `error` says why the last
    /// one failed (none before the first).
    Idle {
        retry_at: Instant,
        error: Option<String>,
    },
    /// An attempt under way; `last_error` says why the one before failed, so that a
    /// meeting point that keeps refusing reads as unreachable throughout, not as
    /// "connecting" for the moments each retry takes.
    Dialing {
        last_error: Option<String>,
    },
    /// Connected; identify must go both ways before the reservation.
    Identifying {
        sent: bool,
        received: bool,
    },
    Reserving {
        listener: ListenerId,
    },
    Reserved {
        listener: ListenerId,
        circuit: Multiaddr,
    },
}

impl Reach {
    pub(crate) fn new(meeting_points: Vec<(Libp2pPeerId, Multiaddr)>, reuse: ReusePorts) -> Self {
        let now = Instant::now();
        let meeting_points = meeting_points
            .into_iter()
            .map(|(peer, addr)| {
                reuse.insert(peer);
                MeetingPoint {
                    addr,
                    peer,
                    state: State::Idle {
                        retry_at: now,
                        error: None,
                    },
                    backoff: FIRST_BACKOFF,
                }
            })
            .collect();
        Reach {
            meeting_points,
            can_dial: false,
            reuse,
            public_addr: None,
            connections: HashMap::new(),
        }
    }

    /// A meeting point holds a reservation for us.
    pub(crate) fn reserved(&self) -> bool {
        self.meeting_points
            .iter()
            .any(|mp| matches!(mp.state, State::Reserved { .. }))
    }

    /// The meeting points' PeerIds.
    pub(super) fn meeting_point_peers(&self) -> impl Iterator<Item = Libp2pPeerId> + '_ {
        self.meeting_points.iter().map(|m| m.peer)
    }

    /// Listen addresses reported before the driver ran (while the node waited for its
    /// listeners).
    pub(crate) fn listening_on<'a>(&mut self, mut addrs: impl Iterator<Item = &'a Multiaddr>) {
        self.can_dial |= addrs.any(dialable_from);
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if !self.can_dial {
            return None;
        }
        self.meeting_points
            .iter()
            .filter_map(|mp| match mp.state {
                State::Idle { retry_at, .. } => Some(retry_at),
                _ => None,
            })
            .min()
    }

    pub(super) fn is_meeting_point(&self, peer: &Libp2pPeerId) -> bool {
        self.meeting_points.iter().any(|mp| mp.peer == *peer)
    }

    fn status(&self, now: Instant) -> ReachStatus {
        let meeting_points = self
            .meeting_points
            .iter()
            .map(|mp| MeetingPointStatus {
                addr: mp.addr.clone(),
                state: match &mp.state {
                    State::Idle { error: None, .. }
                    | State::Dialing { last_error: None }
                    | State::Identifying { .. } => MeetingPointState::Connecting,
                    State::Dialing {
                        last_error: Some(error),
                    } => MeetingPointState::Unreachable {
                        error: error.clone(),
                        retry_in: Duration::ZERO,
                    },
                    State::Idle {
                        error: Some(error),
                        retry_at,
                    } => MeetingPointState::Unreachable {
                        error: error.clone(),
                        retry_in: retry_at.saturating_duration_since(now),
                    },
                    State::Reserving { .. } => MeetingPointState::Reserving,
                    State::Reserved { circuit, .. } => MeetingPointState::Reserved {
                        circuit: circuit.clone(),
                    },
                },
            })
            .collect();
        let connections = self
            .connections
            .iter()
            .filter(|(peer, _)| !self.is_meeting_point(peer))
            .map(|(peer, connections)| {
                let path = match connections.values().all(|c| c.relayed) {
                    true => ConnectionPath::Relayed,
                    false => ConnectionPath::Direct,
                };
                (to_core(peer), path)
            })
            .collect();
        let relayed_connections = self
            .connections
            .iter()
            .filter(|(peer, _)| !self.is_meeting_point(peer))
            .map(|(peer, connections)| {
                (
                    to_core(peer),
                    connections.values().filter(|c| c.relayed).count(),
                )
            })
            .collect();
        ReachStatus {
            meeting_points,
            public_addr: self.public_addr.clone(),
            connections,
            relayed_connections,
        }
    }
}

impl<M> Driver<M>
where
    M: NetworkBehaviour<ToSwarm = mdns::Event> + Send + 'static,
{
    pub(super) fn reach_status(&self) -> ReachStatus {
        self.reach.status(Instant::now())
    }

    /// Starts every attempt that is due.
    pub(super) fn reach_timeout(&mut self, now: Instant) {
        if !self.reach.can_dial {
            return;
        }
        for i in 0..self.reach.meeting_points.len() {
            let due = matches!(
                self.reach.meeting_points[i].state,
                State::Idle { retry_at, .. } if retry_at <= now
            );
            if due {
                self.dial_meeting_point(i, now);
            }
        }
    }

    fn dial_meeting_point(&mut self, i: usize, now: Instant) {
        let (peer, addr) = {
            let mp = &self.reach.meeting_points[i];
            (mp.peer, mp.addr.clone())
        };
        if self.swarm.is_connected(&peer) {
            // Connected already (e.g. through Kademlia): identify has run or is running.
            self.reach.meeting_points[i].state = State::Identifying {
                sent: true,
                received: true,
            };
            self.reserve(i);
            return;
        }
        tracing::debug!(%addr, "dialing meeting point");
        let opts = DialOpts::peer_id(peer)
            .addresses(vec![addr])
            .condition(PeerCondition::Disconnected)
            .build();
        match self.swarm.dial(opts) {
            Ok(()) => {
                let mp = &mut self.reach.meeting_points[i];
                let last_error = match &mut mp.state {
                    State::Idle { error, .. } => error.take(),
                    _ => None,
                };
                mp.state = State::Dialing { last_error };
            }
            Err(e) => self.meeting_point_failed(i, e.to_string(), now),
        }
    }

    /// Identify went both ways: ask for a relay slot by listening on the circuit address.
    fn reserve(&mut self, i: usize) {
        let mp = &self.reach.meeting_points[i];
        let circuit = mp.addr.clone().with(Protocol::P2pCircuit);
        if let Some(autonat) = self.swarm.behaviour_mut().autonat.as_mut() {
            autonat.add_server(mp.peer, Some(mp.addr.clone()));
        }
        // Joining the DHT through the meeting point (identify gave Kademlia its address).
        let _ = self.swarm.behaviour_mut().kad.bootstrap();
        match self.swarm.listen_on(circuit) {
            Ok(listener) => self.reach.meeting_points[i].state = State::Reserving { listener },
            Err(e) => self.meeting_point_failed(i, e.to_string(), Instant::now()),
        }
    }

    fn meeting_point_failed(&mut self, i: usize, error: String, now: Instant) {
        let mp = &mut self.reach.meeting_points[i];
        tracing::warn!(addr = %mp.addr, "meeting point unreachable: {error}");
        let old = std::mem::replace(
            &mut mp.state,
            State::Idle {
                retry_at: now + mp.backoff,
                error: Some(error),
            },
        );
        mp.backoff = (mp.backoff * 2).min(MAX_BACKOFF);
        match old {
            State::Reserving { listener } => {
                self.swarm.remove_listener(listener);
            }
            State::Reserved { listener, circuit } => {
                self.swarm.remove_listener(listener);
                self.swarm.remove_external_address(&circuit);
            }
            State::Idle { .. } | State::Dialing { .. } | State::Identifying { .. } => {}
        }
    }

    fn meeting_point_index(&self, peer: &Libp2pPeerId) -> Option<usize> {
        self.reach
            .meeting_points
            .iter()
            .position(|mp| mp.peer == *peer)
    }

    pub(super) fn reach_listen_addr(&mut self, listener_id: ListenerId, address: &Multiaddr) {
        let circuit_of = self.reach.meeting_points.iter().position(
            |mp| matches!(mp.state, State::Reserving { listener } if listener == listener_id),
        );
        if let Some(i) = circuit_of {
            tracing::info!(%address, "relay reservation active");
            // Kademlia puts only confirmed external addresses in provider records: this
            // is the one a joiner on another network can always use.
            self.swarm.add_external_address(address.clone());
            let mp = &mut self.reach.meeting_points[i];
            mp.backoff = FIRST_BACKOFF;
            mp.state = State::Reserved {
                listener: listener_id,
                circuit: address.clone(),
            };
            self.republish();
            self.publish_rendezvous();
            self.seek_after_reservation();
            return;
        }
        if dialable_from(address) && !self.reach.can_dial {
            self.reach.can_dial = true;
            self.reach_timeout(Instant::now());
        }
    }

    pub(super) fn reach_listener_closed(&mut self, listener_id: ListenerId, reason: String) {
        let closed = self.reach.meeting_points.iter().position(|mp| {
            matches!(mp.state,
                State::Reserving { listener } | State::Reserved { listener, .. }
                    if listener == listener_id)
        });
        if let Some(i) = closed {
            self.meeting_point_failed(
                i,
                format!("relay reservation ended: {reason}"),
                Instant::now(),
            );
        }
    }

    /// Where `peer`'s connection `connection` comes from, if it is known and on IP.
    pub(super) fn remote_ip(
        &self,
        peer: &Libp2pPeerId,
        connection: ConnectionId,
    ) -> Option<std::net::IpAddr> {
        self.reach
            .connections
            .get(peer)?
            .get(&connection)?
            .remote_ip
    }

    pub(super) fn reach_connected(
        &mut self,
        peer: Libp2pPeerId,
        connection: ConnectionId,
        endpoint: &ConnectedPoint,
    ) {
        let relayed = endpoint.is_relayed();
        if relayed {
            // DCUtR's hole-punching dials to this peer must leave from the listen port.
            self.reach.reuse.insert(peer);
        }
        let connections = self.reach.connections.entry(peer).or_default();
        connections.insert(
            connection,
            Connection {
                relayed,
                we_dialed: endpoint.is_dialer(),
                remote_ip: observed::ip(endpoint.get_remote_address()),
            },
        );
        // Two devices that find each other at once (Kademlia dials a provider it finds)
        // end up with a relayed connection in each direction, and DCUtR then punches
        // twice at once over the same ports: the two attempts merge into one TCP
        // connection with clashing roles and both fail. Both sides close the relayed
        // connections the higher PeerId dialed, so one remains and one punch runs.
        // Relayed connections all dialed by one side are left alone (a pairing request
        // may be under way on any of them).
        let we_are_higher = *self.swarm.local_peer_id() > peer;
        let crossed = [true, false].iter().all(|dialed| {
            connections
                .values()
                .any(|c| c.relayed && c.we_dialed == *dialed)
        });
        if relayed && crossed {
            let surplus: Vec<ConnectionId> = connections
                .iter()
                .filter(|(_, c)| c.relayed && c.we_dialed == we_are_higher)
                .map(|(id, _)| *id)
                .collect();
            for id in surplus {
                tracing::debug!(%peer, "closing a second relayed connection");
                self.swarm.close_connection(id);
            }
        }
        if let Some(i) = self.meeting_point_index(&peer) {
            if matches!(self.reach.meeting_points[i].state, State::Dialing { .. }) {
                self.reach.meeting_points[i].state = State::Identifying {
                    sent: false,
                    received: false,
                };
            }
            return;
        }
        self.leave_relay(peer);
    }

    /// The connections to `peer` that go through a relay, if another one goes direct.
    pub(super) fn superseded_relayed(&self, peer: &Libp2pPeerId) -> Vec<ConnectionId> {
        let Some(connections) = self.reach.connections.get(peer) else {
            return Vec::new();
        };
        if connections.values().all(|c| c.relayed) {
            return Vec::new();
        }
        connections
            .iter()
            .filter(|(_, c)| c.relayed)
            .map(|(id, _)| *id)
            .collect()
    }

    pub(super) fn reach_closed(
        &mut self,
        peer: Libp2pPeerId,
        connection: ConnectionId,
        cause: String,
    ) {
        if let Some(connections) = self.reach.connections.get_mut(&peer) {
            connections.remove(&connection);
            if connections.is_empty() {
                self.reach.connections.remove(&peer);
                if !self.reach.is_meeting_point(&peer) {
                    self.reach.reuse.remove(&peer);
                }
            }
        }
        if self.swarm.is_connected(&peer) {
            return;
        }
        if let Some(i) = self.meeting_point_index(&peer) {
            if !matches!(self.reach.meeting_points[i].state, State::Idle { .. }) {
                self.meeting_point_failed(i, format!("connection closed: {cause}"), Instant::now());
            }
        }
    }

    pub(super) fn reach_dial_failed(&mut self, peer: Libp2pPeerId, error: String) {
        if let Some(i) = self.meeting_point_index(&peer) {
            if matches!(self.reach.meeting_points[i].state, State::Dialing { .. }) {
                self.meeting_point_failed(i, error, Instant::now());
            }
        }
    }

    /// Identify went one way with `peer`; a meeting point waiting for both gets reserved.
    pub(super) fn reach_identified(&mut self, peer: Libp2pPeerId, we_sent: bool) {
        let Some(i) = self.meeting_point_index(&peer) else {
            return;
        };
        if let State::Identifying { sent, received } = &mut self.reach.meeting_points[i].state {
            match we_sent {
                true => *sent = true,
                false => *received = true,
            }
            if *sent && *received {
                self.reserve(i);
            }
        }
    }

    pub(super) fn on_relay_client_event(&mut self, event: relay::client::Event) {
        tracing::debug!(?event, "relay client");
    }

    pub(super) fn on_dcutr_event(&mut self, event: dcutr::Event) {
        match event.result {
            Ok(connection) => {
                tracing::info!(peer = %event.remote_peer_id, ?connection, "direct connection")
            }
            Err(e) => tracing::info!(peer = %event.remote_peer_id, "hole punching failed: {e}"),
        }
    }

    pub(super) fn on_autonat_event(&mut self, event: autonat::Event) {
        let autonat::Event::StatusChanged { new, .. } = event else {
            return;
        };
        tracing::info!(?new, "AutoNAT");
        // AutoNAT itself confirms the public address as external (Kademlia then puts it
        // in provider records); a reachable device serves the DHT too.
        let (public, mode) = match new {
            autonat::NatStatus::Public(addr) => (Some(addr), kad::Mode::Server),
            autonat::NatStatus::Private | autonat::NatStatus::Unknown => (None, kad::Mode::Client),
        };
        let became_public = public.is_some() && self.reach.public_addr.is_none();
        self.reach.public_addr = public;
        self.swarm.behaviour_mut().kad.set_mode(Some(mode));
        if became_public {
            self.republish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A meeting point that keeps refusing reads as unreachable while each retry runs, not
    /// as "connecting" (a status asked at that moment lost the reason and the hint a
    /// failed join gives with it).
    #[test]
    fn a_retry_under_way_still_reads_as_unreachable() {
        let peer = Libp2pPeerId::random();
        let addr: Multiaddr = "/ip4/198.51.100.1/tcp/4001".parse().unwrap();
        let mut reach = Reach::new(vec![(peer, addr)], ReusePorts::default());
        let now = Instant::now();
        let state = |reach: &Reach| reach.status(now).meeting_points[0].state.clone();
        assert_eq!(state(&reach), MeetingPointState::Connecting);

        reach.meeting_points[0].state = State::Dialing { last_error: None };
        assert_eq!(state(&reach), MeetingPointState::Connecting);

        let refused = "Connection refused (os error 111)".to_owned();
        reach.meeting_points[0].state = State::Dialing {
            last_error: Some(refused.clone()),
        };
        assert_eq!(
            state(&reach),
            MeetingPointState::Unreachable {
                error: refused,
                retry_in: Duration::ZERO,
            }
        );
    }
}
