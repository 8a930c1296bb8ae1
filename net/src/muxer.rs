//! Yamux with a bounded receive window: the connection upgrade the transport multiplexes
//! with, in place of libp2p-yamux's `Config`.
//!
//! yamux 0.13 grows a stream's receive window (how much the remote may send before the
//! reader catches up) by doubling it whenever the sender used half of it within two round
//! trips, and never shrinks it. Only `max_connection_receive_window` bounds that growth,
//! and it defaults to 1 GiB; libp2p-yamux 0.47, whose `Muxer` cannot be built from outside,
//! offers no setter for it. A reader that falls behind (a receiving daemon writing and
//! hashing a file on a loaded machine) then holds up to the whole window in memory: its
//! RSS grew to 75–80 MiB during a 1 GiB transfer. This module is libp2p-yamux's muxer for
//! yamux 0.13 alone, with the connection's window capped at [`WINDOW_GROWTH`] above the
//! 256 KiB every stream is guaranteed; the protocol on the wire (`/yamux/1.0.0`) is the
//! same, so peers on libp2p-yamux interoperate.

use std::collections::VecDeque;
use std::iter;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures::{ready, AsyncRead, AsyncWrite};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo};

/// How far the streams of one connection may grow their receive windows, together, beyond
/// the 256 KiB each starts with: the most a connection's readers can fall behind by. Enough
/// for 1 Gbit/s at 128 ms round trip on one stream (the bandwidth-delay product), and for a
/// reader on a loaded machine that is not scheduled for 30 ms at 500 MiB/s.
pub const WINDOW_GROWTH: usize = 16 * 1024 * 1024;
/// yamux's (and libp2p-yamux's) default: concurrent streams per connection.
const MAX_STREAMS: usize = 512;
/// Inbound streams kept while the swarm is not asking for them (libp2p-yamux's value,
/// yamux's ACK backlog); beyond that they are dropped.
const MAX_BUFFERED_INBOUND_STREAMS: usize = 256;

/// The upgrade: negotiates `/yamux/1.0.0` and runs yamux 0.13 with the bounded window.
#[derive(Debug, Clone)]
pub struct Config(yamux::Config);

impl Default for Config {
    fn default() -> Self {
        let mut cfg = yamux::Config::default();
        // As libp2p-yamux: reading after close is never permitted.
        cfg.set_read_after_close(false);
        cfg.set_max_num_streams(MAX_STREAMS);
        // Each stream keeps its guaranteed 256 KiB (yamux asserts the limit allows it).
        cfg.set_max_connection_receive_window(Some(
            MAX_STREAMS * yamux::DEFAULT_CREDIT as usize + WINDOW_GROWTH,
        ));
        Config(cfg)
    }
}

impl UpgradeInfo for Config {
    type Info = &'static str;
    type InfoIter = iter::Once<Self::Info>;

    fn protocol_info(&self) -> Self::InfoIter {
        iter::once("/yamux/1.0.0")
    }
}

impl<C> InboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer<C>;
    type Error = std::io::Error;
    type Future = futures::future::Ready<Result<Self::Output, Self::Error>>;

    fn upgrade_inbound(self, io: C, _: Self::Info) -> Self::Future {
        futures::future::ready(Ok(Muxer::new(yamux::Connection::new(
            io,
            self.0,
            yamux::Mode::Server,
        ))))
    }
}

impl<C> OutboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer<C>;
    type Error = std::io::Error;
    type Future = futures::future::Ready<Result<Self::Output, Self::Error>>;

    fn upgrade_outbound(self, io: C, _: Self::Info) -> Self::Future {
        futures::future::ready(Ok(Muxer::new(yamux::Connection::new(
            io,
            self.0,
            yamux::Mode::Client,
        ))))
    }
}

/// One yamux connection, as libp2p's [`StreamMuxer`].
#[derive(Debug)]
pub struct Muxer<C> {
    connection: yamux::Connection<C>,
    /// Inbound streams yamux produced while [`StreamMuxer::poll`] drove the connection
    /// (the only way it makes progress), until [`StreamMuxer::poll_inbound`] takes them.
    inbound: VecDeque<yamux::Stream>,
    inbound_waker: Option<Waker>,
}

impl<C> Muxer<C> {
    fn new(connection: yamux::Connection<C>) -> Self {
        Muxer {
            connection,
            inbound: VecDeque::new(),
            inbound_waker: None,
        }
    }
}

impl<C> Muxer<C>
where
    C: AsyncRead + AsyncWrite + Unpin + 'static,
{
    fn poll_next_inbound(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<yamux::Stream, yamux::ConnectionError>> {
        match ready!(self.connection.poll_next_inbound(cx)) {
            Some(stream) => Poll::Ready(stream),
            None => Poll::Ready(Err(yamux::ConnectionError::Closed)),
        }
    }
}

impl<C> StreamMuxer for Muxer<C>
where
    C: AsyncRead + AsyncWrite + Unpin + 'static,
{
    type Substream = yamux::Stream;
    type Error = yamux::ConnectionError;

    fn poll_inbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        if let Some(stream) = self.inbound.pop_front() {
            return Poll::Ready(Ok(stream));
        }
        if let Poll::Ready(stream) = self.poll_next_inbound(cx) {
            return Poll::Ready(stream);
        }
        self.inbound_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_outbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        self.connection.poll_new_outbound(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.connection.poll_close(cx)
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        let this = self.get_mut();
        let stream = ready!(this.poll_next_inbound(cx))?;
        if this.inbound.len() >= MAX_BUFFERED_INBOUND_STREAMS {
            tracing::warn!(%stream, "dropping an inbound stream: too many are waiting");
            drop(stream);
        } else {
            this.inbound.push_back(stream);
            if let Some(waker) = this.inbound_waker.take() {
                waker.wake();
            }
        }
        // Come back at once: the connection may have more to do.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// yamux panics when the connection's window leaves a stream less than its 256 KiB;
    /// the bound must not, and a single stream's window stays far below the 64 MiB a
    /// receiving daemon may use in all.
    #[test]
    fn the_window_bound_leaves_every_stream_its_credit() {
        let _ = Config::default();
        let one_stream = yamux::DEFAULT_CREDIT as usize + WINDOW_GROWTH;
        assert!(one_stream <= 17 * 1024 * 1024, "{one_stream}");
    }
}
