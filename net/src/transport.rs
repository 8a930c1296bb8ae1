//! TCP + Noise + Yamux, or a circuit through a meeting point's relay, with one rule about
//! which local port an outgoing TCP connection leaves from.
//!
//! libp2p-tcp binds outgoing sockets to the listening port by default (`PortUse::Reuse`).
//! When two nodes dial each other at the same instant that way, the kernel merges both
//! dials into one TCP "simultaneous open" in which both ends act as initiator and the
//! multistream/Noise negotiation fails ("Handshake failed: input error", 4–11% of
//! simultaneous starts in the measurements). A fresh local port for each dial avoids it.
//!
//! Hole punching needs the opposite: the NAT maps the listen port, the meeting point
//! observes that mapping, and DCUtR's dials must leave from the same port or the peer's
//! SYN finds no mapping. So the listen port is reused for exactly two kinds of peer, which
//! [`ReusePorts`] names: meeting points (their observation of us is what DCUtR advertises)
//! and peers we are connected to through a relay (the hole-punching dials, where a TCP
//! simultaneous open is the point and DCUtR assigns the roles). Every other dial — mDNS,
//! Kademlia, pairing, presence — gets a new port, as before. Kademlia and request-response
//! dial with libp2p's default, so the rule has to sit in the transport; it reads the peer
//! from the `/p2p/<peer id>` the swarm appends to every address it dials.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{
    Boxed, DialOpts, ListenerId, OrTransport, PortUse, TransportError, TransportEvent,
};
use libp2p::core::upgrade::Version;
use libp2p::core::Transport;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{noise, relay, Multiaddr, PeerId};

use crate::muxer;
use crate::read_ahead::ReadAhead;

/// The peers whose dials keep the listen port (see the module docs). Shared between the
/// transport, which reads it on every dial, and the driver, which knows who they are.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReusePorts(Arc<Mutex<HashSet<PeerId>>>);

impl ReusePorts {
    pub(crate) fn insert(&self, peer: PeerId) {
        self.0.lock().expect("not poisoned").insert(peer);
    }

    pub(crate) fn remove(&self, peer: &PeerId) {
        self.0.lock().expect("not poisoned").remove(peer);
    }

    fn contains(&self, addr: &Multiaddr) -> bool {
        match addr.iter().last() {
            Some(Protocol::P2p(peer)) => self.0.lock().expect("not poisoned").contains(&peer),
            _ => false,
        }
    }
}

/// Wraps a TCP transport so that dials reuse the listen port only towards [`ReusePorts`].
#[derive(Debug)]
pub(crate) struct PortPolicy<T> {
    inner: T,
    reuse: ReusePorts,
}

impl<T: Transport + Unpin> Transport for PortPolicy<T> {
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = T::Dial;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        self.inner.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        mut opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        if !self.reuse.contains(&addr) {
            opts.port_use = PortUse::New;
        }
        self.inner.dial(addr, opts)
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

/// Upgrades a runtime's TCP transport, and the relay client's circuit transport beside
/// it, into the authenticated, multiplexed transport the swarm runs on. The PeerId Noise
/// authenticates is the one the pairing transcript binds; over a circuit, Noise runs end
/// to end through the relay. Yamux runs with a bounded receive window ([`muxer`]).
pub(crate) fn upgrade<T>(
    tcp: T,
    relay: relay::client::Transport,
    reuse: ReusePorts,
    keypair: &Keypair,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, noise::Error>
where
    T: Transport + Unpin + Send + 'static,
    T::Output: futures::AsyncRead + futures::AsyncWrite + Unpin + Send + 'static,
    T::Error: Send + Sync + 'static,
    T::Dial: Send + 'static,
    T::ListenerUpgrade: Send + 'static,
{
    let tcp = PortPolicy { inner: tcp, reuse };
    Ok(OrTransport::new(relay, tcp)
        .map(|io, _| ReadAhead::new(io))
        .upgrade(Version::V1Lazy)
        .authenticate(noise::Config::new(keypair)?)
        .multiplex(muxer::Config::default())
        .timeout(Duration::from_secs(10))
        .boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_named_peers_keep_the_listen_port() {
        let reuse = ReusePorts::default();
        let relay = PeerId::random();
        let other = PeerId::random();
        reuse.insert(relay);
        let addr = |peer: PeerId| -> Multiaddr {
            format!("/ip4/198.51.100.1/tcp/4001/p2p/{peer}")
                .parse()
                .unwrap()
        };
        assert!(reuse.contains(&addr(relay)));
        assert!(!reuse.contains(&addr(other)));
        // An address that names no peer gets a new port.
        assert!(!reuse.contains(&"/ip4/198.51.100.1/tcp/4001".parse().unwrap()));
        reuse.remove(&relay);
        assert!(!reuse.contains(&addr(relay)));
    }
}
