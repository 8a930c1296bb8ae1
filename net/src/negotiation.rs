//! How a stream's protocol is agreed on: lazily, with two exceptions.
//!
//! multistream-select 1.0 as libp2p's swarm runs it by default (`V1`) waits, on every
//! stream it opens, for the remote to echo the protocol before the first byte of the
//! message goes: a round trip per stream. Across two NATs a pairing's messages travel
//! through the meeting point's relay, 80 ms round trip in the benchmark's topology, and
//! the join opens five streams on its way (the DHT lookup, the relay's HOP and STOP
//! streams, `Join`, `Prove`, and the initiator's `Done` back): about 360 ms of a join
//! was spent waiting for these echoes. So the swarm negotiates `V1Lazy`
//! (`lib::start_node`): with a single protocol proposed, the proposal and the message go
//! together and the echo is checked when the answer is read. Every protocol paircode
//! speaks over a stream it opens is one the peer is expected to speak; a peer that does
//! not answers "na" instead of the echo, and the request fails then, at the same moment
//! as with `V1`, only with an I/O error in place of "unsupported protocol".
//!
//! Two exceptions. The handshake (`/paircode/pair/1`) is lazy only through a relay
//! ([`Confirmed::direct_only`]). With `V1Lazy` a request's bytes leave with the stream,
//! so a request its sender gave up on (a link held, then cut) still arrives once the link
//! is back, where with `V1` it never left: with it lazy on a LAN, the cable-pulled
//! scenario of `cli/tests/hosts.rs` failed (the joiner's next join found no device; the
//! likely cause, not traced: its abandoned `Prove`s reached the initiator's next session
//! as failed proofs and got it rate-limited). On a LAN the round trip saved is well under a
//! millisecond; through a relay it is 80 ms per message in the benchmark. And application
//! streams ([`crate::streams`]): `Node::connect` tells the
//! caller that the device does not accept the protocol (`StreamError::Unsupported`)
//! before handing out a stream, so it must know that the echo came. [`Confirmed`] wraps
//! their behaviour so that their streams are negotiated as with `V1`: it appends a
//! protocol nobody speaks to what each stream proposes. `V1Lazy` is lazy only about the
//! last protocol proposed, so the real one is proposed and its echo awaited (one round
//! trip, as before); if the remote refuses it, the lazy choice falls on the sentinel,
//! which [`ConfirmedUpgrade`] refuses at once, and the behaviour sees the failed
//! negotiation it would have seen with `V1`.

use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::{OutboundUpgrade, UpgradeInfo};
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
    ListenUpgradeError, OutboundUpgradeSend,
};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, Stream, StreamUpgradeError, SubstreamProtocol, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// Proposed after a confirmed stream's protocols; no peer speaks it.
const SENTINEL: &str = "/paircode/unsupported/0";

/// `B`, whose outbound streams are negotiated eagerly under the swarm's `V1Lazy`: on
/// every connection, or only on direct ones.
pub(crate) struct Confirmed<B> {
    inner: B,
    relayed_too: bool,
}

impl<B> Confirmed<B> {
    /// Eager on every connection.
    pub(crate) fn new(inner: B) -> Self {
        Confirmed {
            inner,
            relayed_too: true,
        }
    }

    /// Eager on direct connections, lazy through a relay.
    pub(crate) fn direct_only(inner: B) -> Self {
        Confirmed {
            inner,
            relayed_too: false,
        }
    }

    pub(crate) fn inner(&self) -> &B {
        &self.inner
    }

    fn handler<H>(&self, inner: H, addr: &Multiaddr) -> ConfirmedHandler<H> {
        let relayed = addr.iter().any(|p| p == Protocol::P2pCircuit);
        ConfirmedHandler {
            inner,
            eager: self.relayed_too || !relayed,
        }
    }
}

impl<B> std::ops::Deref for Confirmed<B> {
    type Target = B;
    fn deref(&self) -> &B {
        &self.inner
    }
}

impl<B> std::ops::DerefMut for Confirmed<B> {
    fn deref_mut(&mut self) -> &mut B {
        &mut self.inner
    }
}

impl<B: NetworkBehaviour> NetworkBehaviour for Confirmed<B> {
    type ConnectionHandler = ConfirmedHandler<THandler<B>>;
    type ToSwarm = B::ToSwarm;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let inner = self.inner.handle_established_inbound_connection(
            connection_id,
            peer,
            local_addr,
            remote_addr,
        )?;
        Ok(self.handler(inner, local_addr))
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.inner.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let inner = self.inner.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )?;
        Ok(self.handler(inner, addr))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        self.inner.on_swarm_event(event)
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.inner
            .on_connection_handler_event(peer, connection_id, event)
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.inner.poll(cx)
    }
}

/// `H`, its outbound upgrades wrapped in [`ConfirmedUpgrade`].
pub(crate) struct ConfirmedHandler<H> {
    inner: H,
    /// Whether the sentinel is proposed (see the module docs).
    eager: bool,
}

#[expect(deprecated)] // The open infos are the inner handler's, passed through.
impl<H: ConnectionHandler> ConnectionHandler for ConfirmedHandler<H> {
    type FromBehaviour = H::FromBehaviour;
    type ToBehaviour = H::ToBehaviour;
    type InboundProtocol = H::InboundProtocol;
    type OutboundProtocol = ConfirmedUpgrade<H::OutboundProtocol>;
    type InboundOpenInfo = H::InboundOpenInfo;
    type OutboundOpenInfo = H::OutboundOpenInfo;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, Self::InboundOpenInfo> {
        self.inner.listen_protocol()
    }

