//! The receiving end of one stream: items land in the downloads directory only once the
//! SHA-256 of all their bytes (resumed part included) matches the one the sender sends
//! after them, under names that [`names`] checked and chose. Bytes go through a few fixed
//! buffers straight to disk (`Sink`), whatever the size of the file.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use paircode_core::PeerId;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use super::error::Refusal;
use super::names::{self, Placement};
use super::partial::{self, Active, PARTIAL_DIR};
use super::sink::Sink;
use super::wire::{self, Chunk, Header, Item, ReceiverFrame, SenderFrame, WireError, MAX_CHUNK};
use super::writeback;

/// Texts are kept in the received log, so they are kept small.
/// Texts travel inline in the CLI's request to its daemon, whose requests are capped
/// (`ipc::MAX_REQUEST_LEN`); longer content is sent as a file.
pub const MAX_TEXT: u64 = 8 * 1024;
/// How long a refused stream is read (and discarded) so the refusal reaches the sender
/// before the stream closes.
const DRAIN_FOR: Duration = Duration::from_secs(5);

/// Where received items go, and the partial files being written.
pub struct Inbox {
    downloads: PathBuf,
    active: Active,
}

/// How often a file's progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// What the receiver sees, as it happens (for `received --follow`).
#[derive(Debug)]
pub enum Seen<'a> {
    /// An item starts: `offset` bytes of it were held from an interrupted transfer.
    Started {
        name: &'a str,
        size: u64,
        offset: u64,
    },
    /// Bytes of the current item held so far.
    Bytes(u64),
    /// Verified and stored (the sender is told next).
    Arrived(&'a Arrival),
}

/// A file as announced.
struct Announced<'a> {
    name: &'a str,
    size: u64,
}

/// One verified item.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub what: Arrived,
    pub size: u64,
    pub sha256: [u8; 32],
    /// Bytes already held from an interrupted transfer.
    pub resumed_from: u64,
}

#[derive(Debug, Clone)]
pub enum Arrived {
    /// `sent_as` is the name the sender gave; `name` where it landed, relative to the
    /// downloads directory.
    File {
        sent_as: String,
        name: String,
        path: PathBuf,
    },
    Text(String),
}

