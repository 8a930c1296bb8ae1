//! The event loop: feeds swarm events, commands and timeouts into the sans-IO core and
//! carries out the actions it returns.
//!
//! Everything runs on one task and the core is synchronous, so after each input the core's
//! actions are drained completely before the next input is looked at. That is what lets
//! a reply the core produces while handling a request travel back as that request's
//! response (see `protocol`).

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use libp2p::core::transport::ListenerId;
use libp2p::kad::{self, GetProvidersOk, QueryResult, RecordKey};
use libp2p::request_response::{self, InboundRequestId, OutboundRequestId, ResponseChannel};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, FromSwarm, NetworkBehaviour, NewListenAddr, SwarmEvent};
use libp2p::{identify, mdns, Multiaddr, PeerId as Libp2pPeerId, Swarm};
use paircode_core::{
    Action, Code, Config, DeviceMessage, HostError, LocalDevice, PairingHost, PeerId, Presence,
    Progress, Role, SessionId,
};

mod address_book;
mod connections;
mod direct;
mod held;
mod observed;
mod presence;
mod publication;
mod reach;
mod rendezvous;

pub(crate) use reach::Reach;
pub use rendezvous::RENDEZVOUS_LABEL;

use address_book::AddressBook;
use connections::Connections;

use crate::behaviour::{Behaviour, BehaviourEvent, KAD_PROTOCOL};
use crate::error::Error;
use crate::node::{
    Command, Discovery, GenerateOptions, JoinOptions, NodeEvent, PairingEvent, Runtime,
    SessionStart,
};
use crate::protocol::dht_key;

/// How long shutdown waits for replies already queued to reach their peers.
const FLUSH_ON_SHUTDOWN: Duration = Duration::from_secs(1);

pub(crate) type MdnsFactory<M> = Box<dyn Fn(Libp2pPeerId) -> io::Result<M> + Send>;