    fn connection_keep_alive(&self) -> bool {
        self.inner.connection_keep_alive()
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<
        ConnectionHandlerEvent<Self::OutboundProtocol, Self::OutboundOpenInfo, Self::ToBehaviour>,
    > {
        let eager = self.eager;
        self.inner.poll(cx).map(|event| match event {
            ConnectionHandlerEvent::OutboundSubstreamRequest { protocol } => {
                ConnectionHandlerEvent::OutboundSubstreamRequest {
                    protocol: protocol.map_upgrade(|inner| ConfirmedUpgrade { inner, eager }),
                }
            }
            ConnectionHandlerEvent::ReportRemoteProtocols(change) => {
                ConnectionHandlerEvent::ReportRemoteProtocols(change)
            }
            ConnectionHandlerEvent::NotifyBehaviour(event) => {
                ConnectionHandlerEvent::NotifyBehaviour(event)
            }
            // `ConnectionHandlerEvent` is non-exhaustive; libp2p 0.55 (pinned) has no
            // other variant.
            _ => unreachable!("a connection handler event libp2p 0.55 does not have"),
        })
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Option<Self::ToBehaviour>> {
        self.inner.poll_close(cx)
    }

    fn on_behaviour_event(&mut self, event: Self::FromBehaviour) {
        self.inner.on_behaviour_event(event)
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<
            Self::InboundProtocol,
            Self::OutboundProtocol,
            Self::InboundOpenInfo,
            Self::OutboundOpenInfo,
        >,
    ) {
        let inner = match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound { protocol, info }) => {
                ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound { protocol, info })
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol,
                info,
            }) => {
                ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound { protocol, info })
            }
            ConnectionEvent::AddressChange(change) => ConnectionEvent::AddressChange(change),
            ConnectionEvent::DialUpgradeError(DialUpgradeError { info, error }) => {
                let error = match error {
                    StreamUpgradeError::Apply(Refused::Sentinel) => {
                        StreamUpgradeError::NegotiationFailed
                    }
                    StreamUpgradeError::Apply(Refused::Inner(e)) => StreamUpgradeError::Apply(e),
                    StreamUpgradeError::NegotiationFailed => StreamUpgradeError::NegotiationFailed,
                    StreamUpgradeError::Timeout => StreamUpgradeError::Timeout,
                    StreamUpgradeError::Io(e) => StreamUpgradeError::Io(e),
                };
                ConnectionEvent::DialUpgradeError(DialUpgradeError { info, error })
            }
            ConnectionEvent::ListenUpgradeError(ListenUpgradeError { info, error }) => {
                ConnectionEvent::ListenUpgradeError(ListenUpgradeError { info, error })
            }
            ConnectionEvent::LocalProtocolsChange(change) => {
                ConnectionEvent::LocalProtocolsChange(change)
            }
            ConnectionEvent::RemoteProtocolsChange(change) => {
                ConnectionEvent::RemoteProtocolsChange(change)
            }
            // `ConnectionEvent` is non-exhaustive; libp2p 0.55 (pinned) has no other
            // variant.
            _ => return,
        };
        self.inner.on_connection_event(inner)
    }
}

/// `U`'s protocols, then [`SENTINEL`] if `eager`.
pub(crate) struct ConfirmedUpgrade<U> {
    inner: U,
    eager: bool,
}

/// One of the inner upgrade's protocols, or the sentinel.
#[derive(Clone)]
pub(crate) enum ConfirmedInfo<I> {
    Inner(I),
    Sentinel,
}

impl<I: AsRef<str>> AsRef<str> for ConfirmedInfo<I> {
    fn as_ref(&self) -> &str {
        match self {
            ConfirmedInfo::Inner(info) => info.as_ref(),
            ConfirmedInfo::Sentinel => SENTINEL,
        }
    }
}

/// Why a confirmed stream's upgrade failed.
#[derive(Debug)]
pub(crate) enum Refused<E> {
    /// The remote refused every real protocol (the lazy choice fell on the sentinel).
    Sentinel,
    Inner(E),
}

impl<U: OutboundUpgradeSend> UpgradeInfo for ConfirmedUpgrade<U> {
    type Info = ConfirmedInfo<U::Info>;
    type InfoIter = Vec<Self::Info>;

    fn protocol_info(&self) -> Self::InfoIter {
        let sentinel = self.eager.then_some(ConfirmedInfo::Sentinel);
        self.inner
            .protocol_info()
            .map(ConfirmedInfo::Inner)
            .chain(sentinel)
            .collect()
    }
}

impl<U: OutboundUpgradeSend> OutboundUpgrade<Stream> for ConfirmedUpgrade<U> {
    type Output = U::Output;
    type Error = Refused<U::Error>;
    type Future = BoxFuture<'static, Result<U::Output, Refused<U::Error>>>;

    fn upgrade_outbound(self, stream: Stream, info: Self::Info) -> Self::Future {
        match info {
            ConfirmedInfo::Inner(info) => self
                .inner
                .upgrade_outbound(stream, info)
                .map(|r| r.map_err(Refused::Inner))
                .boxed(),
            ConfirmedInfo::Sentinel => futures::future::ready(Err(Refused::Sentinel)).boxed(),
        }
    }
}