/// How a stream ended early.
#[derive(Debug, thiserror::Error)]
pub enum Ended {
    #[error("refused: {0}")]
    Refused(Refusal),
    #[error("the sender cancelled")]
    Cancelled,
    #[error("the stream broke mid-item; the partial file is kept for resuming")]
    Interrupted,
    #[error(transparent)]
    Wire(#[from] WireError),
}

impl Inbox {
    /// Sweeps partial files nobody resumed. The directory is created by the first transfer
    /// (a daemon that never receives leaves no trace in the user's downloads); something
    /// there that is not a directory is an error now rather than at the first transfer.
    pub fn open(downloads: PathBuf) -> io::Result<Self> {
        match std::fs::metadata(&downloads) {
            Ok(meta) if !meta.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    "it is not a directory",
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let swept = partial::sweep(&downloads);
        if swept > 0 {
            tracing::info!(swept, "removed stale partial files");
        }
        Ok(Inbox {
            downloads,
            active: Active::default(),
        })
    }

    pub fn downloads(&self) -> &Path {
        &self.downloads
    }

    /// Receives every item `sender` sends on `stream`, telling `observe` what happens;
    /// an item is [`Seen::Arrived`] once verified and stored, before the sender is told.
    pub async fn receive<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        sender: &PeerId,
        mut stream: S,
        mut observe: impl FnMut(Seen<'_>) + Send,
    ) -> Result<usize, Ended> {
        if let Err(e) = tokio::fs::create_dir_all(self.downloads.join(PARTIAL_DIR)).await {
            let refusal = Refusal::Storage(e.to_string());
            refuse(stream, refusal.clone()).await;
            return Err(Ended::Refused(refusal));
        }
        let mut placement = Placement::default();
        let mut buf = vec![0u8; MAX_CHUNK];
        let mut count = 0;
        loop {
            let header = match wire::read_frame::<_, SenderFrame>(&mut stream).await {
                Ok(SenderFrame::Offer(header)) => header,
                Ok(SenderFrame::End) | Err(WireError::Closed) => break,
                Ok(SenderFrame::Sent { .. }) => {
                    let refusal = Refusal::Protocol("a SHA-256 where an offer was due".into());
                    refuse(stream, refusal.clone()).await;
                    return Err(Ended::Refused(refusal));
                }
                Err(e) => {
                    let refusal = Refusal::Protocol(e.to_string());
                    refuse(stream, refusal.clone()).await;
                    return Err(Ended::Refused(refusal));
                }
            };
            let outcome = self
                .item(
                    sender,
                    &mut stream,
                    header,
                    &mut placement,
                    &mut buf,
                    &mut observe,
                )
                .await;
            match outcome {
                Ok(arrival) => {
                    observe(Seen::Arrived(&arrival));
                    let name = match arrival.what {
                        Arrived::File { name, .. } => name,
                        Arrived::Text(_) => String::new(),
                    };
                    wire::write_frame(&mut stream, &ReceiverFrame::Stored { name }).await?;
                    count += 1;
                }
                Err(Ended::Refused(refusal)) => {
                    refuse(stream, refusal.clone()).await;
                    return Err(Ended::Refused(refusal));
                }
                Err(e) => return Err(e),
            }
        }
        let _ = stream.close().await;
        Ok(count)
    }

    async fn item<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        sender: &PeerId,
        stream: &mut S,
        header: Header,
        placement: &mut Placement,
        buf: &mut [u8],
        observe: &mut (dyn FnMut(Seen<'_>) + Send),
    ) -> Result<Arrival, Ended> {
        let Header { item, size } = header;
        match item {
            Item::Text => {
                if size > MAX_TEXT {
                    return Err(Ended::Refused(Refusal::TextTooLarge {
                        size,
                        max: MAX_TEXT,
                    }));
                }
                wire::write_frame(stream, &ReceiverFrame::Ready { offset: 0 }).await?;
                observe(Seen::Started {
                    name: "text",
                    size,
                    offset: 0,
                });
                let mut text = Vec::with_capacity(size as usize);
                let mut hasher = Sha256::new();
                while (text.len() as u64) < size {
                    let n = data(stream, buf, size, text.len() as u64).await?;
                    hasher.update(&buf[..n]);
                    text.extend_from_slice(&buf[..n]);
                }
                let sha256 = sent(stream).await?;
                if <[u8; 32]>::from(hasher.finalize()) != sha256 {
                    return Err(Ended::Refused(Refusal::HashMismatch));
                }
                let text = String::from_utf8(text).map_err(|_| {
                    Ended::Refused(Refusal::Protocol("the text is not UTF-8".into()))
                })?;
                Ok(Arrival {
                    what: Arrived::Text(text),
                    size,
                    sha256,
                    resumed_from: 0,
                })
            }
            Item::File { path, id } => {
                names::check(&path).map_err(Ended::Refused)?;
                let key = partial::key(sender, &id, size);
                let _claim = self
                    .active
                    .claim(&key)
                    .ok_or(Ended::Refused(Refusal::Busy))?;
                let temp = partial::path(&self.downloads, &key);
                let shown = path.join("/");
                let announced = Announced { name: &shown, size };
                let outcome = self
                    .file(stream, &temp, &announced, buf, observe)
                    .await
                    .and_then(|(sha256, resumed_from)| {
                        let name = placement
                            .place(&self.downloads, &path, &temp)
                            .map_err(|e| storage(&e))?;
                        Ok((name, sha256, resumed_from))
                    });
                match outcome {
                    Ok((name, sha256, resumed_from)) => Ok(Arrival {
                        what: Arrived::File {
                            sent_as: path.join("/"),
                            path: names::resolve(&self.downloads, &name),
                            name,
                        },
                        size,
                        sha256,
                        resumed_from,
                    }),
                    // The stream broke: kept for the same file sent again.
                    Err(
                        e
                        @ (Ended::Interrupted | Ended::Wire(WireError::Io(_) | WireError::Closed)),
                    ) => Err(e),
                    Err(e) => {
                        let _ = tokio::fs::remove_file(&temp).await;
                        Err(e)
                    }
                }
            }
        }
    }

    /// Receives a file's bytes into `temp`, continuing what it holds; returns their
    /// SHA-256 and where it resumed. On success `temp` holds exactly the announced bytes,
    /// hashed as the sender said, synced.
    async fn file<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        temp: &Path,
        announced: &Announced<'_>,
        buf: &mut [u8],
        observe: &mut (dyn FnMut(Seen<'_>) + Send),
    ) -> Result<([u8; 32], u64), Ended> {
        let Announced { name, size } = *announced;
        let mut file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(temp)
            .await
            .map_err(|e| storage(&e))?;
        let mut held = file.metadata().await.map_err(|e| storage(&e))?.len();
        if held > size {
            file.set_len(0).await.map_err(|e| storage(&e))?;
            held = 0;
        }
        let available = free_space(&self.downloads).map_err(|e| storage(&e))?;
        if available < size - held {
            return Err(Ended::Refused(Refusal::DiskFull {
                needed: size - held,
                available,
            }));
        }
        // The final hash covers the whole file: what is held is hashed first.
        let mut hasher = Sha256::new();
        let mut hashed = 0;
        while hashed < held {
            let want = buf.len().min((held - hashed) as usize);
            let n = file.read(&mut buf[..want]).await.map_err(|e| storage(&e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            hashed += n as u64;
        }
        file.seek(io::SeekFrom::Start(held))
            .await
            .map_err(|e| storage(&e))?;
        let file = file.into_std().await;
        writeback::reserve(&file, held, size - held)
            .map_err(|e| self.write_failed(&e, size - held))?;
        wire::write_frame(stream, &ReceiverFrame::Ready { offset: held }).await?;
        observe(Seen::Started {
            name,
            size,
            offset: held,
        });
        let mut reported = Instant::now();
        let mut received = held;
        let mut sink = Sink::start(file, hasher, held);
        // What ended the loop early; the sink is finished first either way, so that what
        // arrived is on disk (for a resume) before anyone looks at the file.
        let mut ended = None;
        while received < size {
            let Some(mut chunk) = sink.buffer().await else {
                break;
            };
            let n = match data(stream, &mut chunk, size, received).await {
                Ok(n) => n,
                Err(e) => {
                    ended = Some(e);
                    break;
                }
            };
            if !sink.write(chunk, n).await {
                break;
            }
            received += n as u64;
            if reported.elapsed() >= PROGRESS_EVERY {
                reported = Instant::now();
                observe(Seen::Bytes(received));
            }
        }
        let written = sink.finish().await;
        if let Some(e) = ended {
            return Err(e);
        }
        let written = match written {
            Ok(written) if received == size => written,
            Ok(_) => return Err(storage(&io::Error::other("the disk side stopped"))),
            Err(e) => return Err(self.write_failed(&e, size - received)),
        };
        let sha256 = sent(stream).await?;
        if <[u8; 32]>::from(written.hasher.finalize()) != sha256 {
            return Err(Ended::Refused(Refusal::HashMismatch));
        }
        let file = written.file;
        tokio::task::spawn_blocking(move || file.sync_all())
            .await
            .map_err(io::Error::other)
            .and_then(|synced| synced)
            .map_err(|e| self.write_failed(&e, 0))?;
        Ok((sha256, held))
    }

    fn write_failed(&self, e: &io::Error, needed: u64) -> Ended {
        if matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) {
            return Ended::Refused(Refusal::DiskFull {
                needed,
                available: free_space(&self.downloads).unwrap_or(0),
            });
        }
        storage(e)
    }
}

/// The next chunk of an item of `size` bytes of which `received` arrived: its length.
async fn data<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
    size: u64,
    received: u64,
) -> Result<usize, Ended> {
    match wire::read_chunk(stream, buf).await? {
        Chunk::Data(n) if received + n as u64 > size => {
            Err(Ended::Refused(Refusal::SizeMismatch { declared: size }))
        }
        Chunk::Data(n) => Ok(n),
        Chunk::Cancelled => Err(Ended::Cancelled),
        Chunk::Ended => Err(Ended::Interrupted),
    }
}

/// The SHA-256 the sender sends after an item's last byte.
async fn sent<S: AsyncRead + Unpin>(stream: &mut S) -> Result<[u8; 32], Ended> {
    match wire::read_sent(stream).await {
        Ok(Some(sha256)) => Ok(sha256),
        Ok(None) => Err(Ended::Cancelled),
        Err(WireError::Closed | WireError::Io(_)) => Err(Ended::Interrupted),
        Err(e) => Err(Ended::Refused(Refusal::Protocol(e.to_string()))),
    }
}

fn storage(e: &io::Error) -> Ended {
    Ended::Refused(Refusal::Storage(e.to_string()))
}

/// Tells the sender why, then reads and discards what it still sends until it goes away
/// (closing at once could reset the stream before the refusal is read).
pub async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, refusal: Refusal) {
    if wire::write_frame(&mut stream, &ReceiverFrame::Refused(refusal))
        .await
        .is_err()
    {
        return;
    }
    let _ = stream.close().await;
    let drain = async {
        let mut sink = vec![0u8; 16 * 1024];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    let _ = tokio::time::timeout(DRAIN_FOR, drain).await;
}

/// Bytes available to this (unprivileged) user on the file system holding `dir`.
fn free_space(dir: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: statvfs writes into the zeroed struct we own; the path is NUL-terminated.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // The fields' widths differ between platforms.
    #[allow(clippy::unnecessary_cast)]
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}
