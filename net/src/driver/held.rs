//! A `Prove`'s response, held open for the `Done` that follows the initiator's store.
//!
//! The initiator acknowledges a pairing only once it is stored (persist before accept), so
//! when the `Prove` has been handled its `Done` does not exist yet: the response would go
//! empty and the `Done` follow as a request of its own. That request opens a new stream,
//! which on a direct connection waits a round trip for its protocol's confirmation before
//! its first byte (see `negotiation`), and it queues behind whatever the daemon asks for
//! on storing (presence, rendezvous). While the core says that the `Done` waits for the
//! store alone ([`PairingHost::verdict_pending`](paircode_core::PairingHost)), the
//! response stays open and carries the `Done` when it comes: Prove → Done on one stream,
//! as on the honest path of PROTOCOL.md §4.2. The joiner handles a response like a
//! request, so nothing changes on the wire.
//!
//! Held for at most [`HOLD_AT_MOST`]: the joiner gives up on its request after the
//! request timeout (10 s), and a store that takes longer than the bound sends its `Done`
//! as a request, as before. Whatever ends the wait (the store's answer, a cancel, the
//! session's deadline) makes the core send the `Done` or stop owing it; the response then
//! goes with it, or empty.

use std::time::{Duration, Instant};

use libp2p::request_response::ResponseChannel;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{mdns, PeerId as Libp2pPeerId};

use super::{to_core, Driver};

/// How long a response waits for the store's verdict; well inside the joiner's 10 s
/// request timeout.
const HOLD_AT_MOST: Duration = Duration::from_secs(2);

/// The open response to a peer whose verdict waits for our store.
pub(super) struct Held {
    peer: Libp2pPeerId,
    channel: ResponseChannel<Vec<u8>>,
    until: Instant,
}

impl Held {
    pub(super) fn deadline(&self) -> Instant {
        self.until
    }
}

impl<M> Driver<M>
where
    M: NetworkBehaviour<ToSwarm = mdns::Event> + Send + 'static,
{
    /// A request from `peer` was handled without a reply: its response goes empty now,
    /// or waits for the verdict the core owes `peer`. One response is held at a time, the
    /// newest: a `Prove` repeated (its first stream lost with its connection) is the one
    /// the joiner still reads.
    pub(super) fn answer_or_hold(
        &mut self,
        peer: Libp2pPeerId,
        channel: ResponseChannel<Vec<u8>>,
        now: Instant,
    ) {
        if self.host.verdict_pending(&to_core(&peer)) {
            tracing::debug!(%peer, "response held for the verdict");
            if let Some(older) = self.held.take() {
                self.respond(older.channel, Vec::new());
            }
            self.held = Some(Held {
                peer,
                channel,
                until: now + HOLD_AT_MOST,
            });
            return;
        }
        self.respond(channel, Vec::new());
    }

    /// Sends `bytes` to `peer` in the held response, if one is held for it; otherwise
    /// gives them back.
    pub(super) fn reply_held(&mut self, peer: Libp2pPeerId, bytes: Vec<u8>) -> Option<Vec<u8>> {
        match self.held.take() {
            Some(held) if held.peer == peer => {
                tracing::debug!(%peer, "verdict sent in the held response");
                self.respond(held.channel, bytes);
                None
            }
            other => {
                self.held = other;
                Some(bytes)
            }
        }
    }

    /// Ends the hold once the core no longer owes the verdict (it was sent, or will not
    /// be) or the bound has passed: the response goes empty.
    pub(super) fn release_held(&mut self, now: Instant) {
        let Some(held) = &self.held else {
            return;
        };
        if now < held.until && self.host.verdict_pending(&to_core(&held.peer)) {
            return;
        }
        if let Some(held) = self.held.take() {
            self.respond(held.channel, Vec::new());
        }
    }
}
