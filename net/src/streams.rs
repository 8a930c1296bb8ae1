//! Application streams to paired devices: [`Node::connect`], [`Node::accept`] and
//! [`Node::export_key`], on `libp2p-stream`.
//!
//! A stream's remote PeerId is the one Noise authenticated for its connection. A stream
//! reaches the application only if that peer is paired at the moment it opens, and
//! unpairing a device resets its open streams. The paired set therefore lives here, next
//! to the open streams, and the [`Node`] updates it in the same call that tells the
//! driver: admission and unpairing are decided under one lock, never racing the event loop.
//!
//! Nothing here buffers: reads and writes go straight to the yamux stream, whose window
//! (256 KiB by default) is what holds back a writer whose reader does not read.

use std::collections::{HashMap, HashSet};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures::future::{self, Either};
use futures::{AsyncRead, AsyncWrite, FutureExt, StreamExt};
use libp2p::{PeerId as Libp2pPeerId, StreamProtocol};
use libp2p_stream::{Control, IncomingStreams, OpenStreamError};
use paircode_core::keys::KEY_LEN;
use paircode_core::{PairedDevice, PeerId};

use crate::node::{EventStream, Node, NodeEvent, Runtime};

/// How long [`Node::connect`] waits for a connection to the device and the stream on it.
/// libp2p-stream alone could wait for ever (a dial it could not start is never reported).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Protocol namespaces the node speaks itself: paircode's (`/paircode/pair/1`,
/// `/paircode/device/1`, Kademlia, identify) and libp2p's (ping, identify push, relay,
/// hole punching). An application reaching them could talk to the pairing machinery raw.
const RESERVED_PREFIXES: [&str; 3] = ["/paircode/", "/ipfs/", "/libp2p/"];

/// Why an application stream could not be opened or accepted.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The protocol name does not start with `/`.
    #[error("{0:?} is not a protocol name: it must start with '/'")]
    InvalidProtocol(String),
    /// The protocol name is in a namespace the node speaks itself (`/paircode/`, `/ipfs/`,
    /// `/libp2p/`).
    #[error("{0} is reserved for paircode and libp2p's own protocols")]
    ReservedProtocol(String),
    /// The peer is not in the node's paired set.
    #[error("{0} is not a paired device")]
    NotPaired(PeerId),
    /// [`crate::Node::accept`] was already called for this protocol.
    #[error("this node already accepts {0}")]
    AlreadyAccepting(String),
    /// The device is reachable but does not accept this protocol.
    #[error("{peer} does not accept {protocol}")]
    Unsupported {
        /// The device asked.
        peer: PeerId,
        /// The protocol it refused.
        protocol: String,
    },
    /// No connection to the device could be made within [`CONNECT_TIMEOUT`].
    #[error("cannot reach {peer}: {reason}")]
    Unreachable {
        /// The device asked.
        peer: PeerId,
        /// What the transport said.
        reason: String,
    },
    /// The stream could not be opened on an existing connection.
    #[error("opening a stream to {peer} failed: {source}")]
    Io {
        /// The device asked.
        peer: PeerId,
        /// The I/O error.
        source: io::Error,
    },
    /// The node has shut down.
    #[error("the node has stopped")]
    NodeStopped,
}

/// The node's side of application streams: the libp2p-stream control, and the registry
/// that admits and closes streams.
#[derive(Clone)]
pub(crate) struct Streams {
    control: Control,
    runtime: Arc<dyn Runtime>,
    registry: Arc<Mutex<Registry>>,
}

#[derive(Default)]
struct Registry {
    paired: HashSet<Libp2pPeerId>,
    open: HashMap<Libp2pPeerId, HashMap<u64, Arc<Slot>>>,
    /// Every protocol ever accepted keeps its libp2p-stream registration: libp2p-stream
    /// forgets a dropped one only at some later connection poll, so dropping it would make
    /// an immediate second [`Node::accept`] fail at random.
    listeners: HashMap<StreamProtocol, Listener>,
    next_id: u64,
    /// The event loop has ended.
    stopped: bool,
}

