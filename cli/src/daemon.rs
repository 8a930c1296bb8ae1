//! The daemon: one per instance. It owns the node, the store and the pairing session, and
//! answers the CLI over the instance's Unix socket.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use paircode_core::{Code, FailReason, PairedDevice, PeerId};
use paircode_net::{
    EventStream, GenerateOptions, JoinOptions, Node, NodeEvent, PairingEvent, PairingHandle,
};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::devices::{DeviceList, DeviceRecord};
use crate::instance::{Instance, DEVICES_FILE};
use crate::ipc::{
    code_lifetime, read_frame_up_to, write_frame, DaemonError, DeviceView, Event, FrameError,
    Request, Response, SaveContext, SessionView, StatusInfo, MAX_REQUEST_LEN,
};
use crate::ipc_server::{Idle, IpcServer, REPLY_TIMEOUT, REQUEST_TIMEOUT};
use crate::store::{Replaced, Reserved, Staged, StoreError, Vault};

mod transfers;
pub use transfers::Transfers;

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A task that must not outlive its owner (a connection's reader).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Session {
    role: &'static str,
    stage: String,
    expires_at: Option<Instant>,
    cancel: mpsc::UnboundedSender<()>,
}

/// The node's task ended without the daemon asking it to: the daemon cannot pair or send
/// any more, so it stops (exit status 1) instead of answering as if it could.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the daemon's network task ended unexpectedly; the daemon stopped (its log says what came before): start it again with `paircode start`")]
pub struct NodeEnded;

/// Room for one more device in the file reserved for a pairing's save
/// (`Daemon::reserve`): a device's record is at most about 250 bytes of CBOR (a 64-byte
/// name, its peer id, its secret, field names, times); one that does not fit is saved
/// all the same, only without the head start.
const RESERVED_ROOM: u64 = 512;

/// How long shutdown waits for the node-event watcher to write its last save.
const WATCHER_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

pub struct Daemon {
    instance: Instance,
    node: Node,
    vault: Vault,
    name: String,
    mdns: bool,
    /// The node's code lifetime, for `generate` without `--expires`.
    code_ttl: Duration,
    devices: Mutex<DeviceList>,
    online: Mutex<BTreeSet<PeerId>>,
    session: Mutex<Option<Session>>,
    transfers: Transfers,
    stop: Notify,
    /// The node's events from before the paired set was handed over, until `watch_node`
    /// takes them.
    events: Mutex<Option<EventStream>>,
    /// The file the next pairing's save goes into, reserved ahead of the session
    /// ([`Daemon::reserve_ahead`]); one at a time, since they share a name.
    reserved_ahead: Mutex<Option<JoinHandle<Option<Reserved>>>>,
    /// Set once the daemon stops: no more reservations, since nobody would remove them.
    stopping: std::sync::atomic::AtomicBool,
}

