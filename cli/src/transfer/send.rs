//! The sending end of one stream: offers each item, sends the bytes the receiver does not
//! hold yet while hashing them (on a reader thread of their own), then their SHA-256, and counts an item
//! delivered only when the receiver says it verified and stored it. The receiver's answers
//! are read by their own task, so a refusal that comes while bytes are still being written
//! (disk full) stops the writing at once.

use std::path::Path;
use std::time::{Duration, Instant};

use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use super::error::TransferError;
use super::plan::{Source, What};
use super::reader::Reader;
use super::wire::{
    self, FileId, Header, Item, ReceiverFrame, SenderFrame, WireError, CHUNK_PREFIX, MAX_CHUNK,
};

/// How often byte counts are reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// How long the sender waits for the receiver to close after the last item.
const LINGER: Duration = Duration::from_secs(5);

/// What the sender reports while it works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// An item starts; `offset` bytes of it the receiver already held.
    Item {
        name: String,
        size: u64,
        offset: u64,
    },
    /// Bytes of all items done so far (resumed bytes included).
    Bytes {
        done: u64,
    },
    Stored(Delivered),
}

/// One item the receiver verified and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    pub name: String,
    pub size: u64,
    /// Hex.
    pub sha256: String,
    /// Where it landed, relative to the receiver's downloads directory (files only).
    pub stored_as: Option<String>,
    pub resumed_from: u64,
}

/// Why a send stops before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The user cancelled: the receiver is told, and drops what it received of the item.
    Cancel,
    /// The user went away: the stream is reset, and the receiver keeps what it received
    /// for a resume.
    Abort,
}

type Reply = Result<ReceiverFrame, WireError>;

/// What ended the wait for a chunk to be written.
enum During {
    Written(std::io::Result<()>),
    Reply(Option<Reply>),
    Aborted,
}

/// Sends `items` over `stream` to `device` (its name, for errors).
pub async fn send<S>(
    stream: S,
    device: &str,
    items: Vec<Source>,
    progress: mpsc::UnboundedSender<Progress>,
    stop: watch::Receiver<Option<Stop>>,
) -> Result<Vec<Delivered>, TransferError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut reader, writer) = stream.split();
    let (reply_tx, replies) = mpsc::unbounded_channel();
    let reader_task = tokio::spawn(async move {
        loop {
            let reply = wire::read_frame::<_, ReceiverFrame>(&mut reader).await;
            let last = reply.is_err();
            if reply_tx.send(reply).is_err() || last {
                break;
            }
        }
    });
    let mut sender = Sender {
        device: device.to_string(),
        writer,
        replies,
        answered: false,
        progress,
        stop,
        done: 0,
        last_report: Instant::now(),
    };
    let outcome = sender.all(items).await;
    if outcome.is_ok() {
        // The receiver closes once it has read `End`.
        let _ = tokio::time::timeout(LINGER, sender.replies.recv()).await;
    }
    reader_task.abort();
    outcome
}

struct Sender<W> {
    device: String,
    writer: W,
    replies: mpsc::UnboundedReceiver<Reply>,
    /// The receiver answered at least once: a stream that breaks before was refused.
    answered: bool,
    progress: mpsc::UnboundedSender<Progress>,
    stop: watch::Receiver<Option<Stop>>,
    done: u64,
    last_report: Instant,
}

impl<W: AsyncWrite + Unpin> Sender<W> {
    async fn all(&mut self, items: Vec<Source>) -> Result<Vec<Delivered>, TransferError> {
        let mut delivered = Vec::with_capacity(items.len());
        for item in items {
            delivered.push(self.item(item).await?);
        }
        self.frame(&SenderFrame::End).await?;
        let _ = self.writer.close().await;
        Ok(delivered)
    }

    async fn item(&mut self, source: Source) -> Result<Delivered, TransferError> {
        let name = source.shown();
        let size = source.size;
        let item = match &source.what {
            What::File { name, id, .. } => Item::File {
                path: name.clone(),
                id: *id,
            },
            What::Text(_) => Item::Text,
        };
        self.frame(&SenderFrame::Offer(Header { item, size }))
            .await?;
        let offset = match self.reply(true).await? {
            ReceiverFrame::Ready { offset } if offset <= size => offset,
            other => return Err(self.unexpected(other)),
        };
        let _ = self.progress.send(Progress::Item {
            name: name.clone(),
            size,
            offset,
        });
        self.done += offset;
        let sha256 = match &source.what {
            What::File { path, id, .. } => self.file(path, *id, offset, size).await?,
            What::Text(text) => {
                for chunk in text.as_bytes().chunks(MAX_CHUNK) {
                    let mut framed = vec![0; CHUNK_PREFIX];
                    framed.extend_from_slice(chunk);
                    self.chunk(&mut framed).await?;
                }
                Sha256::digest(text.as_bytes()).into()
            }
        };
        self.report(true);
        // Every byte is sent: a cancel now would race the receiver storing the item.
        self.frame(&SenderFrame::Sent { sha256 }).await?;
        let stored_as = match self.reply(false).await? {
            ReceiverFrame::Stored { name } => name,
            other => return Err(self.unexpected(other)),
        };
        let delivered = Delivered {
            name,
            size,
            sha256: hex::encode(sha256),
            stored_as: matches!(source.what, What::File { .. }).then_some(stored_as),
            resumed_from: offset,
        };
        let _ = self.progress.send(Progress::Stored(delivered.clone()));
        Ok(delivered)
    }

