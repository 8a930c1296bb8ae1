//! A meeting point (`paircode relay`): a server anyone can run where devices on different
//! networks find each other. It serves the DHT (provider records, bounded per peer), circuit
//! relay v2 (so devices behind NATs can be reached, and then upgrade to a direct connection
//! with DCUtR on their side), AutoNAT, identify and ping. It never sees pairing secrets: it
//! learns PeerIds, addresses and discovery ids (the DHT keys), nothing else.
//!
//! Runtime-independent like the device node: a runtime crate supplies TCP and a spawner and
//! calls [`start_meeting_point`].

mod behaviour;
pub mod key_file;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::core::upgrade::Version;
use libp2p::core::Transport;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, kad, noise, relay, yamux, Multiaddr, PeerId, Swarm};

pub use crate::store::StoreLimits;
use behaviour::{MeetingPointBehaviour, MeetingPointBehaviourEvent};
pub use libp2p::identity::Keypair;

use crate::behaviour::KAD_PROTOCOL;
use crate::{Executor, Runtime};

/// The key file's name in a meeting point's data directory.
pub const KEY_FILE: &str = "relay.key";

/// Why a meeting point could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum MeetingPointError {
    /// The Noise configuration could not be built from the key.
    #[error("setting up Noise: {0}")]
    Noise(#[from] noise::Error),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address asked for.
        addr: Multiaddr,
        /// What the transport said.
        reason: String,
    },
    /// The configuration has no listen address.
    #[error("no listen address given")]
    NothingToListenOn,
    /// The server's task has ended.
    #[error("the meeting point has stopped")]
    Stopped,
}

/// Circuit relay v2 limits. Sized for pairing and reconnection: a relayed connection
/// carries a pairing handshake (a few KiB) and presence notices, and DCUtR replaces it with
/// a direct one within seconds where the NATs allow; where they do not (symmetric NATs) the
/// devices stay relayed and re-open the circuit when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayLimits {
    /// Reservations held at once, over all devices.
    pub max_reservations: usize,
    /// Reservations one device may hold at once.
    pub max_reservations_per_peer: usize,
    /// A device renews its reservation before this runs out.
    pub reservation_duration: Duration,
    /// Relayed connections open at once, over all devices.
    pub max_circuits: usize,
    /// Relayed connections one device may have open at once.
    pub max_circuits_per_peer: usize,
    /// How long one relayed connection may last.
    pub max_circuit_duration: Duration,
    /// How many bytes one relayed connection may carry (each way).
    pub max_circuit_bytes: u64,
}

impl Default for RelayLimits {
    fn default() -> Self {
        RelayLimits {
            max_reservations: 1024,
            // A restarted daemon reserves again before the old reservation has timed out.
            max_reservations_per_peer: 4,
            reservation_duration: Duration::from_secs(60 * 60),
            max_circuits: 256,
            // Pairing plus reconnection to a few paired devices at once.
            max_circuits_per_peer: 16,
            max_circuit_duration: Duration::from_secs(10 * 60),
            max_circuit_bytes: 1 << 20,
        }
    }
}

/// What a meeting point runs with.
pub struct MeetingPointConfig {
    /// Its stable identity (see [`key_file`]).
    pub keypair: Keypair,
    /// Where it listens.
    pub listen: Vec<Multiaddr>,
    /// Where devices reach the server, if not where it listens: its public address behind
    /// port forwarding or a cloud provider's 1:1 NAT. Empty: the listen addresses.
    pub external: Vec<Multiaddr>,
    /// Circuit relay v2 limits.
    pub relay: RelayLimits,
    /// Provider-record limits of its Kademlia store.
    pub store: StoreLimits,
    /// How long the server keeps a provider record (it is dropped earlier if the device
    /// withdraws it).
    pub provider_record_ttl: Duration,
    /// AutoNAT: dial back only to public addresses. On by default (a meeting point should
    /// not be usable to probe private networks); off for test beds with private ranges.
    pub autonat_only_global_ips: bool,
    /// How long a connection with nothing on it stays open.
    pub idle_timeout: Duration,
}

