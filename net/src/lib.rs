//! paircode-net: the runtime-independent half of paircode's networking.
//!
//! A node is a libp2p swarm (TCP + Noise + Yamux; mDNS, Kademlia, identify, ping and the
//! pairing protocol `/paircode/pair/1`) driven by one task that feeds the sans-IO
//! `paircode_core::Pairing` and carries out its actions. Paired devices then reach each
//! other over application streams ([`Node::connect`], [`Node::accept`], on libp2p-stream)
//! and derive application keys ([`Node::export_key`]). The runtime crates
//! (`paircode-tokio`, `paircode-async-std`) only supply the TCP and mDNS providers, a
//! spawner and a timer, and call [`start_node`].
//!
//! With meeting points ([`NodeConfig::relays`]) a node also reaches devices on other
//! networks: it holds a circuit relay v2 reservation on each and advertises the circuit
//! address, a joiner finds the initiator's provider record through them, DCUtR upgrades
//! the relayed connection to a direct one where the NATs allow, and paired devices meet
//! again under a per-pair rotating rendezvous key ([`Node::set_rendezvous`]);
//! [`Node::reach`] reports reservations and each connection's path.
//!
//! The driver does I/O only: which session a message belongs to, and every presence
//! decision about paired devices (`paircode_core::Presence`: who is online, who is owed
//! an unpair notice, when to greet and whom to look for) are the core's, so the simulator
//! tests what ships.
//!
//! An embedder uses [`Node`] (from a runtime crate's `start`), its [`NodeEvent`] stream
//! and the [`PairingHandle`] of each session; see [`Node`] for an example.

#![warn(missing_docs)]

mod behaviour;
mod driver;
mod error;
mod limits;
mod listen;
pub mod meeting_point;
pub mod muxer;
mod negotiation;
mod node;
pub mod protocol;
mod reach;
mod read_ahead;
mod store;
mod streams;
mod transport;

use std::io;
use std::sync::Arc;

use futures::channel::mpsc;
use futures::FutureExt;
use libp2p::core::Transport;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{mdns, Swarm};
use paircode_core::{DeviceInfo, LocalDevice, PeerId};

use behaviour::Behaviour;

pub use driver::RENDEZVOUS_LABEL;
pub use error::{Error, FailReason, RejectReason, TransportError};
pub use libp2p::Multiaddr;
pub use limits::ConnectionLimits;
pub use node::{
    Discovery, EventStream, GenerateOptions, JoinOptions, Node, NodeConfig, NodeEvent,
    PairingEvent, PairingHandle, Runtime,
};
pub use paircode_core;
pub use reach::{ConnectionPath, MeetingPointState, MeetingPointStatus, ReachStatus};
pub use streams::{DeviceStream, Incoming, StreamError, CONNECT_TIMEOUT};

use driver::Driver;
use streams::Streams;

/// TCP settings both runtimes use. Nagle off: handshake messages are tiny and latency
/// is what the user waits for.
pub fn tcp_config() -> libp2p::tcp::Config {
    libp2p::tcp::Config::default().nodelay(true)
}

/// mDNS settings both runtimes use.
pub fn mdns_config() -> mdns::Config {
    mdns::Config::default()
}

struct Executor(Arc<dyn Runtime>);

impl libp2p::swarm::Executor for Executor {
    fn exec(&self, future: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) {
        self.0.spawn(future);
    }
}

