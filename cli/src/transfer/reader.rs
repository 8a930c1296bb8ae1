//! The sender's disk side of one file, on a thread of its own: it reads the bytes to send
//! into a few fixed buffers and hashes them while the stream writes the ones before, so
//! the SHA-256 that follows the bytes costs the sending no time of its own, and memory
//! stays bounded whatever the file size. On a resume it first hashes, from disk, the part
//! the receiver already holds: the hash covers the whole file. A file written to while it
//! is read fails the send (its id no longer names it), rather than arriving as a mix of
//! two versions whose hash matches only because it was taken of the mix.

use std::io::{self, Read};
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::plan;
use super::wire::{FileId, CHUNK_PREFIX, MAX_CHUNK};

/// Buffers in circulation: one being written to the stream, the others read or waiting.
const BUFFERS: usize = 3;

/// A running disk side.
pub struct Reader {
    /// Filled buffers: a chunk's bytes after [`CHUNK_PREFIX`] bytes of room.
    full: mpsc::Receiver<Vec<u8>>,
    /// Buffers the stream is done with.
    free: mpsc::Sender<Vec<u8>>,
    thread: tokio::task::JoinHandle<io::Result<[u8; 32]>>,
}

impl Reader {
    /// Reads bytes `offset..size` of the file at `path`, and hashes bytes `0..size`, of the
    /// version that `id` names.
    pub fn start(path: PathBuf, id: FileId, offset: u64, size: u64) -> Reader {
        let (full_tx, full) = mpsc::channel(BUFFERS);
        let (free, mut free_rx) = mpsc::channel::<Vec<u8>>(BUFFERS);
        for _ in 0..BUFFERS {
            let _ = free.try_send(Vec::with_capacity(CHUNK_PREFIX + MAX_CHUNK));
        }
        let thread = tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::open(&path)?;
            let mut hasher = Sha256::new();
            let mut at = 0;
            // A dropped `Reader` (the send stopped) closes both channels: the thread ends.
            let stopped = || io::Error::other("the send stopped");
            // The buffer the part the receiver holds is hashed in, over and over.
            let mut spare = None;
            while at < size {
                let mut buf = match spare.take() {
                    Some(buf) => buf,
                    None => free_rx.blocking_recv().ok_or_else(stopped)?,
                };
                let until = if at < offset { offset } else { size };
                let want = MAX_CHUNK.min((until - at) as usize);
                buf.resize(CHUNK_PREFIX + want, 0);
                let n = read_full(&mut file, &mut buf[CHUNK_PREFIX..])?;
                if n == 0 {
                    return Err(io::Error::other("it shrank while it was being sent"));
                }
                buf.truncate(CHUNK_PREFIX + n);
                hasher.update(&buf[CHUNK_PREFIX..]);
                at += n as u64;
                if at <= offset {
                    // Held by the receiver already: hashed, not sent.
                    spare = Some(buf);
                } else {
                    full_tx.blocking_send(buf).map_err(|_| stopped())?;
                }
            }
            if plan::file_id(&path, &file.metadata()?) != id {
                return Err(io::Error::other("it changed while it was being sent"));
            }
            Ok(hasher.finalize().into())
        });
        Reader { full, free, thread }
    }

    /// The next chunk, with [`CHUNK_PREFIX`] bytes of room in front; `None` once every
    /// byte was handed out, or the reading failed ([`Reader::finish`] says which).
    pub async fn next(&mut self) -> Option<Vec<u8>> {
        self.full.recv().await
    }

    /// Gives a buffer back once its chunk is written.
    pub fn recycle(&self, buf: Vec<u8>) {
        let _ = self.free.try_send(buf);
    }

    /// The SHA-256 of the whole file, or why reading it failed.
    pub async fn finish(self) -> io::Result<[u8; 32]> {
        drop(self.free);
        self.thread.await.map_err(io::Error::other)?
    }
}

/// Reads until `buf` is full or the file ends: the number of bytes read.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// Everything a reader hands out, and how it ends.
    async fn drain(mut reader: Reader) -> (Vec<u8>, io::Result<[u8; 32]>) {
        let mut got = Vec::new();
        while let Some(buf) = reader.next().await {
            got.extend_from_slice(&buf[CHUNK_PREFIX..]);
            reader.recycle(buf);
        }
        (got, reader.finish().await)
    }

    #[tokio::test]
    async fn sends_the_rest_hashes_all_and_fails_if_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        let content: Vec<u8> = (0..4_000_000u32).map(|i| (i % 249) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let id = plan::file_id(&path, &std::fs::metadata(&path).unwrap());
        let size = content.len() as u64;

        // Resuming at an offset: the chunks are the rest, the hash is of the whole file.
        let (got, sha256) = drain(Reader::start(path.clone(), id, 1_000_000, size)).await;
        assert_eq!(got, content[1_000_000..]);
        assert_eq!(sha256.unwrap(), <[u8; 32]>::from(Sha256::digest(&content)));

        // Written to while it is read (the thread waits for buffers meanwhile): it fails.
        let mut reader = Reader::start(path.clone(), id, 0, size);
        let first = reader.next().await.unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"more").unwrap();
        reader.recycle(first);
        let (_, sha256) = drain(reader).await;
        assert!(sha256.unwrap_err().to_string().contains("changed"));

        // A file shorter than planned fails too.
        std::fs::write(&path, &content[..10]).unwrap();
        let (_, sha256) = drain(Reader::start(path, id, 0, size)).await;
        assert!(sha256.unwrap_err().to_string().contains("shrank"));
    }
}