    /// Sends bytes `offset..size` of the file `id` names: the SHA-256 of all `size` bytes.
    async fn file(
        &mut self,
        path: &Path,
        id: FileId,
        offset: u64,
        size: u64,
    ) -> Result<[u8; 32], TransferError> {
        let mut reader = Reader::start(path.to_path_buf(), id, offset, size);
        while let Some(mut framed) = reader.next().await {
            self.chunk(&mut framed).await?;
            reader.recycle(framed);
        }
        match reader.finish().await {
            Ok(sha256) => Ok(sha256),
            Err(e) => {
                // What arrived is not this file's, or not all of one version of it: the
                // receiver drops it (a cancel also stands where the SHA-256 is due).
                let _ = wire::write_cancel(&mut self.writer).await;
                Err(TransferError::Source {
                    path: path.to_path_buf(),
                    cause: e.to_string(),
                })
            }
        }
    }

    /// Writes one chunk (`framed`, as [`wire::write_chunk`] takes it), unless the user
    /// stopped or the receiver refused meanwhile.
    async fn chunk(&mut self, framed: &mut [u8]) -> Result<(), TransferError> {
        let stop = *self.stop.borrow();
        if let Some(stop) = stop {
            return Err(self.stopped(stop).await);
        }
        let during = {
            let write = wire::write_chunk(&mut self.writer, framed);
            tokio::pin!(write);
            loop {
                tokio::select! {
                    written = &mut write => break During::Written(written),
                    reply = self.replies.recv() => break During::Reply(reply),
                    changed = self.stop.changed() => {
                        // A cancel waits for this chunk to be whole, so the receiver can
                        // read it; an abort (or a dropped stop handle) does not wait.
                        if changed.is_err() || *self.stop.borrow() == Some(Stop::Abort) {
                            break During::Aborted;
                        }
                    }
                }
            }
        };
        match during {
            During::Written(Ok(())) => {}
            During::Written(Err(e)) => return Err(self.broken(e.to_string()).await),
            During::Reply(reply) => return Err(self.refused(reply)),
            During::Aborted => return Err(TransferError::Cancelled),
        }
        self.done += (framed.len() - CHUNK_PREFIX) as u64;
        self.report(false);
        Ok(())
    }

    async fn stopped(&mut self, stop: Stop) -> TransferError {
        if stop == Stop::Cancel {
            let _ = wire::write_cancel(&mut self.writer).await;
            let _ = self.writer.close().await;
        }
        TransferError::Cancelled
    }

    fn report(&mut self, now: bool) {
        if now || self.last_report.elapsed() >= PROGRESS_EVERY {
            self.last_report = Instant::now();
            let _ = self.progress.send(Progress::Bytes { done: self.done });
        }
    }

    async fn frame(&mut self, frame: &SenderFrame) -> Result<(), TransferError> {
        match wire::write_frame(&mut self.writer, frame).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.broken(e.to_string()).await),
        }
    }

    /// The receiver's next answer, unless the user aborts first (or cancels, if
    /// `cancellable`).
    async fn reply(&mut self, cancellable: bool) -> Result<ReceiverFrame, TransferError> {
        loop {
            tokio::select! {
                reply = self.replies.recv() => {
                    return match reply {
                        Some(Ok(ReceiverFrame::Refused(refusal))) => Err(TransferError::Refused {
                            device: self.device.clone(),
                            refusal,
                        }),
                        Some(Ok(frame)) => {
                            self.answered = true;
                            Ok(frame)
                        }
                        other => Err(self.refused(other)),
                    };
                }
                changed = self.stop.changed() => {
                    let stop = match changed {
                        Ok(()) => *self.stop.borrow(),
                        Err(_) => Some(Stop::Abort),
                    };
                    match stop {
                        Some(Stop::Cancel) if !cancellable => {}
                        Some(stop) => return Err(self.stopped(stop).await),
                        None => {}
                    }
                }
            }
        }
    }

    /// A write failed: the receiver's refusal, if one is on its way, says why.
    async fn broken(&mut self, cause: String) -> TransferError {
        match tokio::time::timeout(Duration::from_secs(1), self.replies.recv()).await {
            Ok(Some(Ok(ReceiverFrame::Refused(refusal)))) => TransferError::Refused {
                device: self.device.clone(),
                refusal,
            },
            _ => self.lost(cause),
        }
    }

    /// What an answer out of turn, or none, means.
    fn refused(&self, reply: Option<Reply>) -> TransferError {
        match reply {
            Some(Ok(ReceiverFrame::Refused(refusal))) => TransferError::Refused {
                device: self.device.clone(),
                refusal,
            },
            Some(Ok(other)) => self.unexpected(other),
            Some(Err(e @ (WireError::Malformed(_) | WireError::TooLarge(_)))) => {
                TransferError::Protocol {
                    device: self.device.clone(),
                    cause: e.to_string(),
                }
            }
            Some(Err(e @ (WireError::Closed | WireError::Io(_)))) => self.lost(e.to_string()),
            None => self.lost("the stream ended".into()),
        }
    }

    fn lost(&self, cause: String) -> TransferError {
        if self.answered {
            TransferError::Lost {
                device: self.device.clone(),
                cause,
            }
        } else {
            TransferError::NotPairedThere {
                device: self.device.clone(),
            }
        }
    }

    fn unexpected(&self, frame: ReceiverFrame) -> TransferError {
        TransferError::Protocol {
            device: self.device.clone(),
            cause: format!("unexpected {frame:?}"),
        }
    }
}
