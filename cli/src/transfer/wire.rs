//! The frames of `/paircode-send/2`. Control frames are a 4-byte big-endian length and a
//! CBOR value; an item's bytes travel as chunks, each a 4-byte length and that many raw
//! bytes, where a zero length means the sender cancelled. One stream carries any number
//! of items, one after the other:
//!
//! ```text
//! sender                              receiver
//! Offer(header)            ─────────▶
//!                          ◀───────── Ready { offset } | Refused(why)
//! chunks from offset       ─────────▶
//! Sent { sha256 }          ─────────▶
//!                          ◀───────── Stored { name } | Refused(why)
//! … more offers …
//! End                      ─────────▶
//! ```
//!
//! The SHA-256 comes after the bytes, so that the sender hashes while it sends instead of
//! reading the whole file once before its first byte goes out.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::Refusal;

/// Control frames are small: a header names at most a few KiB of path.
pub const MAX_FRAME: usize = 64 * 1024;
/// The largest chunk a sender may write, and the size of the receiver's buffers.
pub const MAX_CHUNK: usize = 256 * 1024;
/// A chunk's length prefix. A sender's buffers keep this much room in front of the bytes,
/// so that a chunk goes out as one write.
pub const CHUNK_PREFIX: usize = 4;

/// One item: what it is and its size. Its SHA-256 follows its bytes ([`SenderFrame::Sent`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub item: Item,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Item {
    /// A file, by its path relative to what was sent: `["photos", "2024", "a.jpg"]`, and
    /// the sender's name for this version of it ([`FileId`]), on which a resume is keyed.
    File {
        path: Vec<String>,
        #[serde(with = "serde_bytes")]
        id: FileId,
    },
    /// A text, kept in the receiver's log rather than as a file.
    Text,
}

/// What a sender calls one version of a file, known before reading any of it; a file
/// offered again with the same id (by the same sender, with the same size) continues what
/// the receiver holds of it. It is only a key: the SHA-256 after the bytes still covers the
/// whole file, resumed part included, so an id that stayed while the content changed costs
/// a failed transfer, never a wrong file.
pub type FileId = [u8; 16];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderFrame {
    Offer(Header),
    /// Every byte of the item is sent: the SHA-256 of all of them, from the first (those
    /// the receiver held before `Ready` included).
    Sent {
        #[serde(with = "serde_bytes")]
        sha256: [u8; 32],
    },
    /// No more items.
    End,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiverFrame {
    /// Send the bytes from `offset` on: what it already holds of this very item (same
    /// sender, size and file id) from an interrupted transfer.
    Ready {
        offset: u64,
    },
    /// Verified and stored, under `name` (relative to its downloads directory) for files.
    Stored {
        name: String,
    },
    Refused(Refusal),
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("the stream ended")]
    Closed,
    #[error("a frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    value: &T,
) -> Result<(), WireError> {
    let mut buf = Vec::with_capacity(128);
    ciborium::into_writer(value, &mut buf).map_err(|e| WireError::Malformed(e.to_string()))?;
    if buf.len() > MAX_FRAME {
        return Err(WireError::TooLarge(buf.len()));
    }
    w.write_all(&(buf.len() as u32).to_be_bytes()).await?;
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

pub async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
) -> Result<T, WireError> {
    let len = match read_len(r).await? {
        Some(len) => len,
        None => return Err(WireError::Closed),
    };
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(len));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    ciborium::from_reader(buf.as_slice()).map_err(|e| WireError::Malformed(e.to_string()))
}

/// What follows an item's bytes: their SHA-256, or `None` if the sender cancelled the item
/// after all (a zero length, as for a chunk: its file changed while it was read).
pub async fn read_sent<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<[u8; 32]>, WireError> {
    let len = match read_len(r).await? {
        Some(0) => return Ok(None),
        Some(len) if len > MAX_FRAME => return Err(WireError::TooLarge(len)),
        Some(len) => len,
        None => return Err(WireError::Closed),
    };
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    match ciborium::from_reader(buf.as_slice()) {
        Ok(SenderFrame::Sent { sha256 }) => Ok(Some(sha256)),
        Ok(other) => Err(WireError::Malformed(format!(
            "expected the SHA-256 after the bytes, got {other:?}"
        ))),
        Err(e) => Err(WireError::Malformed(e.to_string())),
    }
}

