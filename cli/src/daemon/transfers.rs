//! The daemon's side of `paircode send`: sending for its CLI, receiving from paired
//! devices into the downloads directory, the received log and the per-device switch.
//! The transfer itself is `crate::transfer`'s; this is where it meets the device list.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use paircode_core::PeerId;
use paircode_net::{DeviceStream, StreamError};
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{broadcast, mpsc, watch};

use super::{unix_now, Daemon};
use crate::ipc::{write_frame, DaemonError, Request, Response};
use crate::transfer::log::{Arriving, ReceivedEntry, ReceivedLog, ReceivedWhat};
use crate::transfer::plan::{self, Source};
use crate::transfer::receive::{self, Arrival, Arrived, Inbox, Seen};
use crate::transfer::send::{self, Delivered, Stop};
use crate::transfer::{Refusal, TransferError, PROTOCOL};

/// How many events a slow `received --follow` may fall behind before it skips some.
const FOLLOW_BACKLOG: usize = 256;

/// Where received items go, the log of them, and who follows them.
pub struct Transfers {
    inbox: Inbox,
    log: Mutex<ReceivedLog>,
    followers: broadcast::Sender<Arriving>,
}

impl Transfers {
    pub fn new(inbox: Inbox, log: ReceivedLog) -> Self {
        Transfers {
            inbox,
            log: Mutex::new(log),
            followers: broadcast::channel(FOLLOW_BACKLOG).0,
        }
    }

    fn tell(&self, event: Arriving) {
        // Nobody following is fine.
        let _ = self.followers.send(event);
    }
}

impl Daemon {
    /// Accepts transfer streams (from paired devices only: the node refuses the others)
    /// for as long as the node runs.
    pub(super) async fn accept_transfers(self: Arc<Self>) {
        let mut incoming = match self.node.accept(PROTOCOL) {
            Ok(incoming) => incoming,
            Err(e) => {
                tracing::error!("cannot receive transfers: {e}");
                return;
            }
        };
        tracing::info!(downloads = %self.transfers.inbox.downloads().display(), "receiving transfers");
        while let Some((peer, stream)) = incoming.next().await {
            tokio::spawn(self.clone().receive_from(peer, stream));
        }
    }

    async fn receive_from(self: Arc<Self>, peer: PeerId, stream: DeviceStream) {
        let found = self
            .devices
            .lock()
            .expect("devices lock")
            .devices
            .iter()
            .find(|d| d.peer_id == peer.as_bytes())
            .map(|d| (d.name.clone(), d.receive));
        // Unpaired between the node's admission and here: dropping resets the stream.
        let Some((name, allowed)) = found else {
            return;
        };
        if !allowed {
            tracing::info!(peer = %peer, "refused a transfer: receiving is off for {name}");
            receive::refuse(stream, Refusal::ReceivingOff).await;
            return;
        }
        let outcome = self
            .transfers
            .inbox
            .receive(&peer, stream, |seen| match seen {
                Seen::Started {
                    name: item,
                    size,
                    offset,
                } => self.transfers.tell(Arriving::Started {
                    from: name.clone(),
                    name: item.to_string(),
                    size,
                    offset,
                }),
                Seen::Bytes(done) => self.transfers.tell(Arriving::Bytes {
                    from: name.clone(),
                    done,
                }),
                Seen::Arrived(arrival) => self.record(&peer, &name, arrival),
            })
            .await;
        match outcome {
            Ok(items) => tracing::info!(peer = %peer, items, "received from {name}"),
            Err(e) => {
                tracing::warn!(peer = %peer, "receiving from {name}: {e}");
                self.transfers.tell(Arriving::Failed {
                    from: name.clone(),
                    error: e.to_string(),
                });
            }
        }
    }

    /// Logs an arrival (before the sender is told it was stored).
    fn record(&self, peer: &PeerId, name: &str, arrival: &Arrival) {
        let what = match &arrival.what {
            Arrived::File { sent_as, path, .. } => ReceivedWhat::File {
                name: sent_as.clone(),
                path: path.clone(),
            },
            Arrived::Text(text) => ReceivedWhat::Text { text: text.clone() },
        };
        let entry = ReceivedEntry {
            time: unix_now(),
            from: name.to_string(),
            peer_id: peer.to_string(),
            what,
            size: arrival.size,
            sha256: hex::encode(arrival.sha256),
            resumed_from: arrival.resumed_from,
        };
        tracing::info!(peer = %peer, size = entry.size, "received {:?}", entry.what);
        let mut log = self.transfers.log.lock().expect("received log lock");
        log.push(entry.clone());
        if let Err(e) = log.save(&self.vault) {
            tracing::error!("saving the received log: {e}");
        }
        drop(log);
        self.transfers.tell(Arriving::Arrived(entry));
    }

    /// Streams what arrives to a `received --follow` until it goes away.
    pub(super) async fn follow_received(
        &self,
        mut writer: OwnedWriteHalf,
        mut requests: mpsc::UnboundedReceiver<Request>,
    ) {
        let mut events = self.transfers.followers.subscribe();
        // Subscribed: from here on nothing is missed.
        if write_frame(&mut writer, &Response::Done).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => {
                        if write_frame(&mut writer, &Response::Arriving(event)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                request = requests.recv() => if request.is_none() {
                    return;
                },
            }
        }
    }

    pub(super) fn received(&self) -> Response {
        let log = self.transfers.log.lock().expect("received log lock");
        Response::Received(log.entries.clone())
    }

