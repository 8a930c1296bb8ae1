//! TCP + Noise + Yamux, with one twist: every outgoing TCP connection gets a fresh local port.
//!
//! libp2p-tcp binds outgoing sockets to the listening port by default (`PortUse::Reuse`).
//! When two nodes dial each other at the same instant that way, the kernel merges both
//! dials into one TCP "simultaneous open" in which both ends act as initiator and the
//! multistream/Noise negotiation fails ("Handshake failed: input error", 4–11% of
//! simultaneous starts in the measurements). Our own dials ask for a new port, but
//! Kademlia and request-response dial with the default, so the override has to sit in
//! the transport. Reusing the listen port only matters for NAT hole punching, which
//! paircode does not do.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{
    Boxed, DialOpts, ListenerId, PortUse, TransportError, TransportEvent,
};
use libp2p::core::upgrade::Version;
use libp2p::core::Transport;
use libp2p::identity::Keypair;
use libp2p::{noise, yamux, Multiaddr, PeerId};

/// Wraps a transport so that no dial ever reuses a listening port.
#[derive(Debug)]
pub struct NewPortDials<T>(pub T);

impl<T: Transport + Unpin> Transport for NewPortDials<T> {
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = T::Dial;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        self.0.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.0.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        mut opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        opts.port_use = PortUse::New;
        self.0.dial(addr, opts)
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Upgrades a runtime's TCP transport into the authenticated, multiplexed transport the
/// swarm runs on. The PeerId Noise authenticates is the one the pairing transcript binds.
pub fn upgrade<T>(
    tcp: T,
    keypair: &Keypair,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, noise::Error>
where
    T: Transport + Unpin + Send + 'static,
    T::Output: futures::AsyncRead + futures::AsyncWrite + Unpin + Send + 'static,
    T::Error: Send + Sync + 'static,
    T::Dial: Send + 'static,
    T::ListenerUpgrade: Send + 'static,
{
    Ok(NewPortDials(tcp)
        .upgrade(Version::V1Lazy)
        .authenticate(noise::Config::new(keypair)?)
        .multiplex(yamux::Config::default())
        .timeout(Duration::from_secs(10))
        .boxed())
}
