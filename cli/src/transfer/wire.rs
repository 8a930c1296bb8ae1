//! The frames of `/paircode-send/1`. Control frames are a 4-byte big-endian length and a
//! CBOR value; an item's bytes travel as chunks, each a 4-byte length and that many raw
//! bytes, where a zero length means the sender cancelled. One stream carries any number
//! of items, one after the other:
//!
//! ```text
//! sender                              receiver
//! Offer(header)            ─────────▶
//!                          ◀───────── Ready { offset } | Refused(why)
//! chunks from offset       ─────────▶
//!                          ◀───────── Stored { name } | Refused(why)
//! … more offers …
//! End                      ─────────▶
//! ```

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::Refusal;

/// Control frames are small: a header names at most a few KiB of path.
pub const MAX_FRAME: usize = 64 * 1024;
/// The largest chunk a sender may write, and the receiver's one buffer.
pub const MAX_CHUNK: usize = 256 * 1024;

/// One item: what it is, its size and the SHA-256 of all its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub item: Item,
    pub size: u64,
    #[serde(with = "serde_bytes")]
    pub sha256: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Item {
    /// A file, by its path relative to what was sent: `["photos", "2024", "a.jpg"]`.
    File { path: Vec<String> },
    /// A text, kept in the receiver's log rather than as a file.
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderFrame {
    Offer(Header),
    /// No more items.
    End,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiverFrame {
    /// Send the bytes from `offset` on: what it already holds of this very item (same
    /// sender, size and SHA-256) from an interrupted transfer.
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

/// A length prefix, or `None` at a clean end of the stream.
async fn read_len<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<usize>, WireError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(()) => Ok(Some(u32::from_be_bytes(len) as usize)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One chunk of an item's bytes (`data` is never empty: an empty chunk means cancel).
pub async fn write_chunk<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8]) -> std::io::Result<()> {
    debug_assert!(!data.is_empty() && data.len() <= MAX_CHUNK);
    w.write_all(&(data.len() as u32).to_be_bytes()).await?;
    w.write_all(data).await
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
                },
                size: 3,
                sha256: [7; 32],
            });
            write_frame(&mut buf, &offer).await.unwrap();
            write_chunk(&mut buf, b"abc").await.unwrap();
            write_cancel(&mut buf).await.unwrap();
            let mut r = futures::io::Cursor::new(buf);
            assert_eq!(read_frame::<_, SenderFrame>(&mut r).await.unwrap(), offer);
            let mut data = vec![0; MAX_CHUNK];
            assert!(matches!(
                read_chunk(&mut r, &mut data).await.unwrap(),
                Chunk::Data(3)
            ));
            assert_eq!(&data[..3], b"abc");
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