/// Brings a node up: listens, registers the bootstrap peers, and returns once every
/// listen address is bound (so [`Node::listen_addrs`] is complete).
///
/// `tcp` is the runtime's TCP transport (configured with [`tcp_config`]); `new_mdns`
/// builds the runtime's mDNS behaviour, and is called again whenever a join needs fresh
/// LAN discovery.
pub async fn start_node<R, T, M, F>(
    runtime: R,
    config: NodeConfig,
    tcp: T,
    new_mdns: F,
) -> Result<Node, Error>
where
    R: Runtime,
    T: Transport + Unpin + Send + 'static,
    T::Output: futures::AsyncRead + futures::AsyncWrite + Unpin + Send + 'static,
    T::Error: Send + Sync + 'static,
    T::Dial: Send + 'static,
    T::ListenerUpgrade: Send + 'static,
    M: NetworkBehaviour<ToSwarm = mdns::Event> + Send + 'static,
    F: Fn(libp2p::PeerId) -> io::Result<M> + Send + 'static,
{
    let info = DeviceInfo::new(config.device_name.clone())?;
    // Durations as the core runs them (at most a day), before libp2p sees any: the provider
    // record's lifetime is the code's, and libp2p adds it to `Instant::now()`.
    let mut config = config;
    config.pairing = config.pairing.bounded();
    let bootstrap = with_peer_ids(&config.bootstrap, TransportError::BootstrapWithoutPeerId)?;
    let meeting_points = with_peer_ids(&config.relays, TransportError::RelayWithoutPeerId)?;
    let keypair = config.identity.libp2p_keypair();
    let me = keypair.public().to_peer_id();
    let runtime: Arc<dyn Runtime> = Arc::new(runtime);

    let reuse = transport::ReusePorts::default();
    let (relay_transport, relay_client) = libp2p::relay::client::new(me);
    let transport = transport::upgrade(tcp, relay_transport, reuse.clone(), &keypair)
        .map_err(TransportError::from)?;
    let mdns = match config.mdns {
        true => Some(new_mdns(me).map_err(TransportError::Mdns)?),
        false => None,
    };
    let reach = behaviour::Reach {
        meeting_points: !meeting_points.is_empty(),
        autonat_only_global_ips: config.autonat_only_global_ips,
    };
    let behaviour = Behaviour::new(
        &keypair,
        mdns,
        config.pairing.code_ttl,
        relay_client,
        reach,
        &config.limits,
    );
    // Lazy protocol negotiation on the streams we open: a round trip less per message
    // (see `negotiation`).
    let swarm_config = libp2p::swarm::Config::with_executor(Executor(runtime.clone()))
        .with_idle_connection_timeout(config.idle_timeout)
        .with_substream_upgrade_protocol_override(libp2p::core::upgrade::Version::V1Lazy);
    let mut swarm = Swarm::new(transport, behaviour, me, swarm_config);
    let control = swarm.behaviour().streams.inner().new_control();
    let streams = Streams::new(control, runtime.clone());

    listen::listen_on_all(&mut swarm, &config.listen)
        .await
        .map_err(|f| TransportError::Listen {
            addr: f.addr,
            reason: f.reason,
        })?;

    let (tx, rx) = mpsc::unbounded();
    let local = LocalDevice {
        peer: PeerId::from(me),
        info,
    };
    let factory = config
        .mdns
        .then(|| Box::new(new_mdns) as driver::MdnsFactory<M>);
    let reach = driver::Reach::new(meeting_points, reuse);
    let mut driver = Driver::new(
        swarm,
        runtime.clone(),
        factory,
        rx,
        local,
        config.pairing,
        reach,
    );
    driver.bootstrap(bootstrap);
    driver.keep_connections(config.limits.keep());
    runtime.spawn(driver.run().boxed());
    let node = Node {
        commands: tx,
        peer_id: PeerId::from(me),
        streams,
    };
    runtime.spawn(node.streams.clone().follow(node.events()).boxed());
    Ok(node)
}

/// Splits addresses ending in `/p2p/<peer id>` into peer and address.
fn with_peer_ids(
    addrs: &[Multiaddr],
    missing: fn(Multiaddr) -> TransportError,
) -> Result<Vec<(libp2p::PeerId, Multiaddr)>, TransportError> {
    addrs
        .iter()
        .map(|addr| match addr.iter().last() {
            Some(Protocol::P2p(peer)) => Ok((peer, addr.clone())),
            _ => Err(missing(addr.clone())),
        })
        .collect()
}
