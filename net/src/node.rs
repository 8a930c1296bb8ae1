//! The embedder's view: a running node, its pairing sessions and its events.
//!
//! Examples here only compile (this crate has no runtime); `paircode-tokio`'s crate docs
//! run two nodes that pair.

use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::future::BoxFuture;
use futures::StreamExt;
use libp2p::Multiaddr;
use paircode_core::{Code, Config, DeviceIdentity, DeviceInfo, PairedDevice, PeerId, Verification};

use crate::error::Error;
use crate::limits::ConnectionLimits;
use crate::reach::ReachStatus;
use crate::streams::Streams;
#[cfg(doc)]
use crate::RENDEZVOUS_LABEL;

/// What differs between async runtimes, apart from the TCP and mDNS providers.
/// Implemented by the runtime crates; an embedder never calls it.
pub trait Runtime: Send + Sync + 'static {
    /// Runs `task` to completion in the background (the node's event loop and libp2p's
    /// connection tasks).
    fn spawn(&self, task: BoxFuture<'static, ()>);
    /// A future that completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()>;
}

/// Everything needed to bring a node up.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The device's long-term key; its public half is the libp2p PeerId.
    pub identity: DeviceIdentity,
    /// Shown to the other user during pairing.
    pub device_name: String,
    /// Where to accept connections, e.g. `/ip4/0.0.0.0/tcp/0`. Port 0 picks a free port.
    pub listen: Vec<Multiaddr>,
    /// DHT entry points, `/ip4/…/tcp/…/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// Meeting points (`paircode relay`, or any libp2p node serving identify, circuit
    /// relay v2, AutoNAT, ping and Kademlia under `/paircode/kad/1.0.0`), each ending in
    /// `/p2p/<peer id>`. The node joins the DHT through them, holds a relay reservation on
    /// each and advertises its circuit address, so devices on other networks can reach it;
    /// DCUtR then upgrades to a direct connection where the NATs allow. With meeting
    /// points the node is a DHT client until AutoNAT confirms it is publicly reachable.
    pub relays: Vec<Multiaddr>,
    /// AutoNAT trusts only global addresses. Labs built on private address ranges turn
    /// it off.
    pub autonat_only_global_ips: bool,
    /// LAN discovery. Off for loopback-only setups (libp2p-mdns skips loopback anyway).
    pub mdns: bool,
    /// Defaults of every pairing session on this node.
    pub pairing: Config,
    /// How long an unused connection stays open. libp2p's default is 0, which would close
    /// connections between the messages of a handshake.
    pub idle_timeout: Duration,
    /// Connection caps; size them from the process's descriptor limit with
    /// [`ConnectionLimits::for_descriptors`].
    pub limits: ConnectionLimits,
}

impl NodeConfig {
    /// Listens on every IPv4 interface on a free port, with mDNS on, no bootstrap peers,
    /// the default pairing settings and a 60 s idle timeout.
    ///
    /// ```
    /// use paircode_net::paircode_core::DeviceIdentity;
    /// use paircode_net::NodeConfig;
    ///
    /// let mut config = NodeConfig::new(DeviceIdentity::generate(&mut rand_core::OsRng), "laptop");
    /// // Loopback only: mDNS must never be switched on for tests on a real interface.
    /// config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    /// config.mdns = false;
    /// assert!(config.bootstrap.is_empty());
    /// ```
    pub fn new(identity: DeviceIdentity, device_name: impl Into<String>) -> Self {
        NodeConfig {
            identity,
            device_name: device_name.into(),
            listen: vec!["/ip4/0.0.0.0/tcp/0".parse().expect("valid multiaddr")],
            bootstrap: Vec::new(),
            relays: Vec::new(),
            autonat_only_global_ips: true,
            mdns: true,
            pairing: Config::default(),
            idle_timeout: Duration::from_secs(60),
            limits: ConnectionLimits::default(),
        }
    }
}

/// Per-session overrides for [`Node::generate`].
#[derive(Debug, Clone, Default)]
pub struct GenerateOptions {
    /// Complete without a [`PairingEvent::ConfirmRequested`] round trip.
    pub auto_accept: bool,
    /// Validity of the code; the node's `pairing.code_ttl` if `None`.
    pub ttl: Option<Duration>,
}

/// Per-session overrides for [`Node::start_join`].
#[derive(Debug, Clone, Default)]
pub struct JoinOptions {
    /// Prove the code to the first device that proves it, without a
    /// [`PairingEvent::ConfirmRequested`] round trip.
    pub auto_accept: bool,
}

/// How a peer was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    /// Multicast DNS on the local network.
    Mdns,
    /// A provider record in the Kademlia DHT.
    Dht,
}

