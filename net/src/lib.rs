//! paircode-net: the runtime-independent half of paircode's networking.
//!
//! A node is a libp2p swarm (TCP + Noise + Yamux; mDNS, Kademlia, identify, ping and the
//! pairing protocol `/paircode/pair/1`) driven by one task that feeds the sans-IO
//! `paircode_core::Pairing` and carries out its actions. The runtime crates
//! (`paircode-tokio`, `paircode-async-std`) only supply the TCP and mDNS providers, a
//! spawner and a timer, and call [`start_node`].

mod behaviour;
mod device;
mod driver;
mod error;
pub mod meeting_point;
mod node;
pub mod protocol;
pub mod transport;

use std::io;
use std::sync::Arc;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use libp2p::core::Transport;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{mdns, Swarm};
use paircode_core::{DeviceInfo, LocalDevice, PeerId};

pub use behaviour::{Behaviour, BehaviourEvent, IDENTIFY_PROTOCOL, KAD_PROTOCOL};
pub use error::{Error, TransportError};
pub use libp2p::Multiaddr;
pub use node::{
    Discovery, EventStream, GenerateOptions, Node, NodeConfig, NodeEvent, PairingEvent,
    PairingHandle, Runtime,
};
pub use paircode_core;

use driver::Driver;

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
    let keypair = config.identity.libp2p_keypair();
    let me = keypair.public().to_peer_id();
    let runtime: Arc<dyn Runtime> = Arc::new(runtime);

    let transport = transport::upgrade(tcp, &keypair).map_err(TransportError::from)?;
    let mdns = match config.mdns {
        true => Some(new_mdns(me).map_err(TransportError::Mdns)?),
        false => None,
    };
    let behaviour = Behaviour::new(&keypair, mdns, config.pairing.code_ttl);
    let swarm_config = libp2p::swarm::Config::with_executor(Executor(runtime.clone()))
        .with_idle_connection_timeout(config.idle_timeout);
    let mut swarm = Swarm::new(transport, behaviour, me, swarm_config);

    let mut listeners = Vec::new();
    for addr in &config.listen {
        let id = swarm
            .listen_on(addr.clone())
            .map_err(|e| TransportError::Listen {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        listeners.push((id, addr.clone()));
    }
    wait_until_listening(&mut swarm, listeners).await?;

    let (tx, rx) = mpsc::unbounded();
    let local = LocalDevice {
        peer: PeerId::from(me),
        info,
    };
    let factory = config
        .mdns
        .then(|| Box::new(new_mdns) as driver::MdnsFactory<M>);
    let mut driver = Driver::new(swarm, runtime.clone(), factory, rx, local, config.pairing);
    let mut have_bootstrap = false;
    for addr in &config.bootstrap {
        let Some(Protocol::P2p(peer)) = addr.iter().last() else {
            return Err(TransportError::BootstrapWithoutPeerId(addr.clone()).into());
        };
        driver
            .swarm
            .behaviour_mut()
            .kad
            .add_address(&peer, addr.clone());
        driver.learn_address(peer, addr.clone());
        have_bootstrap = true;
    }
    if have_bootstrap {
        // Joins the DHT now rather than at the first lookup, so records are reachable early.
        let _ = driver.swarm.behaviour_mut().kad.bootstrap();
    }
    runtime.spawn(driver.run().boxed());
    Ok(Node {
        commands: tx,
        peer_id: PeerId::from(me),
    })
}

/// Drives the swarm until each listener has reported an address (or failed).
async fn wait_until_listening<B: NetworkBehaviour>(
    swarm: &mut Swarm<B>,
    mut waiting: Vec<(libp2p::core::transport::ListenerId, Multiaddr)>,
) -> Result<(), Error> {
    while !waiting.is_empty() {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { listener_id, .. } => {
                waiting.retain(|(id, _)| *id != listener_id);
            }
            SwarmEvent::ListenerError { listener_id, error }
            | SwarmEvent::ListenerClosed {
                listener_id,
                reason: Err(error),
                ..
            } => {
                if let Some((_, addr)) = waiting.iter().find(|(id, _)| *id == listener_id) {
                    return Err(TransportError::Listen {
                        addr: addr.clone(),
                        reason: error.to_string(),
                    }
                    .into());
                }
            }
            _ => {}
        }
    }
    Ok(())
}