impl Daemon {
    // One more than clippy's threshold: each is a different part of the daemon.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        instance: Instance,
        node: Node,
        vault: Vault,
        name: String,
        mdns: bool,
        code_ttl: Duration,
        devices: DeviceList,
        transfers: Transfers,
    ) -> Arc<Self> {
        // Subscribed before the paired set is handed over: the node reports a device that
        // is already connected as online the moment it learns it is paired, and an event
        // sent before anyone listens is lost for good.
        let events = node.events();
        let _ = node.set_paired(devices.peers());
        crate::meeting_points::set_rendezvous(&node, devices.devices.iter());
        for peer in devices.pending_unpairs() {
            let _ = node.notify_unpaired(peer);
        }
        Arc::new(Daemon {
            instance,
            node,
            vault,
            name,
            mdns,
            code_ttl,
            devices: Mutex::new(devices),
            online: Mutex::new(BTreeSet::new()),
            session: Mutex::new(None),
            transfers,
            stop: Notify::new(),
            events: Mutex::new(Some(events)),
            reserved_ahead: Mutex::new(None),
            stopping: Default::default(),
        })
    }

    /// Serves the socket until `stop` is requested or a termination signal arrives, or
    /// until the node ends on its own: then the daemon stops too and says so, since a
    /// daemon without its network task would answer `status` but never pair or send.
    pub async fn serve(self: Arc<Self>, listener: UnixListener) -> Result<(), NodeEnded> {
        crate::memory::bound_allocator();
        self.reserve_ahead();
        // The watcher reads the node's events, which end only when the node's task does.
        let mut watcher = tokio::spawn(self.clone().watch_node());
        #[cfg(debug_assertions)]
        self.clone().end_node_for_tests();
        let mut node_ended = false;
        tokio::spawn(self.clone().accept_transfers());
        let trim = tokio::spawn(crate::memory::trim_periodically());
        let mut server = IpcServer::new(listener);
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler");
        // Like SIGTERM's, one listener for the daemon's life: one made afresh in each round
        // would miss a Ctrl+C that arrives between two rounds.
        let mut interrupt =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .expect("installing a SIGINT handler");
        loop {
            tokio::select! {
                accepted = server.accept() => {
                    let this = self.clone();
                    tokio::spawn(async move {
                        this.client(accepted.stream, accepted.idle).await;
                        drop(accepted.slot);
                    });
                }
                _ = self.stop.notified() => break,
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
                _ = &mut watcher => {
                    node_ended = true;
                    break;
                }
            }
        }
        // Removed before the caller releases the instance lock, as every file of ours.
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let reserved = self.reserved_ahead.lock().expect("reservation lock").take();
        if let Some(task) = reserved {
            drop(task.await);
        }
        if node_ended {
            tracing::error!("{NodeEnded}");
            trim.abort();
            let _ = std::fs::remove_file(self.instance.socket());
            return Err(NodeEnded);
        }
        tracing::info!("stopping");
        trim.abort();
        self.node.shutdown().await;
        // The watcher saves the device list (last-seen times of devices that just went
        // offline). It must be done before the caller releases the instance lock: a save
        // after that could overwrite a store the user or a new daemon now owns. The node's
        // event stream ends with the node; the bound only guards against a stuck save.
        if tokio::time::timeout(WATCHER_DRAIN, &mut watcher)
            .await
            .is_err()
        {
            watcher.abort();
        }
        self.seen_until_now();
        let _ = std::fs::remove_file(self.instance.socket());
        Ok(())
    }

    /// The test seam for a network task that dies (debug builds only): with
    /// `PAIRCODE_TEST_END_NODE_AFTER_MS` set, the node is shut down that long after the
    /// daemon starts serving, without the daemon being asked to stop — to the daemon, the
    /// same as the task panicking or returning.
    #[cfg(debug_assertions)]
    fn end_node_for_tests(self: Arc<Self>) {
        let Some(ms) = std::env::var("PAIRCODE_TEST_END_NODE_AFTER_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        else {
            return;
        };
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            self.node.shutdown().await;
        });
    }

    /// At stop, every device still online was seen until now: after a restart "last seen"
    /// must say when this daemon last saw it, not when it came online.
    fn seen_until_now(&self) {
        let online = std::mem::take(&mut *self.online.lock().expect("online lock"));
        if online.is_empty() {
            return;
        }
        let now = unix_now();
        let mut devices = self.devices.lock().expect("devices lock");
        for peer in &online {
            if let Some(record) = devices.get_mut(peer) {
                record.last_seen = Some(now);
            }
        }
        self.save(&devices, "saving the last-seen times at stop");
    }

    /// Keeps the online set, last-seen times and unpairings current.
    async fn watch_node(self: Arc<Self>) {
        let Some(mut events) = self.events.lock().expect("events lock").take() else {
            return;
        };
        while let Some(event) = events.next().await {
            match event {
                NodeEvent::PairedOnline(peer) => self.presence(peer, true),
                NodeEvent::PairedOffline(peer) => self.presence(peer, false),
                NodeEvent::UnpairedByPeer(peer) => match self.forget(&peer, false) {
                    Ok(Some(record)) => tracing::warn!(
                        peer = %peer,
                        "{} no longer knows this device (it unpaired it, or never finished saving the pairing); removed here",
                        paircode_core::name::escaped(&record.name)
                    ),
                    Ok(None) => {}
                    Err(e) => tracing::error!(
                        peer = %peer,
                        "{peer} no longer knows this device, but it could not be removed here: {e}"
                    ),
                },
                NodeEvent::ToldNotPaired(peer) => tracing::warn!(
                    peer = %peer,
                    "{peer} greets this device as paired, but it is not paired here (a pairing this device never finished saving); told it to forget this device"
                ),
                NodeEvent::UnpairDelivered(peer) => {
                    let mut devices = self.devices.lock().expect("devices lock");
                    devices
                        .unpair_pending
                        .retain(|b| b.as_slice() != peer.as_bytes());
                    self.save(&devices, "recording a delivered unpair notice");
                }
                NodeEvent::PeerDiscovered { .. } | NodeEvent::Pairing(_) => {}
            }
        }
    }

    fn presence(&self, peer: PeerId, online: bool) {
        tracing::info!(peer = %peer, online, "paired device presence");
        {
            let mut set = self.online.lock().expect("online lock");
            if online {
                set.insert(peer.clone());
            } else {
                set.remove(&peer);
            }
        }
        let mut devices = self.devices.lock().expect("devices lock");
        if let Some(record) = devices.get_mut(&peer) {
            record.last_seen = Some(unix_now());
            self.save(&devices, "saving the last-seen time");
        }
    }

    /// Removes a device from the list; `tell` queues a notice for it. Nothing changes,
    /// in memory or on disk, unless the new list was saved.
    fn forget(&self, peer: &PeerId, tell: bool) -> Result<Option<DeviceRecord>, StoreError> {
        let mut devices = self.devices.lock().expect("devices lock");
        let mut updated = devices.clone();
        let Some(record) = updated.remove(peer.as_bytes()) else {
            return Ok(None);
        };
        if tell {
            updated
                .unpair_pending
                .push(serde_bytes::ByteBuf::from(peer.as_bytes().to_vec()));
        }
        updated.save(&self.vault)?;
        *devices = updated;
        drop(devices);
        self.online.lock().expect("online lock").remove(peer);
        match tell {
            true => {
                let _ = self.node.notify_unpaired(peer.clone());
            }
            false => {
                let _ = self.node.remove_paired(peer.clone());
            }
        }
        Ok(Some(record))
    }

    /// Why the device list could not be saved, for the CLI: the file and the OS's reason.
    fn save_failed(&self, what: SaveContext, e: StoreError) -> DaemonError {
        tracing::error!("{what}: {e}");
        let cause = match e {
            StoreError::Save { source, .. } | StoreError::Io { source, .. } => source.to_string(),
            StoreError::Corrupt { why, .. } => why,
            e @ (StoreError::WrongPassword { .. }
            | StoreError::Missing { .. }
            | StoreError::RolledBack { .. }
            | StoreError::EmptyPassword
            | StoreError::Kdf(_)) => e.to_string(),
        };
        DaemonError::Save {
            what,
            path: self.vault.dir().join(DEVICES_FILE),
            cause,
        }
    }

    fn save(&self, devices: &DeviceList, what: &str) {
        if let Err(e) = devices.save(&self.vault) {
            tracing::error!("{what}: {e}");
        }
    }

    async fn client(self: Arc<Self>, stream: UnixStream, mut idle: Idle) {
        let (mut reader, mut writer) = stream.into_split();
        let first = timeout(
            REQUEST_TIMEOUT,
            read_frame_up_to(&mut reader, MAX_REQUEST_LEN),
        );
        let read = tokio::select! {
            read = first => read,
            () = idle.evicted() => {
                tracing::debug!("an idle CLI connection made room for a newer one");
                return;
            }
        };
        drop(idle);
        let request: Request = match read {
            Ok(Ok(r)) => r,
            Ok(Err(FrameError::Closed)) => return,
            Ok(Err(e)) => {
                let error = DaemonError::BadRequest(e.to_string());
                let _ = timeout(
                    REPLY_TIMEOUT,
                    write_frame(&mut writer, &Response::Error(error)),
                )
                .await;
                return;
            }
            Err(_) => {
                tracing::debug!("a CLI connection sent no request in {REQUEST_TIMEOUT:?}");
                return;
            }
        };
        // Later frames on this connection (a confirm answer) arrive through this channel;
        // its closing means the CLI went away. The reader ends with this connection.
        let (tx, rx) = mpsc::channel(4);
        let _reader = AbortOnDrop(tokio::spawn(async move {
            while let Ok(request) =
                read_frame_up_to::<_, Request>(&mut reader, MAX_REQUEST_LEN).await
            {
                if tx.send(request).await.is_err() {
                    break;
                }
            }
        }));
        let reply = match request {
            Request::Status => Response::Status(self.status().await),
            Request::Stop => {
                let _ = write_frame(&mut writer, &Response::Done).await;
                self.stop.notify_one();
                return;
            }
            Request::Devices => Response::Devices(
                crate::meeting_points::with_paths(&self.node, self.device_views()).await,
            ),
            Request::PairStatus => Response::PairStatus(self.session_view()),
            Request::PairCancel => self.cancel_session(),
            Request::Unpair { who } => self.unpair(&who),
            Request::Generate {
                auto_accept,
                expires_secs,
            } => {
                // Decided here and handed to the node, so what the user is told is what
                // the node enforces.
                let ttl = match code_lifetime(expires_secs, self.code_ttl) {
                    Ok(ttl) => ttl,
                    Err(e) => {
                        let _ =
                            timeout(REPLY_TIMEOUT, write_frame(&mut writer, &Response::Error(e)))
                                .await;
                        return;
                    }
                };
                let options = GenerateOptions {
                    auto_accept,
                    ttl: Some(ttl),
                };
                match self.node.generate(options).await {
                    Ok((code, handle)) => {
                        let expires_at = Instant::now().checked_add(ttl);
                        let secs = ttl.as_secs();
                        let first = Response::Code {
                            words: code.words(),
                            expires_secs: secs,
                        };
                        self.run_session("initiator", expires_at, first, handle, writer, rx)
                            .await;
                        return;
                    }
                    Err(e) => Response::Error(e.into()),
                }
            }
            Request::Join { words, auto_accept } => match Code::parse(&words) {
                Err(e) => Response::Error(DaemonError::BadCode(e.to_string())),
                Ok(code) => match self
                    .node
                    .start_join(&code, JoinOptions { auto_accept })
                    .await
                {
                    Ok(handle) => {
                        let first = Response::Event(Event::Searching);
                        self.run_session("joiner", None, first, handle, writer, rx)
                            .await;
                        return;
                    }
                    Err(e) => Response::Error(e.into()),
                },
            },
            Request::Confirm { .. } => Response::Error(DaemonError::ConfirmWithoutSession),
            Request::Send {
                device,
                paths,
                text,
            } => {
                self.send(device, paths, text, writer, rx).await;
                return;
            }
            Request::SendCancel => Response::Error(DaemonError::BadRequest(
                "no send is running on this connection".into(),
            )),
            Request::Received => self.received(),
            Request::FollowReceived => {
                self.follow_received(writer, rx).await;
                return;
            }
            Request::SetReceive { who, on } => self.set_receive(&who, on),
        };
        let _ = timeout(REPLY_TIMEOUT, write_frame(&mut writer, &reply)).await;
    }

    /// Relays a session's events to the CLI that started it, `first` first, until the
    /// outcome. The session is listed (`pair status`) before `first` goes: whoever reads
    /// the code (or "searching") finds the session running.
    async fn run_session(
        self: &Arc<Self>,
        role: &'static str,
        expires_at: Option<Instant>,
        first: Response,
        mut handle: PairingHandle,
        mut writer: tokio::net::unix::OwnedWriteHalf,
        mut requests: mpsc::Receiver<Request>,
    ) {
        let (cancel_tx, mut cancel_rx) = mpsc::unbounded_channel();
        *self.session.lock().expect("session lock") = Some(Session {
            role,
            stage: "waiting".into(),
            expires_at,
            cancel: cancel_tx,
        });
        let mut confirming: Option<PeerId> = None;
        // What the save on `StoreRequested` gave: the device as listed, or why it failed
        // (the file and the OS's reason, more use to the user than "not stored").
        let mut saved: Option<Saved> = None;
        // The save, readied on a thread of its own before it is asked for (the initiator's
        // while its Challenge and the proof travel, the joiner's while the initiator stores
        // its side); dropped (its temporary file removed) if the session does not ask for it.
        let mut preparing: Option<JoinHandle<Option<PreparedSave>>> = None;
        // The file that save goes into, written before anything is known of the other
        // device (`reserve_ahead`): then readying the save syncs its data alone.
        let ahead = self.reserved_ahead.lock().expect("reservation lock").take();
        let mut reserving = Some(ahead.unwrap_or_else(|| self.spawn_reserve()));
        // The device list's generation that save made, recorded once the session is over
        // (`DeviceList::save_list`), and the list it replaced, released then: nobody
        // waits for either.
        let mut unrecorded: Option<(u64, Replaced)> = None;
        let mut cli_gone = false;
        if write_frame(&mut writer, &first).await.is_err() {
            cli_gone = true;
            handle.cancel();
        }
        loop {
            tokio::select! {
                event = handle.next_event() => {
                    let Some(event) = event else {
                        let error = DaemonError::NodeStopped;
                        let _ = write_frame(&mut writer, &Response::Event(Event::Failed(error))).await;
                        break;
                    };
                    let (out, last) = match event {
                        PairingEvent::Contacting { .. } => continue,
                        PairingEvent::Verified { peer, info } => {
                            self.set_stage(format!("verifying {}", info.name));
                            (Event::Found { name: info.name, peer: peer.to_string() }, false)
                        }
                        PairingEvent::ConfirmRequested { peer, info, verification } => {
                            self.set_stage(format!("waiting for your answer about {}", info.name));
                            confirming = Some(peer.clone());
                            let verification = verification.to_string();
                            (Event::ConfirmRequested { name: info.name, peer: peer.to_string(), verification }, false)
                        }
                        PairingEvent::NotAnnounced { reason } => (Event::NotAnnounced { reason }, false),
                        PairingEvent::PrepareStore(device) => {
                            // One readied save at a time (they share a file name): a later
                            // one (a proof made again after a lost attempt, the Challenge to
                            // another Join) replaces the last.
                            if let Some(earlier) = preparing.take() {
                                drop(earlier.await);
                            }
                            // The first one goes into the reserved file.
                            let reserved = match reserving.take() {
                                Some(task) => task.await.ok().flatten(),
                                None => None,
                            };
                            // Off this thread: the message it follows is still on its way out.
                            let daemon = Arc::clone(self);
                            preparing = Some(tokio::task::spawn_blocking(move || daemon.prepare(&device, reserved)));
                            continue;
                        }
                        // Saved before anyone is told: an initiator acknowledges the pairing
                        // only after this answer.
                        PairingEvent::StoreRequested(device) => {
                            self.set_stage(format!("saving the pairing with {}", device.info.name));
                            let previous = self.devices.lock().expect("devices lock").get_mut(&device.peer).map(|r| r.clone());
                            let prepared = match preparing.take() {
                                Some(task) => task.await.ok().flatten(),
                                None => None,
                            };
                            let result = self.remember(&device, prepared).map(|saved| {
                                unrecorded = Some((saved.generation, saved.replaced));
                                saved.view
                            });
                            // The answer first: the initiator's `Done` waits for it, and what
                            // `welcome` asks of the node would otherwise go out before it.
                            handle.stored(&device.peer, result.is_ok());
                            if result.is_ok() {
                                self.welcome(&device);
                            }
                            saved = Some(Saved { peer: device.peer.clone(), previous, result });
                            continue;
                        }
                        PairingEvent::Completed(device) => match saved.take().map(|s| s.result) {
                            Some(Ok(view)) => (Event::Paired(view), true),
                            // The core completes only after a successful save.
                            Some(Err(error)) => (Event::Failed(error), true),
                            None => {
                                let reason = FailReason::NotStored { peer: device.peer.clone() };
                                (Event::Failed(DaemonError::Pairing { reason }), true)
                            }
                        },
                        PairingEvent::Failed(e) => {
                            let error = match saved.take() {
                                // Our own save failed: say which file and why.
                                Some(Saved { peer, result: Err(error), .. }) => {
                                    tracing::warn!(peer = %peer, "the pairing could not be saved here; if the other device saved it, it forgets it when the two next meet");
                                    error
                                }
                                // Saved, but the session ended anyway (the answer came too late,
                                // or a cancel crossed it): the other side does not count on it.
                                Some(Saved { peer, previous, result: Ok(_) }) => {
                                    self.unsave(&peer, previous, &e);
                                    e.into()
                                }
                                None => e.into(),
                            };
                            (Event::Failed(error), true)
                        }
                    };
                    let out = Response::Event(out);
                    if !cli_gone && write_frame(&mut writer, &out).await.is_err() {
                        cli_gone = true;
                        handle.cancel();
                    }
                    if last {
                        // Logged once the outcome went out: the log file's write is not
                        // something the pairing should wait for.
                        if let Response::Event(Event::Paired(view)) = &out {
                            tracing::info!(peer = %view.peer_id, name = %view.name, "paired");
                        }
                        break;
                    }
                }
                request = requests.recv(), if !cli_gone => match request {
                    Some(Request::Confirm { accept }) => {
                        if let Some(peer) = confirming.take() {
                            handle.confirm(&peer, accept);
                        }
                    }
                    Some(_) => {}
                    None => {
                        // Ctrl+C or a closed terminal: the session must not outlive its user.
                        cli_gone = true;
                        handle.cancel();
                    }
                },
                Some(()) = cancel_rx.recv() => handle.cancel(),
            }
        }
        // A reserved or readied file left unused is removed when dropped; it shares its
        // name with the next reservation, so it goes first, and the next is under way
        // before another session can begin.
        if let Some(task) = reserving {
            drop(task.await);
        }
        if let Some(task) = preparing {
            drop(task.await);
        }
        // Under the lock every save takes, so no other save writes the identity file
        // meanwhile; the next reservation, which reads the list under it, follows the
        // record. Made at once, its thread took the CPU from the clients' last prints and
        // exits: 2.89-3.07 ms (p50) against 2.51-2.82 for the pairing (interleaved, three
        // pairs, 2026-12-01 00:16 UTC).
        let devices = self.devices.lock().expect("devices lock");
        self.reserve_ahead();
        *self.session.lock().expect("session lock") = None;
        if let Some((generation, replaced)) = unrecorded {
            drop(replaced);
            // Then two flushes nobody waits for, after the session's last event went out. On
            // the daemon's one thread: on a blocking thread the warm pairing measured
            // slower (3.8-4.4 ms against 3.4-3.6, session 6), and deferring them by 20 ms
            // changed nothing beyond the noise (3.85-4.18 ms against 3.93-4.04).
            crate::devices::record_generation(&self.vault, generation);
        }
        drop(devices);
    }

    fn set_stage(&self, stage: String) {
        if let Some(session) = self.session.lock().expect("session lock").as_mut() {
            session.stage = stage;
        }
    }

    /// Undoes the save of a pairing whose session then failed, so that nothing one-sided
    /// stays behind on this side: the device's earlier record comes back if it had one
    /// (pairing again with a paired device), else it is removed.
    fn unsave(&self, peer: &PeerId, previous: Option<DeviceRecord>, why: &paircode_net::Error) {
        let undone = match previous {
            Some(record) => {
                let mut devices = self.devices.lock().expect("devices lock");
                let mut updated = devices.clone();
                updated.upsert(record);
                updated.save(&self.vault).map(|()| *devices = updated)
            }
            None => self.forget(peer, false).map(drop),
        };
        match undone {
            Ok(_) => {
                tracing::warn!(peer = %peer, "the pairing was saved but did not complete ({why}); removed again")
            }
            Err(e) => {
                tracing::error!(peer = %peer, "the pairing was saved but did not complete ({why}), and could not be removed again: {e}; it will be removed when the devices next meet")
            }
        }
    }

    /// Writes the device list with `device` in it under a temporary name, fsynced, for
    /// [`remember`](Self::remember) to rename into place if the pairing is to be saved. A
    /// failure here is not reported: the save proper tries again and says why.
    fn prepare(&self, device: &PairedDevice, reserved: Option<Reserved>) -> Option<PreparedSave> {
        // The list and its generation are read together; the write happens without the
        // lock (its fsync would hold up the daemon's thread at the next lookup).
        let ((updated, record), base) = {
            let devices = self.devices.lock().expect("devices lock");
            let base = self.vault.generation(DEVICES_FILE).unwrap_or(0);
            (with_pairing(&devices, device), base)
        };
        let staged = match reserved {
            Some(reserved) => self.vault.stage_reserved(reserved, DEVICES_FILE, &updated),
            None => self.vault.stage_early(DEVICES_FILE, &updated),
        };
        match staged {
            // Still the list's next generation: no save came in between.
            Ok(staged) if staged.generation() == base.saturating_add(1) => {
                Some(PreparedSave { staged, record })
            }
            Ok(_) => None,
            Err(e) => {
                tracing::debug!("preparing the save of a pairing: {e}");
                None
            }
        }
    }

    /// Reserves the file the next pairing's save goes into: at the start and after each
    /// session, so that the next session finds it written and synced. Reserved when the
    /// session began instead, it was written while the messages travelled, and the
    /// joiner's was synced as the initiator readied its own save: in interleaved runs of
    /// `client-latency` (2026-12-01 00:18 UTC, `--runs 200`, five pairs) the warm pairing
    /// took 2.60-2.73 ms (p50) against 2.75-2.86.
    fn reserve_ahead(self: &Arc<Self>) {
        // Checked and stored under the lock the stop takes it with.
        let mut ahead = self.reserved_ahead.lock().expect("reservation lock");
        if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let earlier = ahead.replace(self.spawn_reserve());
        debug_assert!(earlier.is_none(), "one reservation at a time");
    }

    fn spawn_reserve(self: &Arc<Self>) -> JoinHandle<Option<Reserved>> {
        let daemon = Arc::clone(self);
        tokio::task::spawn_blocking(move || daemon.reserve())
    }

    /// The file [`prepare`](Self::prepare) will write the device list into, reserved with
    /// room for one more device. A failure is not reported: `prepare` writes a file of its
    /// own then.
    fn reserve(&self) -> Option<Reserved> {
        let now = crate::store::encoded_len(&*self.devices.lock().expect("devices lock"));
        self.vault
            .reserve_early(DEVICES_FILE, now + RESERVED_ROOM)
            .map_err(|e| tracing::debug!("reserving the save of a pairing: {e}"))
            .ok()
    }

    /// Persists a new pairing before anyone is told it succeeded: the device list alone,
    /// whose generation the caller records later (`record_generation`). The `prepared`
    /// list is renamed into place if it is of this pairing and nothing was saved since it
    /// was written; otherwise the list is written now.
    fn remember(
        &self,
        device: &PairedDevice,
        prepared: Option<PreparedSave>,
    ) -> Result<Remembered, DaemonError> {
        let mut devices = self.devices.lock().expect("devices lock");
        let ready = prepared.filter(|p| p.record.is_of(device) && p.staged.is_next());
        let (record, generation, replaced) = match ready {
            Some(PreparedSave { staged, record }) => {
                let generation = staged.generation();
                let replaced = staged
                    .commit()
                    .and_then(|replaced| self.vault.sync_dir().map(|()| replaced))
                    .map_err(|e| self.save_failed(SaveContext::Paired, e))?;
                (record, generation, replaced)
            }
            None => {
                let (updated, record) = with_pairing(&devices, device);
                let generation = updated
                    .save_list(&self.vault)
                    .map_err(|e| self.save_failed(SaveContext::Paired, e))?;
                (record, generation, Replaced::default())
            }
        };
        let view = record.view(true);
        devices.upsert(record);
        Ok(Remembered {
            view,
            generation,
            replaced,
        })
    }

    /// Tells the node of a pairing just remembered: the device is online (the pairing
    /// ran over a connection to it), presence greets it, and the two meet under its
    /// rendezvous key from now on.
    fn welcome(&self, device: &PairedDevice) {
        self.online
            .lock()
            .expect("online lock")
            .insert(device.peer.clone());
        let _ = self.node.add_paired(device.peer.clone());
        let devices = self.devices.lock().expect("devices lock");
        crate::meeting_points::set_rendezvous(&self.node, devices.devices.iter());
    }

    fn unpair(&self, who: &str) -> Response {
        let found = self
            .devices
            .lock()
            .expect("devices lock")
            .find(who)
            .map(|record| (record.peer(), record.name.clone()));
        let peer = match found {
            Ok((Some(peer), _)) => peer,
            Ok((None, name)) => return Response::Error(DaemonError::InvalidStoredPeer { name }),
            Err(e) => return Response::Error(e.into()),
        };
        match self.forget(&peer, true) {
            Ok(Some(record)) => {
                tracing::info!(peer = %peer, "unpaired");
                Response::Unpaired(record.view(false))
            }
            // Gone between the lookup and now: the other device unpaired us meanwhile.
            Ok(None) => Response::Error(crate::devices::FindError::Unknown(who.to_string()).into()),
            Err(e) => Response::Error(self.save_failed(SaveContext::Unpaired, e)),
        }
    }

    fn cancel_session(&self) -> Response {
        match self.session.lock().expect("session lock").as_ref() {
            Some(session) => {
                let _ = session.cancel.send(());
                Response::Done
            }
            None => Response::Error(DaemonError::NoSession),
        }
    }

    fn session_view(&self) -> Option<SessionView> {
        self.session
            .lock()
            .expect("session lock")
            .as_ref()
            .map(|s| SessionView {
                role: s.role.to_string(),
                stage: s.stage.clone(),
                expires_in_secs: s
                    .expires_at
                    .map(|at| at.saturating_duration_since(Instant::now()).as_secs()),
            })
    }

    fn device_views(&self) -> Vec<DeviceView> {
        let online = self.online.lock().expect("online lock").clone();
        let devices = self.devices.lock().expect("devices lock");
        devices
            .devices
            .iter()
            .map(|d| d.view(d.peer().is_some_and(|p| online.contains(&p))))
            .collect()
    }

    async fn status(&self) -> StatusInfo {
        let listen = self
            .node
            .listen_addrs()
            .await
            .map(|addrs| addrs.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        let meeting_points = crate::meeting_points::views(&self.node).await;
        StatusInfo {
            instance: self.instance.name.clone(),
            peer_id: self.node.peer_id().to_string(),
            name: self.name.clone(),
            listen,
            mdns: self.mdns,
            paired_devices: self.devices.lock().expect("devices lock").devices.len(),
            session: self.session_view(),
            pid: std::process::id(),
            meeting_points,
        }
    }
}