/// A length prefix, or `None` at a clean end of the stream.
async fn read_len<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<usize>, WireError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(()) => Ok(Some(u32::from_be_bytes(len) as usize)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One chunk of an item's bytes: `framed[CHUNK_PREFIX..]`, never empty (an empty chunk
/// means cancel); its length is written into the room in front, and all goes as one write.
pub async fn write_chunk<W: AsyncWrite + Unpin>(
    w: &mut W,
    framed: &mut [u8],
) -> std::io::Result<()> {
    let len = framed.len() - CHUNK_PREFIX;
    debug_assert!(len > 0 && len <= MAX_CHUNK);
    framed[..CHUNK_PREFIX].copy_from_slice(&(len as u32).to_be_bytes());
    w.write_all(framed).await
}

/// Tells the receiver to discard the item being sent.
pub async fn write_cancel<W: AsyncWrite + Unpin>(w: &mut W) -> std::io::Result<()> {
    w.write_all(&0u32.to_be_bytes()).await?;
    w.flush().await
}

/// What came where a chunk was expected.
#[derive(Debug)]
pub enum Chunk {
    Data(usize),
    Cancelled,
    /// The stream ended (or broke) mid-item.
    Ended,
}

/// Reads the next chunk into `buf` (at least [`MAX_CHUNK`] long).
pub async fn read_chunk<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
) -> Result<Chunk, WireError> {
    let len = match read_len(r).await {
        Ok(Some(len)) => len,
        Ok(None) | Err(WireError::Io(_)) => return Ok(Chunk::Ended),
        Err(e) => return Err(e),
    };
    if len == 0 {
        return Ok(Chunk::Cancelled);
    }
    if len > MAX_CHUNK {
        return Err(WireError::Malformed(format!(
            "a chunk of {len} bytes exceeds the {MAX_CHUNK}-byte limit"
        )));
    }
    match r.read_exact(&mut buf[..len]).await {
        Ok(()) => Ok(Chunk::Data(len)),
        Err(_) => Ok(Chunk::Ended),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_chunks_round_trip() {
        futures::executor::block_on(async {
            let mut buf = Vec::new();
            let offer = SenderFrame::Offer(Header {
                item: Item::File {
                    path: vec!["a".into(), "b.txt".into()],
                    id: [5; 16],
                },
                size: 3,
            });
            let sent = SenderFrame::Sent { sha256: [7; 32] };
            write_frame(&mut buf, &offer).await.unwrap();
            write_chunk(&mut buf, &mut b"....abc".to_vec())
                .await
                .unwrap();
            write_frame(&mut buf, &sent).await.unwrap();
            write_cancel(&mut buf).await.unwrap();
            write_cancel(&mut buf).await.unwrap();
            let mut r = futures::io::Cursor::new(buf);
            assert_eq!(read_frame::<_, SenderFrame>(&mut r).await.unwrap(), offer);
            let mut data = vec![0; MAX_CHUNK];
            assert!(matches!(
                read_chunk(&mut r, &mut data).await.unwrap(),
                Chunk::Data(3)
            ));
            assert_eq!(&data[..3], b"abc");
            assert_eq!(read_sent(&mut r).await.unwrap(), Some([7; 32]));
            // A zero length where the SHA-256 is due cancels, as it does for a chunk.
            assert_eq!(read_sent(&mut r).await.unwrap(), None);
            assert!(matches!(
                read_chunk(&mut r, &mut data).await.unwrap(),
                Chunk::Cancelled
            ));
            assert!(matches!(
                read_chunk(&mut r, &mut data).await.unwrap(),
                Chunk::Ended
            ));
            assert!(matches!(
                read_frame::<_, SenderFrame>(&mut r).await,
                Err(WireError::Closed)
            ));
        });
    }
}
