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
//!
//! It also holds back yamux's flushes (`Corked`): yamux flushes after every frame it
//! writes, so a message, its stream's opening and its close went out as a TCP segment (and
//! a Noise message) each, and each woke the peer once more.

use std::collections::VecDeque;
use std::io;
use std::iter;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
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
        futures::future::ready(Ok(Muxer::new(io, self.0, yamux::Mode::Server)))
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
        futures::future::ready(Ok(Muxer::new(io, self.0, yamux::Mode::Client)))
    }
}

/// The connection's bytes (Noise over TCP) as yamux sees them, sharing them with the
/// [`Muxer`]: yamux's flushes only note that something was written, and the muxer flushes
/// once yamux has written all it has, at the end of each call into it. Noise sends what
/// it buffered as one message when flushed, so the frames of one turn of yamux (a stream's
/// opening, its message, its close; another stream's reply) leave in one TCP segment
/// rather than one each, and the peer wakes once for them.
#[derive(Debug)]
struct Corked<C>(Arc<Mutex<Cork<C>>>);

#[derive(Debug)]
struct Cork<C> {
    io: C,
    /// Bytes were written since the last flush.
    unflushed: bool,
}

impl<C> Corked<C> {
    fn lock(&self) -> MutexGuard<'_, Cork<C>> {
        // Only this connection's task takes the lock, one call at a time; a panic inside
        // it leaves the bytes as they were, so a poisoned lock is still usable.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends what was written and not yet flushed. Pending leaves the waker with the
    /// socket, which wakes this connection's task (and so the muxer) once it can go on.
    fn poll_flush_held(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>
    where
        C: AsyncWrite + Unpin,
    {
        let mut cork = self.lock();
        if !cork.unflushed {
            return Poll::Ready(Ok(()));
        }
        ready!(Pin::new(&mut cork.io).poll_flush(cx))?;
        cork.unflushed = false;
        Poll::Ready(Ok(()))
    }
}

impl<C: AsyncRead + Unpin> AsyncRead for Corked<C> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.lock().io).poll_read(cx, buf)
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for Corked<C> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut cork = self.lock();
        let written = ready!(Pin::new(&mut cork.io).poll_write(cx, buf))?;
        cork.unflushed |= written > 0;
        Poll::Ready(Ok(written))
    }

    /// Held back: the muxer flushes after yamux's turn (see [`Corked`]).
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut cork = self.lock();
        // Noise's close flushes what it holds first.
        ready!(Pin::new(&mut cork.io).poll_close(cx))?;
        cork.unflushed = false;
        Poll::Ready(Ok(()))
    }
}

/// One yamux connection, as libp2p's [`StreamMuxer`].
#[derive(Debug)]
pub struct Muxer<C> {
    connection: yamux::Connection<Corked<C>>,
    /// The bytes yamux writes to, to flush them after each call into yamux.
    held: Corked<C>,
    /// Inbound streams yamux produced while [`StreamMuxer::poll`] drove the connection
    /// (the only way it makes progress), until [`StreamMuxer::poll_inbound`] takes them.
    inbound: VecDeque<yamux::Stream>,
    inbound_waker: Option<Waker>,
}

