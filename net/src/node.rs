//! The embedder's view: a running node, its pairing sessions and its events.

use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::future::BoxFuture;
use futures::StreamExt;
use libp2p::Multiaddr;
use paircode_core::{Code, Config, DeviceIdentity, DeviceInfo, PairedDevice, PeerId};

use crate::error::Error;

/// What differs between async runtimes, apart from the TCP and mDNS providers.
pub trait Runtime: Send + Sync + 'static {
    fn spawn(&self, task: BoxFuture<'static, ()>);
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
    /// LAN discovery. Off for loopback-only setups (libp2p-mdns skips loopback anyway).
    pub mdns: bool,
    /// Defaults of every pairing session on this node.
    pub pairing: Config,
    /// How long an unused connection stays open. libp2p's default is 0, which would close
    /// connections between the messages of a handshake.
    pub idle_timeout: Duration,
}

impl NodeConfig {
    pub fn new(identity: DeviceIdentity, device_name: impl Into<String>) -> Self {
        NodeConfig {
            identity,
            device_name: device_name.into(),
            listen: vec!["/ip4/0.0.0.0/tcp/0".parse().expect("valid multiaddr")],
            bootstrap: Vec::new(),
            mdns: true,
            pairing: Config::default(),
            idle_timeout: Duration::from_secs(60),
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

/// How a peer was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    Mdns,
    Dht,
}

/// What a pairing session reports, in order; the last one is `Completed` or `Failed`.
#[derive(Debug, Clone)]
pub enum PairingEvent {
    /// A joiner sent `Join` to this peer.
    Contacting {
        peer: PeerId,
    },
    /// The peer proved it knows the code.
    Verified {
        peer: PeerId,
        info: DeviceInfo,
    },
    /// The initiator's user must accept or decline: [`PairingHandle::confirm`].
    ConfirmRequested {
        peer: PeerId,
        info: DeviceInfo,
    },
    Completed(Box<PairedDevice>),
    Failed(Error),
}

#[derive(Debug, Clone)]
pub enum NodeEvent {
    PeerDiscovered {
        peer: PeerId,
        via: Discovery,
    },
    Pairing(PairingEvent),
    /// A peer registered with [`Node::set_paired`] / [`Node::add_paired`] connected.
    PairedOnline(PeerId),
    /// Its last connection closed.
    PairedOffline(PeerId),
    /// This peer told us it forgot us ([`Node::notify_unpaired`] on its side).
    UnpairedByPeer(PeerId),
    /// The peer we unpaired has been told so.
    UnpairDelivered(PeerId),
}

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
    Subscribe(mpsc::UnboundedSender<NodeEvent>),
    Presence(PresenceCommand),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
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
#[derive(Clone)]
pub struct Node {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) peer_id: PeerId,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("peer_id", &self.peer_id)
            .finish()
    }
}

impl Node {
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

    /// Starts a session as joiner and returns its handle, for progress and cancelling.
    pub async fn start_join(&self, code: &Code) -> Result<PairingHandle, Error> {
        let start = self
            .ask(|reply| Command::Join {
                code: code.clone(),
                reply,
            })
            .await??;
        Ok(self.handle(start))
    }

    /// Finds the device holding `code` and pairs with it.
    pub async fn join(&self, code: &Code) -> Result<PairedDevice, Error> {
        self.start_join(code).await?.result().await
    }

    fn handle(&self, (session, events): SessionStart) -> PairingHandle {
        PairingHandle {
            session,
            events,
            commands: self.commands.clone(),
        }
    }

    /// Every event from now on. Each call gives an independent stream.
    pub fn events(&self) -> EventStream {
        let (tx, rx) = mpsc::unbounded();
        // A stopped node yields an empty stream, which is what a subscriber should see.
        let _ = self.send(Command::Subscribe(tx));
        rx
    }

    /// Replaces the set of peers whose presence is reported as online/offline events.
    pub fn set_paired(&self, peers: impl IntoIterator<Item = PeerId>) -> Result<(), Error> {
        self.send(Command::Presence(PresenceCommand::SetPaired(
            peers.into_iter().collect(),
        )))
    }

    pub fn add_paired(&self, peer: PeerId) -> Result<(), Error> {
        self.send(Command::Presence(PresenceCommand::Add(peer)))
    }

    pub fn remove_paired(&self, peer: PeerId) -> Result<(), Error> {
        self.send(Command::Presence(PresenceCommand::Remove(peer)))
    }

    /// Stops treating `peer` as paired and tells it so as soon as it is reachable (now, or
    /// when it is next discovered); [`NodeEvent::UnpairDelivered`] reports success. A
    /// restarted node forgets undelivered notices: the embedder persists and re-issues them.
    pub fn notify_unpaired(&self, peer: PeerId) -> Result<(), Error> {
        self.send(Command::Presence(PresenceCommand::NotifyUnpaired(peer)))
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

    /// Ends the session; its result becomes [`Error::Cancelled`].
    pub fn cancel(&self) {
        let _ = self.commands.unbounded_send(Command::Cancel {
            session: self.session,
        });
    }

    /// Waits for the outcome, skipping progress. With `auto_accept` off, an initiator must
    /// answer the confirm prompt through [`PairingHandle::next_event`] instead.
    pub async fn result(mut self) -> Result<PairedDevice, Error> {
        while let Some(event) = self.events.next().await {
            match event {
                PairingEvent::Completed(device) => return Ok(*device),
                PairingEvent::Failed(error) => return Err(error),
                _ => {}
            }
        }
        Err(Error::NodeStopped)
    }
}