/// `devices` with `device`'s pairing in it (added, or replacing the device's earlier
/// record), and that record.
fn with_pairing(devices: &DeviceList, device: &PairedDevice) -> (DeviceList, DeviceRecord) {
    let record = DeviceRecord::from_pairing(device, unix_now());
    let mut updated = devices.clone();
    updated.upsert(record.clone());
    (updated, record)
}

/// A device list with a new pairing in it, written and fsynced under a temporary name before
/// the pairing is to be saved (`PairingEvent::PrepareStore`): saving it then takes only the
/// rename and the directory's sync.
struct PreparedSave {
    staged: Staged,
    record: DeviceRecord,
}

/// A pairing saved ([`Daemon::remember`]): the device as listed, the device list's
/// generation (recorded once the session is over), and the list it replaced, released
/// then too.
struct Remembered {
    view: DeviceView,
    generation: u64,
    replaced: Replaced,
}

/// What saving a pairing on `PairingEvent::StoreRequested` gave, kept until the session's
/// outcome: the device as listed, or why the save failed (the file and the OS's reason,
/// more use to the user than "not stored"); and the device's earlier record, to put back
/// should the session fail after all.
struct Saved {
    peer: PeerId,
    previous: Option<DeviceRecord>,
    result: Result<DeviceView, DaemonError>,
}