pub(crate) struct Driver<M>
where
    M: NetworkBehaviour<ToSwarm = mdns::Event>,
{
    swarm: Swarm<Behaviour<M>>,
    runtime: Arc<dyn Runtime>,
    new_mdns: Option<MdnsFactory<M>>,
    commands: mpsc::UnboundedReceiver<Command>,
    pairing_config: Config,
    /// Routes every pairing input to the running session, a lingering initiator, or the
    /// answer a device without a session gives.
    host: PairingHost,
    /// Where the running session's events go.
    session: Option<mpsc::UnboundedSender<PairingEvent>>,
    /// Addresses learnt from mDNS, identify, Kademlia and the bootstrap list.
    addresses: AddressBook,
    mdns_peers: HashSet<Libp2pPeerId>,
    /// Messages waiting for a connection to their peer (or for its relayed connections to
    /// close, see `direct`).
    pending: HashMap<Libp2pPeerId, Vec<Vec<u8>>>,
    /// Relayed connections being closed because a direct one exists (see `direct`).
    leaving_relay: HashMap<Libp2pPeerId, HashSet<ConnectionId>>,
    /// Connected peers the running session exchanged pairing messages with: their relayed
    /// connections stay until it ends (see `direct`).
    session_peers: HashSet<Libp2pPeerId>,
    our_dials: HashMap<ConnectionId, Libp2pPeerId>,
    /// Established connections, and which one makes room for a newcomer.
    connections: Connections,
    /// The request being handled: a message the core sends to its author goes back as the
    /// response.
    reply_to: Option<(Libp2pPeerId, ResponseChannel<Vec<u8>>)>,
    /// A `Prove`'s response, open until the store's verdict (see `held`).
    held: Option<held::Held>,
    /// Pairing messages under way, and with whom (see `direct`: a relayed connection is
    /// closed only once nothing is under way on it).
    responses_in_flight: HashMap<InboundRequestId, Libp2pPeerId>,
    /// With the bytes (a request lost with a closing relayed connection goes again) and
    /// the session that sent it (only that session hears that it went unanswered).
    requests_in_flight: HashMap<OutboundRequestId, (Libp2pPeerId, Vec<u8>, Option<SessionId>)>,
    lookups: HashSet<kad::QueryId>,
    /// Paired devices' presence and unpair notices: every decision is the core's.
    presence: Presence,
    /// Our `/paircode/device/1` requests, so that an answer can be reported to `presence`.
    device_requests: HashMap<OutboundRequestId, (Libp2pPeerId, DeviceMessage)>,
    /// DHT searches `presence` asked for.
    presence_lookups: HashSet<kad::QueryId>,
    subscribers: Vec<mpsc::UnboundedSender<NodeEvent>>,
    /// Meeting points, AutoNAT's verdict and each connection's path (see `reach`).
    reach: Reach,
    /// The running session's provider records (see `publication`).
    publication: publication::Publication,
    /// Paired devices' rendezvous keys (see `rendezvous`).
    rendezvous: rendezvous::Rendezvous,
    /// Our addresses as peers observe them, until enough agree (see `observed`).
    observed: observed::Observed,
    timer: Option<(Instant, BoxFuture<'static, ()>)>,
    shutdown: Option<(Instant, Vec<futures::channel::oneshot::Sender<()>>)>,
}

fn to_core(peer: &Libp2pPeerId) -> PeerId {
    PeerId::from(*peer)
}

impl<M> Driver<M>
where
    M: NetworkBehaviour<ToSwarm = mdns::Event> + Send + 'static,
{
    pub(crate) fn new(
        swarm: Swarm<Behaviour<M>>,
        runtime: Arc<dyn Runtime>,
        new_mdns: Option<MdnsFactory<M>>,
        commands: mpsc::UnboundedReceiver<Command>,
        local: LocalDevice,
        pairing_config: Config,
        mut reach: Reach,
    ) -> Self {
        let presence = presence::initial_presence(&swarm);
        reach.listening_on(swarm.listeners());
        let mut connections = Connections::new(usize::MAX);
        connections.set_meeting_points(reach.meeting_point_peers());
        let mut publication = publication::Publication::default();
        if reach.meeting_point_peers().next().is_some() {
            publication.has_entry_points();
        }
        Driver {
            swarm,
            runtime,
            new_mdns,
            commands,
            pairing_config,
            host: PairingHost::new(local),
            session: None,
            addresses: AddressBook::new(),
            mdns_peers: HashSet::new(),
            pending: HashMap::new(),
            leaving_relay: HashMap::new(),
            session_peers: HashSet::new(),
            our_dials: HashMap::new(),
            connections,
            reply_to: None,
            held: None,
            responses_in_flight: HashMap::new(),
            requests_in_flight: HashMap::new(),
            lookups: HashSet::new(),
            presence,
            device_requests: HashMap::new(),
            presence_lookups: HashSet::new(),
            subscribers: Vec::new(),
            reach,
            publication,
            rendezvous: rendezvous::Rendezvous::default(),
            observed: observed::Observed::default(),
            timer: None,
            shutdown: None,
        }
    }

    /// Registers DHT entry points and joins the DHT now rather than at the first lookup,
    /// so that records are reachable early.
    pub(crate) fn bootstrap(&mut self, peers: Vec<(Libp2pPeerId, Multiaddr)>) {
        if peers.is_empty() {
            return;
        }
        self.connections
            .set_bootstrap(peers.iter().map(|(peer, _)| *peer));
        self.publication.has_entry_points();
        for (peer, addr) in peers {
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(&peer, addr.clone());
            self.learn_address(peer, addr);
        }
        let _ = self.swarm.behaviour_mut().kad.bootstrap();
    }

    fn learn_address(&mut self, peer: Libp2pPeerId, addr: Multiaddr) {
        let connections = &self.connections;
        self.addresses
            .learn(peer, addr, |p| connections.is_spared(p));
    }

    pub(crate) async fn run(mut self) {
        futures::future::poll_fn(|cx| self.poll(cx)).await;
        tracing::debug!("node stopped");
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.shutdown.is_none() {
                match self.commands.poll_next_unpin(cx) {
                    Poll::Ready(Some(command)) => {
                        self.on_command(command);
                        continue;
                    }
                    Poll::Ready(None) => {
                        self.begin_shutdown(None);
                        continue;
                    }
                    Poll::Pending => {}
                }
            }
            if let Some((deadline, _)) = &self.shutdown {
                let flushed =
                    self.responses_in_flight.is_empty() && self.requests_in_flight.is_empty();
                if flushed || Instant::now() >= *deadline {
                    for reply in self.shutdown.take().map(|s| s.1).unwrap_or_default() {
                        let _ = reply.send(());
                    }
                    return Poll::Ready(());
                }
            }
            self.arm_timer();
            if let Some((_, timer)) = &mut self.timer {
                if timer.poll_unpin(cx).is_ready() {
                    self.timer = None;
                    self.on_timeout();
                    continue;
                }
            }
            match self.swarm.poll_next_unpin(cx) {
                Poll::Ready(Some(event)) => self.on_swarm_event(event),
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let session = self.host.poll_timeout();
        let shutdown = self.shutdown.as_ref().map(|(at, _)| *at);
        [
            session,
            shutdown,
            self.presence.poll_timeout(),
            self.reach.poll_timeout(),
            self.rendezvous.poll_timeout(),
            self.publication.poll_timeout(),
            self.held.as_ref().map(held::Held::deadline),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn arm_timer(&mut self) {
        let wanted = self.next_deadline();
        if self.timer.as_ref().map(|(at, _)| *at) == wanted {
            return;
        }
        self.timer = wanted.map(|at| (at, self.runtime.sleep_until(at)));
    }

    fn on_timeout(&mut self) {
        let now = Instant::now();
        self.host.handle_timeout(now);
        // Also ends a held response whose bound has passed (`release_held`).
        self.drain();
        self.presence.handle_timeout(now);
        self.drain_presence();
        self.reach_timeout(now);
        self.rendezvous_timeout(now);
        self.publication_timeout(now);
    }

    fn emit(&mut self, event: NodeEvent) {
        self.subscribers
            .retain(|s| s.unbounded_send(event.clone()).is_ok());
    }

    fn session_event(&mut self, event: PairingEvent) {
        if let Some(session) = &self.session {
            let _ = session.unbounded_send(event.clone());
        }
        self.emit(NodeEvent::Pairing(event));
    }

    // ---- commands ----

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Generate {
                code,
                options,
                reply,
            } => {
                let _ = reply.send(self.generate(&code, options));
            }
            Command::Join {
                code,
                options,
                reply,
            } => {
                let _ = reply.send(self.join(&code, options));
            }
            Command::Confirm {
                session,
                peer,
                accept,
            } => {
                let session = SessionId(session);
                self.host
                    .handle_confirm(session, &peer, accept, Instant::now());
                self.drain();
            }
            Command::Cancel { session } => {
                self.host.handle_cancel(SessionId(session), Instant::now());
                self.drain();
            }
            Command::Stored {
                session,
                peer,
                saved,
            } => {
                self.host
                    .handle_stored(SessionId(session), &peer, saved, Instant::now());
                self.drain();
            }
            Command::Subscribe(tx) => self.subscribers.push(tx),
            Command::Presence(command) => self.on_presence_command(command),
            Command::ListenAddrs(reply) => {
                let me = *self.swarm.local_peer_id();
                let addrs = self
                    .swarm
                    .listeners()
                    .map(|a| a.clone().with_p2p(me).unwrap_or_else(|a| a))
                    .collect();
                let _ = reply.send(addrs);
            }
            Command::Rendezvous { peer, secret } => {
                if let Ok(peer) = peer.to_libp2p() {
                    self.set_rendezvous(peer, secret);
                }
            }
            Command::Reach(reply) => {
                let _ = reply.send(self.reach_status());
            }
            Command::Shutdown(reply) => self.begin_shutdown(Some(reply)),
        }
    }

    fn begin_shutdown(&mut self, reply: Option<futures::channel::oneshot::Sender<()>>) {
        if let Some(session) = self.host.session() {
            self.host.handle_cancel(session, Instant::now());
            self.drain();
        }
        let deadline = Instant::now() + FLUSH_ON_SHUTDOWN;
        let (_, replies) = self.shutdown.get_or_insert((deadline, Vec::new()));
        replies.extend(reply);
    }

    /// Gives the session just started its event channel.
    fn new_session(
        &mut self,
        started: Result<SessionId, HostError>,
    ) -> Result<SessionStart, Error> {
        let id = match started {
            Ok(id) => id,
            Err(HostError::Busy) => return Err(Error::Busy),
        };
        let (tx, rx) = mpsc::unbounded();
        self.session = Some(tx);
        Ok((id.0, rx))
    }

    fn generate(&mut self, code: &Code, options: GenerateOptions) -> Result<SessionStart, Error> {
        let mut cfg = self.pairing_config.clone();
        cfg.auto_accept = options.auto_accept;
        if let Some(ttl) = options.ttl {
            cfg.code_ttl = ttl;
        }
        let now = Instant::now();
        let started = self
            .host
            .start(Role::Initiator, cfg, code, now, &mut rand_core::OsRng);
        let start = self.new_session(started)?;
        self.drain();
        Ok(start)
    }

    fn join(&mut self, code: &Code, options: JoinOptions) -> Result<SessionStart, Error> {
        let now = Instant::now();
        let mut cfg = self.pairing_config.clone();
        cfg.auto_accept = options.auto_accept;
        let started = self
            .host
            .start(Role::Joiner, cfg, code, now, &mut rand_core::OsRng);
        let start = self.new_session(started)?;
        // Peers already known (found by mDNS, or connected: bootstrap nodes, paired
        // devices) are asked at once, not only those discovered from now on. Meeting
        // points are not: they hold no sessions, and asking them would hold back the
        // lookup that goes through them (see `Config::first_lookup_delay`).
        let known: HashSet<Libp2pPeerId> = self
            .mdns_peers
            .iter()
            .chain(self.swarm.connected_peers())
            .filter(|peer| !self.reach.is_meeting_point(peer))
            .copied()
            .collect();
        for peer in &known {
            self.host.handle_peer(&to_core(peer), now);
        }
        self.refresh_mdns();
        self.drain();
        Ok(start)
    }

    /// Replaces the mDNS behaviour with a fresh one, whose first query goes out at once.
    /// The old instance's interface tasks end on the next mDNS response they see (their
    /// channel is closed by then).
    fn refresh_mdns(&mut self) {
        let Some(new_mdns) = &self.new_mdns else {
            return;
        };
        match new_mdns(*self.swarm.local_peer_id()) {
            Ok(mut mdns) => {
                // The new instance missed the swarm's listen events; without them its
                // answers would carry no addresses.
                let addrs: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                for addr in &addrs {
                    mdns.on_swarm_event(FromSwarm::NewListenAddr(NewListenAddr {
                        listener_id: ListenerId::next(),
                        addr,
                    }));
                }
                self.swarm.behaviour_mut().mdns = Toggle::from(Some(mdns));
            }
            Err(e) => tracing::warn!("cannot restart mDNS: {e}"),
        }
    }

    // ---- core actions ----

    /// Carries out everything the host asks for.
    fn drain(&mut self) {
        while let Some(action) = self.host.poll_action() {
            self.carry_out(action);
        }
        // Presence gives a greeting stranger time only while a pairing may be completing.
        let running = self.host.session().is_some();
        let now = Instant::now();
        self.presence.handle_pairing(running, now);
        self.release_held(now);
    }

    fn carry_out(&mut self, action: Action) {
        match action {
            Action::Send { peer, bytes } => self.send(&peer, bytes),
            Action::Publish { key, until } => {
                let key = dht_key(&key.0);
                tracing::debug!(?until, "publishing provider record");
                self.publish(key);
            }
            Action::Unpublish { key } => {
                self.unpublish(dht_key(&key.0));
            }
            Action::Lookup { key } => {
                let query = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_providers(dht_key(&key.0));
                self.lookups.insert(query);
            }
            Action::Progress(Progress::Contacting { peer }) => {
                self.session_event(PairingEvent::Contacting { peer })
            }
            Action::Progress(Progress::Verified { peer, info }) => {
                self.session_event(PairingEvent::Verified { peer, info })
            }
            Action::Confirm {
                peer,
                info,
                verification,
            } => self.session_event(PairingEvent::ConfirmRequested {
                peer,
                info,
                verification,
            }),
            Action::PrepareStore(device) => self.session_event(PairingEvent::PrepareStore(device)),
            Action::Store(device) => self.session_event(PairingEvent::StoreRequested(device)),
            Action::Completed(device) => self.finish(PairingEvent::Completed(device)),
            Action::Failed(reason) => self.finish(PairingEvent::Failed(reason.into())),
        }
    }

    /// The session's last event: its channel closes, its lookups are forgotten, and its
    /// peers' relayed connections may go (see `direct`).
    fn finish(&mut self, event: PairingEvent) {
        self.session_event(event);
        if self.session.take().is_some() {
            self.lookups.clear();
        }
        self.session_ended();
    }

    /// Delivers bytes to a peer: as the response to its request if we are answering one
    /// or hold one open for it (see `held`), over an existing connection, or after
    /// dialing it.
    fn send(&mut self, peer: &PeerId, bytes: Vec<u8>) {
        let Ok(peer) = peer.to_libp2p() else {
            return;
        };
        self.in_session_with(peer);
        if let Some((to, _)) = &self.reply_to {
            if *to == peer {
                let (_, channel) = self.reply_to.take().expect("checked above");
                self.respond(channel, bytes);
                return;
            }
        }
        let Some(bytes) = self.reply_held(peer, bytes) else {
            return;
        };
        if self.swarm.is_connected(&peer) {
            self.request(peer, bytes);
            return;
        }
        self.pending.entry(peer).or_default().push(bytes);
        if !self.dial(peer) && !self.our_dials.values().any(|p| *p == peer) {
            self.pending.remove(&peer);
        }
    }

    /// Dials `peer` with every address we know (and those the behaviours know).
    fn dial(&mut self, peer: Libp2pPeerId) -> bool {
        let addresses = self.addresses.for_dial(&peer);
        // Which local port the dial leaves from is the transport's choice: see `transport`.
        // `Disconnected` rather than `NotDialing`: a dial Kademlia started may be the one
        // that fails.
        let opts = DialOpts::peer_id(peer)
            .addresses(addresses)
            .extend_addresses_through_behaviour()
            .condition(PeerCondition::Disconnected)
            .build();
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.our_dials.insert(id, peer);
                true
            }
            Err(e) => {
                tracing::debug!(%peer, "cannot dial: {e}");
                false
            }
        }
    }

    fn request(&mut self, peer: Libp2pPeerId, bytes: Vec<u8>) {
        if self.leaving_relay(&peer) {
            self.pending.entry(peer).or_default().push(bytes);
            return;
        }
        let id = self
            .swarm
            .behaviour_mut()
            .pair
            .send_request(&peer, bytes.clone());
        let session = self.host.session();
        self.requests_in_flight.insert(id, (peer, bytes, session));
    }

    fn respond(&mut self, channel: ResponseChannel<Vec<u8>>, bytes: Vec<u8>) {
        // Fails only if the connection is gone; the peer's request then fails on its side.
        let _ = self
            .swarm
            .behaviour_mut()
            .pair
            .send_response(channel, bytes);
    }

    /// Bytes from a peer, as a request or inside a response.
    fn on_message(&mut self, peer: Libp2pPeerId, bytes: &[u8]) {
        self.in_session_with(peer);
        let now = Instant::now();
        self.host.handle_message(&to_core(&peer), bytes, now);
        self.drain();
    }

    /// Tells the session a peer cannot be reached, so it does not wait for an answer that
    /// cannot come (a pulled cable, a killed daemon).
    fn unreachable(&mut self, peer: Libp2pPeerId) {
        self.host
            .handle_unreachable(&to_core(&peer), Instant::now());
        self.drain();
    }

    /// A candidate for the joiner: report it and hand it to the core.
    fn discovered(&mut self, peer: Libp2pPeerId, via: Discovery) {
        if peer == *self.swarm.local_peer_id() {
            return;
        }
        self.emit(NodeEvent::PeerDiscovered {
            peer: to_core(&peer),
            via,
        });
        self.host.handle_peer(&to_core(&peer), Instant::now());
        self.drain();
    }

    // ---- swarm events ----

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent<M>>) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                self.connection_opened(peer_id, connection_id);
                self.reach_connected(peer_id, connection_id, &endpoint);
                for bytes in self.pending.remove(&peer_id).unwrap_or_default() {
                    self.request(peer_id, bytes);
                }
                self.presence_connected(peer_id);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                self.connections.closed(connection_id);
                let cause = cause.map_or_else(|| "closed".to_owned(), |e| e.to_string());
                self.reach_closed(peer_id, connection_id, cause);
                self.left_relay(peer_id, connection_id);
                if num_established == 0 {
                    self.session_peers.remove(&peer_id);
                    self.presence_disconnected(peer_id);
                    self.unreachable(peer_id);
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                tracing::debug!(?peer_id, "dial failed: {error}");
                if let Some(peer) = peer_id {
                    self.reach_dial_failed(peer, error.to_string());
                }
                if let Some(peer) = self.our_dials.remove(&connection_id) {
                    let still_dialing = self.our_dials.values().any(|p| *p == peer);
                    if !still_dialing && !self.swarm.is_connected(&peer) {
                        self.pending.remove(&peer);
                        self.unreachable(peer);
                    }
                }
            }
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                tracing::debug!(%address, "listening");
                self.reach_listen_addr(listener_id, &address);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                if let Some(port) = observed::tcp_port(&address) {
                    for gone in self.observed.listen_port_closed(port) {
                        self.swarm.remove_external_address(&gone);
                    }
                }
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                let reason = match reason {
                    Ok(()) => "closed".to_owned(),
                    Err(e) => e.to_string(),
                };
                self.reach_listener_closed(listener_id, reason);
            }
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent<M>) {
        match event {
            BehaviourEvent::Pair(event) => self.on_pair_event(event),
            BehaviourEvent::Device(event) => self.on_device_event(event),
            BehaviourEvent::Kad(event) => self.on_kad_event(event),
            BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                connection_id,
                info,
            }) => {
                let speaks_kad = info.protocols.contains(&KAD_PROTOCOL);
                // Anyone can advertise thousands of addresses; a few are plenty.
                let addrs = info
                    .listen_addrs
                    .into_iter()
                    .take(address_book::MAX_PER_PEER);
                for addr in addrs {
                    if speaks_kad {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer_id, addr.clone());
                    }
                    self.learn_address(peer_id, addr);
                }
                self.observed_by(peer_id, connection_id, info.observed_addr);
                self.reach_identified(peer_id, false);
            }
            BehaviourEvent::Identify(identify::Event::Sent { peer_id, .. }) => {
                self.reach_identified(peer_id, true);
            }
            BehaviourEvent::RelayClient(event) => self.on_relay_client_event(event),
            BehaviourEvent::Dcutr(event) => self.on_dcutr_event(event),
            BehaviourEvent::Autonat(event) => self.on_autonat_event(event),
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                let mut peers = Vec::new();
                for (peer, addr) in found {
                    // mDNS peers seed the DHT too, so a LAN reaches beyond itself.
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    self.learn_address(peer, addr);
                    if !peers.contains(&peer) {
                        peers.push(peer);
                    }
                }
                self.presence_found(&peers);
                for peer in peers {
                    // A known peer seen again after a refresh may hold a session by now
                    // even if it said "no session" before: the joiner asks again.
                    if self.mdns_peers.insert(peer) || self.host.session().is_some() {
                        self.discovered(peer, Discovery::Mdns);
                    }
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Expired(gone)) => {
                for (peer, _) in gone {
                    self.mdns_peers.remove(&peer);
                }
            }
            _ => {}
        }
    }

    /// A peer told us the address it reaches us at; confirmed once enough peers agree,
    /// and then carried in our provider records.
    fn observed_by(&mut self, peer: Libp2pPeerId, connection: ConnectionId, addr: Multiaddr) {
        let Some(witness) = self.remote_ip(&peer, connection) else {
            return;
        };
        let listen_ports = self
            .swarm
            .listeners()
            .filter_map(observed::tcp_port)
            .collect();
        let witness = observed::Witness::new(witness, peer);
        if let Some(addr) = self.observed.report(witness, addr, &listen_ports) {
            tracing::info!(%addr, "address confirmed by peers' observations");
            self.swarm.add_external_address(addr);
            self.republish();
        }
    }

    fn on_pair_event(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request_id,
                        request,
                        channel,
                    },
                ..
            } => {
                self.responses_in_flight.insert(request_id, peer);
                self.connections.used(&peer, Instant::now());
                self.reply_to = Some((peer, channel));
                self.on_message(peer, &request);
                if let Some((_, channel)) = self.reply_to.take() {
                    self.answer_or_hold(peer, channel, Instant::now());
                }
            }
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                self.requests_in_flight.remove(&request_id);
                self.connections.used(&peer, Instant::now());
                if !response.is_empty() {
                    self.on_message(peer, &response);
                }
                self.leave_relay(peer);
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, "request failed: {error}");
                let sent = self.requests_in_flight.remove(&request_id);
                match sent {
                    // Its connection closed under it (a relayed one, closed on either side
                    // because a direct one exists: see `direct`) but the peer is still
                    // connected: the same bytes go again; the core takes duplicates.
                    Some((_, bytes, _))
                        if matches!(error, request_response::OutboundFailure::ConnectionClosed)
                            && self.swarm.is_connected(&peer) =>
                    {
                        self.request(peer, bytes)
                    }
                    // Unanswered on a connection that is still up: only the session that
                    // sent it may give up on the peer (see `handle_undelivered`).
                    Some((_, _, session)) if self.swarm.is_connected(&peer) => {
                        self.host
                            .handle_undelivered(session, &to_core(&peer), Instant::now());
                        self.drain();
                    }
                    _ => self.unreachable(peer),
                }
                self.leave_relay(peer);
            }
            Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, "inbound request failed: {error}");
                self.responses_in_flight.remove(&request_id);
                self.leave_relay(peer);
            }
            Event::ResponseSent {
                peer, request_id, ..
            } => {
                self.responses_in_flight.remove(&request_id);
                self.leave_relay(peer);
            }
        }
    }

    fn on_kad_event(&mut self, event: kad::Event) {
        match event {
            kad::Event::OutboundQueryProgressed {
                id,
                result: QueryResult::GetProviders(result),
                step,
                ..
            } if self.rendezvous_query(&id) => {
                self.on_rendezvous_providers(id, &result, step.last);
            }
            kad::Event::OutboundQueryProgressed {
                id,
                result: QueryResult::GetProviders(result),
                step,
                stats,
            } if self.lookups.contains(&id) => {
                if let Ok(GetProvidersOk::FoundProviders { providers, .. }) = result {
                    for peer in providers {
                        self.discovered(peer, Discovery::Dht);
                    }
                }
                if step.last {
                    self.lookups.remove(&id);
                    // No DHT peer answered (a refused dial during a flood, none known):
                    // the core decides when to look again.
                    if stats.num_successes() == 0 {
                        self.host.handle_lookup_failed(Instant::now());
                        self.drain();
                    }
                }
            }
            kad::Event::OutboundQueryProgressed {
                id,
                result: QueryResult::GetClosestPeers(result),
                step,
                ..
            } if self.presence_lookups.contains(&id) => {
                if let Ok(found) = result {
                    self.on_closest_peers(found.peers);
                }
                if step.last {
                    self.presence_lookups.remove(&id);
                    self.presence_lookup_done();
                }
            }
            kad::Event::OutboundQueryProgressed {
                result: QueryResult::StartProviding(result),
                stats,
                ..
            } => self.on_published(result, &stats),
            kad::Event::RoutingUpdated {
                peer, addresses, ..
            } => {
                for addr in addresses.iter() {
                    self.learn_address(peer, addr.clone());
                }
            }
            _ => {}
        }
    }
}