    /// Turns receiving from a device on or off, persisted before it is reported.
    pub(super) fn set_receive(&self, who: &str, on: bool) -> Response {
        let mut devices = self.devices.lock().expect("devices lock");
        let mut updated = devices.clone();
        let peer = match updated.find(who) {
            Ok(record) => record.peer_id.clone(),
            Err(e) => return Response::Error(e.into()),
        };
        let Some(record) = updated.devices.iter_mut().find(|d| d.peer_id == peer) else {
            return Response::Error(crate::devices::FindError::Unknown(who.to_string()).into());
        };
        record.receive = on;
        let online = record
            .peer()
            .is_some_and(|p| self.online.lock().expect("online lock").contains(&p));
        let view = record.view(online);
        if let Err(e) = updated.save(&self.vault) {
            return Response::Error(self.save_failed(crate::ipc::SaveContext::Receive, e));
        }
        *devices = updated;
        tracing::info!(device = %view.name, on, "receiving switched");
        Response::ReceiveSet(view)
    }

    /// Runs a send for the CLI on this connection, replying with its outcome.
    pub(super) async fn send(
        &self,
        device: String,
        paths: Vec<PathBuf>,
        text: Option<String>,
        mut writer: OwnedWriteHalf,
        requests: mpsc::UnboundedReceiver<Request>,
    ) {
        let reply = match self
            .send_items(&device, paths, text, &mut writer, requests)
            .await
        {
            Ok(delivered) => Response::Sent(delivered),
            Err(e) => Response::Error(e),
        };
        let _ = write_frame(&mut writer, &reply).await;
    }

    async fn send_items(
        &self,
        who: &str,
        paths: Vec<PathBuf>,
        text: Option<String>,
        writer: &mut OwnedWriteHalf,
        mut requests: mpsc::UnboundedReceiver<Request>,
    ) -> Result<Vec<Delivered>, DaemonError> {
        let (peer, view) = {
            let devices = self.devices.lock().expect("devices lock");
            let record = devices.find(who)?;
            let peer = record
                .peer()
                .ok_or_else(|| DaemonError::InvalidStoredPeer {
                    name: record.name.clone(),
                })?;
            let online = self.online.lock().expect("online lock").contains(&peer);
            (peer, record.view(online))
        };
        let (items, skipped) = match text {
            Some(text) if text.len() as u64 > receive::MAX_TEXT => {
                return Err(TransferError::TextTooLarge {
                    size: text.len() as u64,
                    max: receive::MAX_TEXT,
                }
                .into())
            }
            Some(text) => (vec![Source::text(text)], Vec::new()),
            None => tokio::task::spawn_blocking(move || plan::plan(&paths))
                .await
                .map_err(|e| DaemonError::Transport(e.to_string()))??,
        };
        let stream = tokio::select! {
            connected = self.node.connect(&peer, PROTOCOL) => {
                connected.map_err(|e| self.connect_failed(&view, e))?
            }
            // Cancelled, or the CLI went away, while connecting.
            _ = requests.recv() => return Err(TransferError::Cancelled.into()),
        };
        let sending = Response::Sending {
            device: view.clone(),
            items: items.len(),
            bytes: items.iter().map(|i| i.size).sum(),
            skipped,
        };
        let mut cli_gone = write_frame(writer, &sending).await.is_err();
        let (progress_tx, mut progress) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(if cli_gone { Some(Stop::Abort) } else { None });
        let sending = send::send(stream, &view.name, items, progress_tx, stop_rx);
        tokio::pin!(sending);
        loop {
            tokio::select! {
                outcome = &mut sending => {
                    while let Ok(p) = progress.try_recv() {
                        if !cli_gone && write_frame(writer, &Response::Transfer(p)).await.is_err() {
                            cli_gone = true;
                        }
                    }
                    return Ok(outcome?);
                }
                Some(p) = progress.recv() => {
                    if !cli_gone && write_frame(writer, &Response::Transfer(p)).await.is_err() {
                        cli_gone = true;
                        let _ = stop_tx.send(Some(Stop::Abort));
                    }
                }
                request = requests.recv(), if !cli_gone => match request {
                    Some(Request::SendCancel) => {
                        let _ = stop_tx.send(Some(Stop::Cancel));
                    }
                    Some(_) => {}
                    // Killed, or its terminal closed: the device keeps what arrived.
                    None => {
                        cli_gone = true;
                        let _ = stop_tx.send(Some(Stop::Abort));
                    }
                },
            }
        }
    }

    fn connect_failed(&self, device: &crate::ipc::DeviceView, e: StreamError) -> DaemonError {
        let name = device.name.clone();
        match e {
            StreamError::Unreachable { reason, .. } => TransferError::Offline {
                device: name,
                last_seen: device.last_seen,
                reason,
            }
            .into(),
            StreamError::Io { source, .. } => TransferError::Offline {
                device: name,
                last_seen: device.last_seen,
                reason: source.to_string(),
            }
            .into(),
            StreamError::Unsupported { .. } => TransferError::Unsupported { device: name }.into(),
            StreamError::NotPaired(_) => crate::devices::FindError::Unknown(name).into(),
            StreamError::NodeStopped => DaemonError::NodeStopped,
            e @ (StreamError::InvalidProtocol(_)
            | StreamError::ReservedProtocol(_)
            | StreamError::AlreadyAccepting(_)) => DaemonError::Transport(e.to_string()),
        }
    }
}
