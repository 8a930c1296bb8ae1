//! The receiver's disk side of one file, on a thread of its own: it writes each chunk,
//! hashes it and hands finished windows to the disk ([`Writeback`]) while the stream's
//! next chunks are read, instead of the reading waiting for each write and hash in turn.
//! A few fixed buffers go round between the two sides, so memory stays bounded whatever
//! the file size.

use std::io::{self, Write};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::wire::MAX_CHUNK;
use super::writeback::Writeback;

/// Buffers in circulation: one being read into, the others written or waiting.
const BUFFERS: usize = 3;

/// A running disk side.
pub struct Sink {
    /// Filled buffers and how many of their bytes count.
    full: Option<mpsc::Sender<(Vec<u8>, usize)>>,
    /// Buffers the thread is done with.
    free: mpsc::Receiver<Vec<u8>>,
    thread: Option<tokio::task::JoinHandle<io::Result<Written>>>,
}

/// What the thread leaves: the file with every byte handed to it written, and the hash
/// of all of them.
pub struct Written {
    pub file: std::fs::File,
    pub hasher: Sha256,
}

impl Sink {
    /// Appends to `file`, whose first `held` bytes `hasher` has already seen.
    pub fn start(file: std::fs::File, hasher: Sha256, held: u64) -> Sink {
        let (full_tx, mut full) = mpsc::channel::<(Vec<u8>, usize)>(BUFFERS);
        let (free_tx, free) = mpsc::channel(BUFFERS);
        for _ in 0..BUFFERS {
            let _ = free_tx.try_send(vec![0u8; MAX_CHUNK]);
        }
        let thread = tokio::task::spawn_blocking(move || {
            let mut written = Written { file, hasher };
            let mut writeback = Writeback::new(held);
            let mut at = held;
            while let Some((buf, n)) = full.blocking_recv() {
                written.file.write_all(&buf[..n])?;
                written.hasher.update(&buf[..n]);
                at += n as u64;
                writeback.advance(&written.file, at)?;
                // The other side may have finished already: then the buffer just goes.
                let _ = free_tx.blocking_send(buf);
            }
            Ok(written)
        });
        Sink {
            full: Some(full_tx),
            free,
            thread: Some(thread),
        }
    }

    /// A buffer to read the next chunk into; `None` once the thread stopped (a write
    /// failed: [`Sink::finish`] says why).
    pub async fn buffer(&mut self) -> Option<Vec<u8>> {
        self.free.recv().await
    }

    /// Hands over the first `n` bytes of `buf`; `false` once the thread stopped.
    pub async fn write(&mut self, buf: Vec<u8>, n: usize) -> bool {
        match &self.full {
            Some(full) => full.send((buf, n)).await.is_ok(),
            None => false,
        }
    }

    /// Waits until everything handed over is written: the file and the hash, or the
    /// first write's error.
    pub async fn finish(mut self) -> io::Result<Written> {
        self.full = None;
        match self.thread.take() {
            Some(thread) => thread.await.map_err(io::Error::other)?,
            None => Err(io::Error::other("the disk side already finished")),
        }
    }
}