/// What a pairing session reports, in order; the last one is `Completed` or `Failed`.
#[derive(Debug, Clone)]
pub enum PairingEvent {
    /// A joiner sent `Join` to this peer.
    Contacting {
        /// The peer asked.
        peer: PeerId,
    },
    /// The peer proved it knows the code.
    Verified {
        /// The peer that proved it.
        peer: PeerId,
        /// What it calls itself.
        info: DeviceInfo,
    },
    /// The user must accept or decline: [`PairingHandle::confirm`]. An initiator asks once
    /// a joiner proved the code, a joiner once the initiator did (before it proves the code
    /// back). Show the name and the verification string: the other screen shows the same
    /// string unless someone is in the middle.
    ConfirmRequested {
        /// The device waiting for the answer.
        peer: PeerId,
        /// What it calls itself, to show the user.
        info: DeviceInfo,
        /// Four words both screens show (`docs/PROTOCOL.md`, "Verification string").
        verification: Verification,
    },
    /// The initiator's provider record could not be published in the DHT (`reason`), so
    /// a joiner on another network may not find the session; LAN discovery is unaffected,
    /// and the node keeps trying while the session lasts. Tell the user.
    NotAnnounced {
        /// What went wrong, e.g. the DHT query timed out.
        reason: String,
    },
    /// `StoreRequested` may follow with this pairing: on a joiner once its proof is
    /// accepted, on an initiator once the joiner proves the Challenge just sent (the first
    /// two `Join`s of a session only) and the user accepts. The embedder may prepare that
    /// save (write it durably under a temporary name) meanwhile; nothing of it may count as
    /// paired before `StoreRequested`, and a prepared save no `StoreRequested` asks for is
    /// discarded. Ignoring this is correct.
    PrepareStore(Box<PairedDevice>),
    /// Save this pairing durably now, then answer with [`PairingHandle::stored`]. An
    /// initiator acknowledges the pairing to the joiner only after a successful save, and
    /// turns the joiner down (it hears "the other device could not save the pairing") if
    /// the save fails or takes longer than the store timeout; a joiner completes only
    /// after it. Comes before `Completed`.
    StoreRequested(Box<PairedDevice>),
    /// Paired, and stored (the answer to `StoreRequested` was yes).
    Completed(Box<PairedDevice>),
    /// The session ended without a pairing.
    Failed(Error),
}

/// Everything a node reports, to every [`Node::events`] stream.
#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// A possible pairing partner turned up.
    PeerDiscovered {
        /// The peer found.
        peer: PeerId,
        /// How.
        via: Discovery,
    },
    /// A copy of the running session's event (also on its [`PairingHandle`]).
    Pairing(PairingEvent),
    /// A peer registered with [`Node::set_paired`] / [`Node::add_paired`] connected.
    PairedOnline(PeerId),
    /// Its last connection closed.
    PairedOffline(PeerId),
    /// This peer told us it forgot us: it unpaired us ([`Node::notify_unpaired`] on its
    /// side), or it had lost the pairing (killed before it saved it, or its save failed)
    /// and we kept greeting it. Either way it is no longer paired here.
    UnpairedByPeer(PeerId),
    /// A device that is not paired here kept greeting us as paired (a one-sided pairing,
    /// see [`NodeEvent::UnpairedByPeer`] on its side): it was told to forget us.
    ToldNotPaired(PeerId),
    /// The peer we unpaired has been told so.
    UnpairDelivered(PeerId),
}

/// The stream [`Node::events`] returns; it ends when the node stops.
pub type EventStream = mpsc::UnboundedReceiver<NodeEvent>;

pub(crate) type SessionStart = (u64, mpsc::UnboundedReceiver<PairingEvent>);

pub(crate) enum Command {
    Generate {
        code: Code,
        options: GenerateOptions,
        reply: oneshot::Sender<Result<SessionStart, Error>>,
    },
    Join {
        code: Code,
        options: JoinOptions,
        reply: oneshot::Sender<Result<SessionStart, Error>>,
    },
    Confirm {
        session: u64,
        peer: PeerId,
        accept: bool,
    },
    Cancel {
        session: u64,
    },
    Stored {
        session: u64,
        peer: PeerId,
        saved: bool,
    },
    Subscribe(mpsc::UnboundedSender<NodeEvent>),
    Presence(PresenceCommand),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Reach(oneshot::Sender<ReachStatus>),
    Rendezvous {
        peer: PeerId,
        secret: Option<[u8; 32]>,
    },
    Shutdown(oneshot::Sender<()>),
}

/// What the embedder tells the node about paired devices.
pub(crate) enum PresenceCommand {
    SetPaired(Vec<PeerId>),
    Add(PeerId),
    Remove(PeerId),
    NotifyUnpaired(PeerId),
}