struct Listener {
    incoming: IncomingStreams,
    /// An [`Incoming`] holds it.
    taken: bool,
    /// That [`Incoming`]'s task, woken when the node stops.
    waker: Option<Waker>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An application protocol name, or why it cannot be one.
fn app_protocol(name: &str) -> Result<StreamProtocol, StreamError> {
    if RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Err(StreamError::ReservedProtocol(name.to_owned()));
    }
    StreamProtocol::try_from_owned(name.to_owned())
        .map_err(|_| StreamError::InvalidProtocol(name.to_owned()))
}

impl Streams {
    pub(crate) fn new(control: Control, runtime: Arc<dyn Runtime>) -> Self {
        Streams {
            control,
            runtime,
            registry: Arc::default(),
        }
    }

    pub(crate) fn set_paired(&self, peers: &[PeerId]) {
        let peers: HashSet<_> = peers.iter().filter_map(|p| p.to_libp2p().ok()).collect();
        let closing = {
            let mut registry = lock(&self.registry);
            let gone: Vec<_> = registry.paired.difference(&peers).copied().collect();
            registry.paired = peers;
            gone.into_iter()
                .flat_map(|peer| registry.take_open(&peer))
                .collect::<Vec<_>>()
        };
        closing.iter().for_each(|slot| slot.close());
    }

    pub(crate) fn add_paired(&self, peer: &PeerId) {
        if let Ok(peer) = peer.to_libp2p() {
            lock(&self.registry).paired.insert(peer);
        }
    }

    pub(crate) fn remove_paired(&self, peer: &PeerId) {
        let Ok(peer) = peer.to_libp2p() else {
            return;
        };
        let closing = {
            let mut registry = lock(&self.registry);
            registry.paired.remove(&peer);
            registry.take_open(&peer)
        };
        closing.iter().for_each(|slot| slot.close());
    }