impl<C: AsyncRead + AsyncWrite + Unpin> Muxer<C> {
    fn new(io: C, config: yamux::Config, mode: yamux::Mode) -> Self {
        let shared = Arc::new(Mutex::new(Cork {
            io,
            unflushed: false,
        }));
        Muxer {
            connection: yamux::Connection::new(Corked(shared.clone()), config, mode),
            held: Corked(shared),
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

    /// Flushes what yamux wrote during a call into it; a failed flush is the connection's
    /// failure, reported in place of what the call returned.
    fn flushed<T>(
        &self,
        cx: &mut Context<'_>,
        outcome: Poll<Result<T, yamux::ConnectionError>>,
    ) -> Poll<Result<T, yamux::ConnectionError>> {
        match self.held.poll_flush_held(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(yamux::ConnectionError::Io(e))),
            Poll::Ready(Ok(())) | Poll::Pending => outcome,
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
        let outcome = self.poll_next_inbound(cx);
        if outcome.is_pending() {
            self.inbound_waker = Some(cx.waker().clone());
        }
        self.flushed(cx, outcome)
    }

    fn poll_outbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let outcome = self.connection.poll_new_outbound(cx);
        self.flushed(cx, outcome)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // yamux closes the socket itself, which flushes it.
        self.connection.poll_close(cx)
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        let this = self.get_mut();
        let stream = match this.poll_next_inbound(cx) {
            Poll::Ready(Ok(stream)) => stream,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return this.flushed(cx, Poll::Pending),
        };
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
        this.flushed(cx, Poll::Pending)
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

    use futures::executor::block_on;
    use futures::future::poll_fn;
    use futures::{AsyncReadExt, FutureExt};

    /// One direction of an in-memory connection, counting the flushes that reach it.
    #[derive(Clone, Default)]
    struct Pipe(Arc<Mutex<PipeState>>);

    #[derive(Default)]
    struct PipeState {
        bytes: VecDeque<u8>,
        reader: Option<Waker>,
        flushes: usize,
    }

    impl Pipe {
        fn flushes(&self) -> usize {
            self.0.lock().unwrap().flushes
        }
    }

    /// One end of the connection: reads one pipe, writes the other.
    struct End {
        rx: Pipe,
        tx: Pipe,
    }

    impl AsyncRead for End {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let mut rx = self.rx.0.lock().unwrap();
            if rx.bytes.is_empty() {
                rx.reader = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = buf.len().min(rx.bytes.len());
            for (slot, byte) in buf.iter_mut().zip(rx.bytes.drain(..n)) {
                *slot = byte;
            }
            Poll::Ready(Ok(n))
        }
    }

    impl AsyncWrite for End {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let mut tx = self.tx.0.lock().unwrap();
            tx.bytes.extend(buf);
            if let Some(reader) = tx.reader.take() {
                reader.wake();
            }
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.tx.0.lock().unwrap().flushes += 1;
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A client and a server muxer connected in memory, and the client's direction.
    fn connected() -> (Muxer<End>, Muxer<End>, Pipe) {
        let (up, down) = (Pipe::default(), Pipe::default());
        let end = |rx: &Pipe, tx: &Pipe| End {
            rx: rx.clone(),
            tx: tx.clone(),
        };
        let client = Muxer::new(end(&down, &up), Config::default().0, yamux::Mode::Client);
        let server = Muxer::new(end(&up, &down), Config::default().0, yamux::Mode::Server);
        (client, server, up)
    }

    /// Issue 14 (a warm pairing's time): yamux flushes after every frame, and every
    /// flush is a Noise message and a TCP segment of its own that wakes the peer. Frames
    /// written in one turn of the muxer (here the messages of two streams) leave in one
    /// flush; and what the muxer wrote is flushed before it waits, so it does arrive.
    #[test]
    fn frames_written_in_one_turn_leave_in_one_flush_and_arrive() {
        let (mut client, mut server, up) = connected();
        let mut idle = Context::from_waker(futures::task::noop_waker_ref());
        let mut open = || match Pin::new(&mut client).poll_outbound(&mut idle) {
            Poll::Ready(Ok(stream)) => stream,
            other => panic!("a new stream, got {other:?}"),
        };
        let (mut one, mut two) = (open(), open());
        let mut idle = Context::from_waker(futures::task::noop_waker_ref());
        // Each stream has room for one frame of its own before the muxer's turn.
        for (stream, message) in [(&mut one, b"one"), (&mut two, b"two")] {
            let written = Pin::new(stream).poll_write(&mut idle, message);
            assert!(matches!(written, Poll::Ready(Ok(3))), "{written:?}");
        }
        assert_eq!(up.flushes(), 0);
        let _ = Pin::new(&mut client).poll(&mut idle);
        assert_eq!(up.flushes(), 1);

        let mut received = Vec::new();
        for _ in 0..2 {
            let mut inbound = block_on(poll_fn(|cx| {
                let _ = Pin::new(&mut server).poll(cx);
                Pin::new(&mut server).poll_inbound(cx)
            }))
            .expect("a stream of the client's");
            let mut message = [0u8; 3];
            block_on(poll_fn(|cx| {
                let _ = Pin::new(&mut server).poll(cx);
                inbound.read_exact(&mut message).poll_unpin(cx)
            }))
            .expect("its message");
            received.push(message);
        }
        received.sort();
        assert_eq!(received, [*b"one", *b"two"]);
    }
}