impl MeetingPointConfig {
    /// The defaults: relay and store limits for pairing, one-hour records, AutoNAT dialing
    /// back to public addresses only.
    pub fn new(keypair: Keypair, listen: Vec<Multiaddr>) -> Self {
        MeetingPointConfig {
            keypair,
            listen,
            external: Vec::new(),
            relay: RelayLimits::default(),
            store: StoreLimits::default(),
            provider_record_ttl: Duration::from_secs(60 * 60),
            autonat_only_global_ips: true,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

enum Command {
    ProviderRecords {
        peer: PeerId,
        reply: oneshot::Sender<usize>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// A running meeting point. Dropping it stops the server.
pub struct MeetingPoint {
    peer_id: PeerId,
    addrs: Vec<Multiaddr>,
    commands: mpsc::UnboundedSender<Command>,
}

impl MeetingPoint {
    /// The server's PeerId.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Where devices reach it, with `/p2p/<peer id>`: the external addresses if configured,
    /// else the listen addresses.
    pub fn addrs(&self) -> &[Multiaddr] {
        &self.addrs
    }

    /// How many provider records from `peer` the DHT store holds now.
    pub async fn provider_records_of(&self, peer: PeerId) -> Result<usize, MeetingPointError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .unbounded_send(Command::ProviderRecords { peer, reply })
            .map_err(|_| MeetingPointError::Stopped)?;
        answer.await.map_err(|_| MeetingPointError::Stopped)
    }

    /// Stops the server: its connections close and its listeners go away.
    pub async fn shutdown(self) {
        let (reply, done) = oneshot::channel();
        if self
            .commands
            .unbounded_send(Command::Shutdown { reply })
            .is_ok()
        {
            let _ = done.await;
        }
    }
}

fn transport<T>(
    tcp: T,
    keypair: &Keypair,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, MeetingPointError>
where
    T: Transport + Unpin + Send + 'static,
    T::Output: futures::AsyncRead + futures::AsyncWrite + Unpin + Send + 'static,
    T::Error: Send + Sync + 'static,
    T::Dial: Send + 'static,
    T::ListenerUpgrade: Send + 'static,
{
    // Unlike a device, the server keeps libp2p's port reuse: it never dials devices that
    // dial it at the same moment, and AutoNAT dial-backs ask for a new port themselves.
    Ok(tcp
        .upgrade(Version::V1Lazy)
        .authenticate(noise::Config::new(keypair)?)
        .multiplex(yamux::Config::default())
        .timeout(Duration::from_secs(10))
        .boxed())
}

/// Listens on every configured address and returns once each is bound; the server then
/// runs on `runtime` until the returned handle is shut down or dropped.
pub async fn start_meeting_point<R, T>(
    runtime: R,
    config: MeetingPointConfig,
    tcp: T,
) -> Result<MeetingPoint, MeetingPointError>
where
    R: Runtime,
    T: Transport + Unpin + Send + 'static,
    T::Output: futures::AsyncRead + futures::AsyncWrite + Unpin + Send + 'static,
    T::Error: Send + Sync + 'static,
    T::Dial: Send + 'static,
    T::ListenerUpgrade: Send + 'static,
{
    if config.listen.is_empty() {
        return Err(MeetingPointError::NothingToListenOn);
    }
    let runtime: Arc<dyn Runtime> = Arc::new(runtime);
    let me = config.keypair.public().to_peer_id();
    let behaviour = MeetingPointBehaviour::new(&config.keypair, &config);
    // Lazy protocol negotiation on the streams it opens (the STOP stream of each circuit):
    // a round trip less on every relayed connection (see `negotiation`).
    let swarm_config = libp2p::swarm::Config::with_executor(Executor(runtime.clone()))
        .with_idle_connection_timeout(config.idle_timeout)
        .with_substream_upgrade_protocol_override(Version::V1Lazy);
    let mut swarm = Swarm::new(
        transport(tcp, &config.keypair)?,
        behaviour,
        me,
        swarm_config,
    );
    let bound = crate::listen::listen_on_all(&mut swarm, &config.listen)
        .await
        .map_err(|f| MeetingPointError::Listen {
            addr: f.addr,
            reason: f.reason,
        })?;
    // Relay reservations hand out the server's external addresses (and identify tells
    // them): without configured ones, the server is reachable where it listens.
    if config.external.is_empty() {
        for address in bound {
            swarm.add_external_address(address);
        }
    }
    for addr in &config.external {
        swarm.add_external_address(addr.clone());
    }
    // A wildcard listener reports one address per interface; those reported so far are
    // in `listeners()`.
    let reachable: Vec<Multiaddr> = match config.external.is_empty() {
        true => swarm.listeners().cloned().collect(),
        false => config.external.clone(),
    };
    let addrs = reachable
        .into_iter()
        .map(|a| match a.iter().last() {
            Some(Protocol::P2p(_)) => a,
            _ => a.with(Protocol::P2p(me)),
        })
        .collect();
    let follow_listeners = config.external.is_empty();
    let (commands, rx) = mpsc::unbounded();
    runtime.spawn(serve(swarm, rx, follow_listeners).boxed());
    Ok(MeetingPoint {
        peer_id: me,
        addrs,
        commands,
    })
}

/// `follow_listeners`: listen addresses that come and go (interfaces of a wildcard
/// listener) are external addresses too.
async fn serve(
    mut swarm: Swarm<MeetingPointBehaviour>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    follow_listeners: bool,
) {
    loop {
        futures::select! {
            command = commands.next() => match command {
                Some(Command::ProviderRecords { peer, reply }) => {
                    let store = swarm.behaviour_mut().kad.store_mut();
                    let _ = reply.send(store.records_of(&peer, Instant::now()));
                }
                Some(Command::Shutdown { reply }) => {
                    close_all(&mut swarm);
                    let _ = reply.send(());
                    return;
                }
                None => {
                    close_all(&mut swarm);
                    return;
                }
            },
            event = swarm.select_next_some() => handle_event(&mut swarm, event, follow_listeners),
        }
    }
}

fn close_all(swarm: &mut Swarm<MeetingPointBehaviour>) {
    let peers: Vec<PeerId> = swarm.connected_peers().copied().collect();
    for peer in peers {
        let _ = swarm.disconnect_peer_id(peer);
    }
    tracing::info!("meeting point stopped");
}

fn handle_event(
    swarm: &mut Swarm<MeetingPointBehaviour>,
    event: SwarmEvent<MeetingPointBehaviourEvent>,
    follow_listeners: bool,
) {
    match event {
        SwarmEvent::NewListenAddr { address, .. } => {
            tracing::info!(%address, "listening");
            if follow_listeners {
                swarm.add_external_address(address);
            }
        }
        SwarmEvent::ExpiredListenAddr { address, .. } if follow_listeners => {
            swarm.remove_external_address(&address);
        }
        SwarmEvent::ConnectionEstablished {
            peer_id, endpoint, ..
        } => {
            tracing::debug!(%peer_id, addr = %endpoint.get_remote_address(), "connected");
        }
        // Only peers that serve the DHT go into the routing table: devices in client mode,
        // or other libp2p software, must not be handed out as DHT servers.
        SwarmEvent::Behaviour(MeetingPointBehaviourEvent::Identify(
            identify::Event::Received { peer_id, info, .. },
        )) if info.protocols.contains(&KAD_PROTOCOL) => {
            for addr in info.listen_addrs {
                swarm.behaviour_mut().kad.add_address(&peer_id, addr);
            }
        }
        SwarmEvent::Behaviour(MeetingPointBehaviourEvent::Relay(event)) => log_relay(event),
        SwarmEvent::Behaviour(MeetingPointBehaviourEvent::Kad(kad::Event::InboundRequest {
            request,
        })) => {
            tracing::debug!(?request, "dht request");
        }
        _ => {}
    }
}

fn log_relay(event: relay::Event) {
    match event {
        relay::Event::ReservationReqAccepted {
            src_peer_id,
            renewed,
        } => tracing::info!(peer = %src_peer_id, renewed, "reservation accepted"),
        relay::Event::ReservationReqDenied { src_peer_id } => {
            tracing::info!(peer = %src_peer_id, "reservation denied (limits)")
        }
        relay::Event::ReservationTimedOut { src_peer_id } => {
            tracing::info!(peer = %src_peer_id, "reservation timed out")
        }
        relay::Event::CircuitReqAccepted {
            src_peer_id,
            dst_peer_id,
        } => tracing::info!(src = %src_peer_id, dst = %dst_peer_id, "circuit opened"),
        relay::Event::CircuitReqDenied {
            src_peer_id,
            dst_peer_id,
        } => tracing::info!(src = %src_peer_id, dst = %dst_peer_id, "circuit denied (limits)"),
        relay::Event::CircuitClosed {
            src_peer_id,
            dst_peer_id,
            error,
        } => tracing::info!(
            src = %src_peer_id, dst = %dst_peer_id, error = ?error, "circuit closed"
        ),
        other => tracing::debug!(event = ?other, "relay"),
    }
}