    /// Follows the node's events: a device that unpaired us is no longer paired here
    /// either, and once the event loop ends (the driver drops its subscribers) every
    /// [`Incoming`] ends too.
    pub(crate) async fn follow(self, mut events: EventStream) {
        while let Some(event) = events.next().await {
            if let NodeEvent::UnpairedByPeer(peer) = event {
                self.remove_paired(&peer);
            }
        }
        let wakers: Vec<_> = {
            let mut registry = lock(&self.registry);
            registry.stopped = true;
            registry
                .listeners
                .values_mut()
                .filter_map(|l| l.waker.take())
                .collect()
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

impl Registry {
    fn take_open(&mut self, peer: &Libp2pPeerId) -> Vec<Arc<Slot>> {
        self.open
            .remove(peer)
            .map(|streams| streams.into_values().collect())
            .unwrap_or_default()
    }

    /// Registers a stream if its peer is paired; `None` drops it, which resets it.
    fn admit(
        &mut self,
        shared: &Arc<Mutex<Registry>>,
        remote: Libp2pPeerId,
        protocol: StreamProtocol,
        stream: libp2p::Stream,
    ) -> Option<DeviceStream> {
        if !self.paired.contains(&remote) {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        let slot = Arc::new(Slot(Mutex::new(SlotState {
            stream: Some(stream),
            read_waker: None,
            write_waker: None,
        })));
        self.open
            .entry(remote)
            .or_default()
            .insert(id, slot.clone());
        Some(DeviceStream {
            remote,
            protocol,
            id,
            slot,
            registry: shared.clone(),
        })
    }
}

/// Where a [`DeviceStream`] keeps its yamux stream, so that unpairing can take it away
/// (and reset it) while the application holds the handle.
struct Slot(Mutex<SlotState>);

struct SlotState {
    stream: Option<libp2p::Stream>,
    /// The tasks waiting on the stream, woken when unpairing takes it away: the yamux
    /// stream does not wake them when it is dropped.
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

#[derive(Clone, Copy)]
enum Direction {
    Read,
    Write,
}

impl Slot {
    fn close(&self) {
        let (stream, wakers) = {
            let mut state = lock(&self.0);
            let wakers = [state.read_waker.take(), state.write_waker.take()];
            (state.stream.take(), wakers)
        };
        // Dropped while open, a yamux stream sends a reset: the device sees it end at once.
        drop(stream);
        wakers.into_iter().flatten().for_each(Waker::wake);
    }

    fn poll<T>(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        op: impl FnOnce(Pin<&mut libp2p::Stream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Option<Poll<io::Result<T>>> {
        let mut state = lock(&self.0);
        let state = &mut *state;
        let stream = state.stream.as_mut()?;
        let poll = op(Pin::new(stream), cx);
        if poll.is_pending() {
            let waker = match direction {
                Direction::Read => &mut state.read_waker,
                Direction::Write => &mut state.write_waker,
            };
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        Some(poll)
    }
}

fn unpaired_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "the device was unpaired")
}

/// A stream to or from a paired device: reads and writes go to a yamux stream over a
/// Noise-authenticated connection. Dropping it without [`futures::AsyncWriteExt::close`]
/// resets it; once the device is unpaired, reads and writes fail with
/// [`io::ErrorKind::ConnectionReset`].
pub struct DeviceStream {
    remote: Libp2pPeerId,
    protocol: StreamProtocol,
    id: u64,
    slot: Arc<Slot>,
    registry: Arc<Mutex<Registry>>,
}

impl DeviceStream {
    /// The device at the other end, as Noise authenticated it.
    pub fn peer(&self) -> PeerId {
        PeerId::from(self.remote)
    }

    /// The application protocol this stream speaks, as passed to connect/accept.
    pub fn protocol(&self) -> &str {
        self.protocol.as_ref()
    }
}

impl std::fmt::Debug for DeviceStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceStream")
            .field("peer", &self.remote)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl Drop for DeviceStream {
    fn drop(&mut self) {
        let mut registry = lock(&self.registry);
        if let Some(streams) = registry.open.get_mut(&self.remote) {
            streams.remove(&self.id);
            if streams.is_empty() {
                registry.open.remove(&self.remote);
            }
        }
    }
}

impl AsyncRead for DeviceStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.slot
            .poll(cx, Direction::Read, |s, cx| s.poll_read(cx, buf))
            .unwrap_or_else(|| Poll::Ready(Err(unpaired_error())))
    }
}

impl AsyncWrite for DeviceStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.slot
            .poll(cx, Direction::Write, |s, cx| s.poll_write(cx, buf))
            .unwrap_or_else(|| Poll::Ready(Err(unpaired_error())))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.slot
            .poll(cx, Direction::Write, |s, cx| s.poll_flush(cx))
            .unwrap_or_else(|| Poll::Ready(Err(unpaired_error())))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A stream unpairing took away is closed already.
        self.slot
            .poll(cx, Direction::Write, |s, cx| s.poll_close(cx))
            .unwrap_or(Poll::Ready(Ok(())))
    }
}

/// Streams paired devices open with one protocol, as `(device, stream)`, from
/// [`Node::accept`]. Streams from peers that are not paired are reset before they get
/// here. Dropping it stops accepting the protocol; it ends when the node stops.
pub struct Incoming {
    protocol: StreamProtocol,
    registry: Arc<Mutex<Registry>>,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl futures::Stream for Incoming {
    type Item = (PeerId, DeviceStream);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let mut registry = lock(&this.registry);
        if registry.stopped {
            return Poll::Ready(None);
        }
        loop {
            let Some(listener) = registry.listeners.get_mut(&this.protocol) else {
                return Poll::Ready(None);
            };
            listener.waker = Some(cx.waker().clone());
            let (remote, stream) = match listener.incoming.poll_next_unpin(cx) {
                Poll::Ready(Some(item)) => item,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            match registry.admit(&this.registry, remote, this.protocol.clone(), stream) {
                Some(stream) => return Poll::Ready(Some((PeerId::from(remote), stream))),
                None => {
                    tracing::debug!(%remote, protocol = %this.protocol, "refused a stream from an unpaired peer")
                }
            }
        }
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Some(listener) = lock(&self.registry).listeners.get_mut(&self.protocol) {
            listener.taken = false;
            listener.waker = None;
        }
    }
}

impl Node {
    /// Opens a stream speaking `protocol` (the application's own name, e.g.
    /// `/myapp/sync/1`) to a paired device, over a connection the node has or dials with
    /// the addresses it knows. The device must be paired here
    /// ([`Node::set_paired`]/[`Node::add_paired`]) and accept `protocol` on its side, where
    /// it must consider this node paired too or it resets the stream before reading it.
    /// A dial that fails is made once more (it may have been one already under way, begun
    /// before the device was back). Gives up after [`CONNECT_TIMEOUT`].
    ///
    /// ```no_run
    /// # async fn demo(node: paircode_net::Node, device: paircode_net::paircode_core::PeerId)
    /// # -> Result<(), Box<dyn std::error::Error>> {
    /// use futures::{AsyncReadExt, AsyncWriteExt};
    ///
    /// let mut stream = node.connect(&device, "/myapp/sync/1").await?;
    /// stream.write_all(b"hello").await?;
    /// stream.close().await?;
    /// let mut reply = Vec::new();
    /// stream.read_to_end(&mut reply).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(
        &self,
        device: &PeerId,
        protocol: &str,
    ) -> Result<DeviceStream, StreamError> {
        let protocol = app_protocol(protocol)?;
        let not_paired = || StreamError::NotPaired(device.clone());
        let remote = device.to_libp2p().map_err(|_| not_paired())?;
        let streams = &self.streams;
        {
            let registry = lock(&streams.registry);
            if registry.stopped {
                return Err(StreamError::NodeStopped);
            }
            if !registry.paired.contains(&remote) {
                return Err(not_paired());
            }
        }
        let mut control = streams.control.clone();
        let mut deadline = streams
            .runtime
            .sleep_until(Instant::now() + CONNECT_TIMEOUT);
        // libp2p dials a peer once at a time: with a dial already under way (presence
        // seeking the device, another connect), this one waits for it, and that dial may
        // have begun before the device came back. So a failed dial is tried once more, a
        // dial of this call's own.
        let mut dials_left = 2;
        let stream = loop {
            let open = control.open_stream(remote, protocol.clone());
            match future::select(Box::pin(open), deadline).await {
                Either::Left((Ok(stream), _)) => break stream,
                Either::Left((Err(e), still)) => match open_error(device, &protocol, e) {
                    StreamError::Unreachable { .. } if dials_left > 1 => {
                        dials_left -= 1;
                        deadline = still;
                    }
                    error => return Err(error),
                },
                Either::Right(_) => {
                    return Err(StreamError::Unreachable {
                        peer: device.clone(),
                        reason: format!("no stream within {CONNECT_TIMEOUT:?}"),
                    })
                }
            }
        };
        // Unpaired while the stream was being opened: dropping it resets it.
        lock(&streams.registry)
            .admit(&streams.registry, remote, protocol, stream)
            .ok_or_else(not_paired)
    }

    /// Accepts streams speaking `protocol` from paired devices. Several protocols can be
    /// accepted at once, each by one [`Incoming`] at a time; drop it to stop accepting.
    /// Streams from peers that are not paired at the moment they open are reset unread.
    ///
    /// Poll the [`Incoming`] promptly and hand each stream to its own task: libp2p-stream
    /// holds one arriving stream per protocol and resets the ones that come while that
    /// place is taken.
    ///
    /// ```no_run
    /// # async fn demo(node: paircode_net::Node) -> Result<(), paircode_net::StreamError> {
    /// use futures::{AsyncReadExt, StreamExt};
    ///
    /// let mut incoming = node.accept("/myapp/sync/1")?;
    /// while let Some((device, mut stream)) = incoming.next().await {
    ///     let mut data = Vec::new();
    ///     let _ = stream.read_to_end(&mut data).await;
    ///     println!("{} bytes from {device}", data.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn accept(&self, protocol: &str) -> Result<Incoming, StreamError> {
        let protocol = app_protocol(protocol)?;
        let streams = &self.streams;
        let mut registry = lock(&streams.registry);
        if registry.stopped {
            return Err(StreamError::NodeStopped);
        }
        match registry.listeners.get_mut(&protocol) {
            Some(listener) if listener.taken => {
                return Err(StreamError::AlreadyAccepting(protocol.to_string()))
            }
            Some(listener) => {
                listener.taken = true;
                // A stream that came while nobody accepted (libp2p-stream queues one) was
                // not accepted: reset it rather than hand over something stale.
                while let Some(Some(_)) = listener.incoming.next().now_or_never() {}
            }
            None => {
                let incoming = streams
                    .control
                    .clone()
                    .accept(protocol.clone())
                    .map_err(|_| StreamError::AlreadyAccepting(protocol.to_string()))?;
                let listener = Listener {
                    incoming,
                    taken: true,
                    waker: None,
                };
                registry.listeners.insert(protocol.clone(), listener);
            }
        }
        Ok(Incoming {
            protocol,
            registry: streams.registry.clone(),
        })
    }

    /// A key for the application, derived from the pairing with `device` and `label`
    /// (`paircode_core::exporter`): both devices get the same key for the same label, and
    /// different labels or devices give unrelated keys.
    ///
    /// ```no_run
    /// # fn demo(node: paircode_net::Node, device: paircode_net::paircode_core::PairedDevice) {
    /// let key: [u8; 32] = node.export_key(&device, "myapp/encryption");
    /// # }
    /// ```
    pub fn export_key(&self, device: &PairedDevice, label: &str) -> [u8; KEY_LEN] {
        paircode_core::export_key(device.pairing_secret(), &self.peer_id, &device.peer, label)
    }
}

fn open_error(device: &PeerId, protocol: &StreamProtocol, error: OpenStreamError) -> StreamError {
    let peer = device.clone();
    match error {
        OpenStreamError::UnsupportedProtocol(_) => StreamError::Unsupported {
            peer,
            protocol: protocol.to_string(),
        },
        // libp2p-stream's word for a dial that failed.
        OpenStreamError::Io(e) if e.kind() == io::ErrorKind::NotConnected => {
            StreamError::Unreachable {
                peer,
                reason: e.to_string(),
            }
        }
        OpenStreamError::Io(source) => StreamError::Io { peer, source },
        other => StreamError::Io {
            peer,
            source: io::Error::other(other.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::{IDENTIFY_PROTOCOL, KAD_PROTOCOL};
    use crate::protocol::PAIR_PROTOCOL;

    /// Applications spawn these on multi-threaded runtimes.
    #[test]
    fn handles_and_futures_are_send() {
        fn send<T: Send>(_: &T) {}
        fn sync<T: Sync>() {}
        sync::<DeviceStream>();
        sync::<Incoming>();
        let _ = |node: Node, peer: PeerId| send(&async move { node.connect(&peer, "/x/1").await });
    }

    #[test]
    fn the_nodes_own_protocols_are_reserved() {
        for own in [
            PAIR_PROTOCOL.as_ref(),
            KAD_PROTOCOL.as_ref(),
            IDENTIFY_PROTOCOL,
            libp2p::ping::PROTOCOL_NAME.as_ref(),
            "/paircode/device/1",
            "/ipfs/id/push/1.0.0",
        ] {
            assert!(
                matches!(app_protocol(own), Err(StreamError::ReservedProtocol(_))),
                "{own}"
            );
        }
        assert!(matches!(
            app_protocol("myapp"),
            Err(StreamError::InvalidProtocol(_))
        ));
        assert_eq!(
            app_protocol("/myapp/sync/1").unwrap().as_ref(),
            "/myapp/sync/1"
        );
    }
}