/// A running node. Cheap to clone; the node stops on [`Node::shutdown`] or when every
/// clone and every [`PairingHandle`] is dropped.
///
/// A node comes from a runtime crate (`paircode_tokio::start`, `paircode_async_std::start`)
/// or [`crate::start_node`]. Pairing two devices, one on each:
///
/// ```no_run
/// use paircode_net::{Error, GenerateOptions, Node, PairingEvent};
/// use paircode_net::paircode_core::Code;
///
/// /// On the first device: make a code, show it, accept whoever proves it.
/// async fn offer(node: &Node) -> Result<(), Error> {
///     let (code, mut session) = node.generate(GenerateOptions::default()).await?;
///     println!("on the other device, enter: {}", code.words().as_str());
///     while let Some(event) = session.next_event().await {
///         match event {
///             PairingEvent::ConfirmRequested { peer, info, verification } => {
///                 println!("pair with {} ({})? check: {verification}", info.name, peer.short());
///                 session.confirm(&peer, true);
///             }
///             PairingEvent::Completed(device) => println!("paired with {}", device.info.name),
///             PairingEvent::Failed(error) => return Err(error),
///             _ => {}
///         }
///     }
///     Ok(())
/// }
///
/// /// On the second device: enter the code.
/// async fn accept(node: &Node, words: &str) -> Result<(), Box<dyn std::error::Error>> {
///     let code = Code::parse(words)?;
///     let device = node.join(&code).await?;
///     println!("paired with {}", device.info.name);
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct Node {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) peer_id: PeerId,
    /// The paired set streams are admitted against, and the open streams (see `streams`).
    pub(crate) streams: Streams,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("peer_id", &self.peer_id)
            .finish()
    }
}

impl Node {
    /// This node's identity, as the transport authenticates it to peers.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id.clone()
    }

    fn send(&self, command: Command) -> Result<(), Error> {
        self.commands
            .unbounded_send(command)
            .map_err(|_| Error::NodeStopped)
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx))?;
        rx.await.map_err(|_| Error::NodeStopped)
    }

    /// The addresses the node listens on, each ending in `/p2p/<peer id>`, ready to be
    /// given to another node as a bootstrap address.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, Error> {
        self.ask(Command::ListenAddrs).await
    }

    /// The meeting points and whether each holds a relay reservation, AutoNAT's verdict,
    /// and whether each connected peer is reached directly or through a relay.
    pub async fn reach(&self) -> Result<ReachStatus, Error> {
        self.ask(Command::Reach).await
    }

    /// Starts a session as initiator: returns the code to show and the session's handle.
    pub async fn generate(&self, options: GenerateOptions) -> Result<(Code, PairingHandle), Error> {
        let code = Code::generate(&mut rand_core::OsRng);
        let start = self
            .ask(|reply| Command::Generate {
                code: code.clone(),
                options,
                reply,
            })
            .await??;
        Ok((code, self.handle(start)))
    }

    /// Starts a session as joiner and returns its handle, for progress, the confirm prompt
    /// (unless `options.auto_accept`) and cancelling.
    pub async fn start_join(
        &self,
        code: &Code,
        options: JoinOptions,
    ) -> Result<PairingHandle, Error> {
        let start = self
            .ask(|reply| Command::Join {
                code: code.clone(),
                options,
                reply,
            })
            .await??;
        Ok(self.handle(start))
    }

    /// Finds the device holding `code` and pairs with it, without asking (auto-accept).
    /// The store request is answered "stored" at once ([`PairingHandle::result`]): the
    /// caller keeps the returned device itself.
    pub async fn join(&self, code: &Code) -> Result<PairedDevice, Error> {
        let options = JoinOptions { auto_accept: true };
        self.start_join(code, options).await?.result().await
    }

    fn handle(&self, (session, events): SessionStart) -> PairingHandle {
        PairingHandle {
            session,
            events,
            commands: self.commands.clone(),
        }
    }

    /// Every event from now on. Each call gives an independent stream.
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// use paircode_net::{Node, NodeEvent};
    ///
    /// async fn watch(node: &Node) {
    ///     let mut events = node.events();
    ///     while let Some(event) = events.next().await {
    ///         match event {
    ///             NodeEvent::PairedOnline(peer) => println!("{} is here", peer.short()),
    ///             NodeEvent::PairedOffline(peer) => println!("{} left", peer.short()),
    ///             _ => {}
    ///         }
    ///     }
    /// }
    /// ```
    pub fn events(&self) -> EventStream {
        let (tx, rx) = mpsc::unbounded();
        // A stopped node yields an empty stream, which is what a subscriber should see.
        let _ = self.send(Command::Subscribe(tx));
        rx
    }

    /// Replaces the set of paired peers: those whose presence is reported as online/offline
    /// events and that may open and accept streams. Connected ones are reported online at
    /// once, and the node keeps in touch with each (a greeting every few seconds keeps
    /// connections alive, absent ones are looked for). Peers dropped from the set are
    /// forgotten without an offline event, and their open streams are reset.
    pub fn set_paired(&self, peers: impl IntoIterator<Item = PeerId>) -> Result<(), Error> {
        let peers: Vec<PeerId> = peers.into_iter().collect();
        self.streams.set_paired(&peers);
        self.send(Command::Presence(PresenceCommand::SetPaired(peers)))
    }

    /// Adds one peer to the set of [`Node::set_paired`], e.g. right after pairing; an
    /// undelivered [`Node::notify_unpaired`] notice for it is dropped.
    pub fn add_paired(&self, peer: PeerId) -> Result<(), Error> {
        self.streams.add_paired(&peer);
        self.send(Command::Presence(PresenceCommand::Add(peer)))
    }

    /// Removes one peer from the set of [`Node::set_paired`], silently: for a peer that
    /// unpaired us ([`NodeEvent::UnpairedByPeer`]), or one we will not tell. Resets the
    /// peer's open streams too.
    pub fn remove_paired(&self, peer: PeerId) -> Result<(), Error> {
        self.streams.remove_paired(&peer);
        self.send(Command::Presence(PresenceCommand::Remove(peer)))
    }

    /// Stops treating `peer` as paired and tells it so as soon as it is reachable (now, or
    /// when it is next discovered); [`NodeEvent::UnpairDelivered`] reports success. A
    /// restarted node forgets undelivered notices: the embedder persists and re-issues them.
    /// Resets the peer's open streams at once.
    pub fn notify_unpaired(&self, peer: PeerId) -> Result<(), Error> {
        self.streams.remove_paired(&peer);
        self.send(Command::Presence(PresenceCommand::NotifyUnpaired(peer)))
    }

    /// Lets a paired device find this one again across networks, and this one find it,
    /// through the meeting points: both publish and look up a DHT key derived from
    /// `secret`, which changes every hour. `secret` must be the same on both devices and
    /// known to no one else: the pair's exporter key for [`RENDEZVOUS_LABEL`]
    /// (`paircode_core::export_key(pairing_secret, me, device, RENDEZVOUS_LABEL)`).
    /// Forgotten when the device leaves the paired set. Needs meeting points to matter.
    pub fn set_rendezvous(&self, device: PeerId, secret: [u8; 32]) -> Result<(), Error> {
        self.send(Command::Rendezvous {
            peer: device,
            secret: Some(secret),
        })
    }

    /// Cancels any session, lets replies already queued reach their peers (briefly), closes
    /// every connection and stops the node.
    pub async fn shutdown(&self) {
        let _ = self.ask(Command::Shutdown).await;
    }
}

/// One pairing session. Events arrive in order; the final one is `Completed` or `Failed`.
pub struct PairingHandle {
    session: u64,
    events: mpsc::UnboundedReceiver<PairingEvent>,
    commands: mpsc::UnboundedSender<Command>,
}

impl PairingHandle {
    /// The next event, or `None` after the final one (or if the node stopped).
    pub async fn next_event(&mut self) -> Option<PairingEvent> {
        self.events.next().await
    }

    /// The user's answer to [`PairingEvent::ConfirmRequested`].
    pub fn confirm(&self, peer: &PeerId, accept: bool) {
        let _ = self.commands.unbounded_send(Command::Confirm {
            session: self.session,
            peer: peer.clone(),
            accept,
        });
    }

    /// The answer to [`PairingEvent::StoreRequested`]: whether the pairing with `peer` is
    /// now durably stored on this device.
    pub fn stored(&self, peer: &PeerId, saved: bool) {
        let _ = self.commands.unbounded_send(Command::Stored {
            session: self.session,
            peer: peer.clone(),
            saved,
        });
    }

    /// Ends the session; its result becomes [`Error::Pairing`] with
    /// [`FailReason::Cancelled`](crate::FailReason::Cancelled).
    pub fn cancel(&self) {
        let _ = self.commands.unbounded_send(Command::Cancel {
            session: self.session,
        });
    }

    /// Waits for the outcome, skipping progress. With `auto_accept` off, the confirm prompt
    /// must be answered through [`PairingHandle::next_event`] instead. It answers
    /// [`PairingEvent::StoreRequested`] with "stored" itself, for callers that keep the
    /// returned device in memory or save it later; an embedder that persists pairings
    /// answers it through `next_event` after its save, so that the other side is told
    /// only then.
    pub async fn result(mut self) -> Result<PairedDevice, Error> {
        while let Some(event) = self.events.next().await {
            match event {
                PairingEvent::StoreRequested(device) => self.stored(&device.peer, true),
                PairingEvent::Completed(device) => return Ok(*device),
                PairingEvent::Failed(error) => return Err(error),
                _ => {}
            }
        }
        Err(Error::NodeStopped)
    }
}
