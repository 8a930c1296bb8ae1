//! Large reads from the socket under Noise.
//!
//! libp2p-noise reads its frames through `asynchronous-codec`, which asks the socket for
//! 8 KiB at a time, whatever is waiting. A full Noise message (64 KiB) then takes eight or
//! nine `recv` calls, and a 1 GiB transfer about 130,000 of them on the receiving side,
//! each a system call and a pass through TCP's receive path. [`ReadAhead`] sits between
//! the socket and Noise: once a connection carries bulk data (a read of Noise's size
//! filled the reader's whole buffer, so more was likely waiting), it reads up to [`SIZE`]
//! bytes per `recv` and serves the small reads from that. Connections that only carry
//! small messages (pairing, presence, the DHT) never fill such a read and never get the
//! buffer: they read as before, and hold no memory for it. Its memory is bounded: one
//! buffer per connection, and the node's connections are limited (`limits.rs`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{ready, AsyncRead, AsyncWrite};

/// The most one `recv` takes once a connection reads ahead: two full Noise messages.
pub const SIZE: usize = 128 * 1024;
/// A read at least this large that comes back full marks bulk data. Smaller ones say
/// nothing: multistream-select reads a length's bytes one at a time and then exactly the
/// message, so its reads always come back full.
const BULK: usize = 4096;

/// A byte stream whose reads are served from large reads of `inner`.
#[derive(Debug)]
pub struct ReadAhead<S> {
    inner: S,
    /// Empty until the connection carries bulk data.
    buf: Vec<u8>,
    /// The bytes of `buf` read from `inner` and not yet handed out.
    start: usize,
    end: usize,
}

impl<S> ReadAhead<S> {
    /// Wraps `inner`; no buffer yet.
    pub fn new(inner: S) -> ReadAhead<S> {
        ReadAhead {
            inner,
            buf: Vec::new(),
            start: 0,
            end: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.start == this.end {
            if this.buf.is_empty() || out.len() >= this.buf.len() {
                // Nothing held: straight into the reader's buffer (no copy), which tells
                // whether the connection carries more than the reader asks for at once.
                let n = ready!(Pin::new(&mut this.inner).poll_read(cx, out))?;
                if n == out.len() && n >= BULK && this.buf.is_empty() {
                    this.buf = vec![0; SIZE];
                }
                return Poll::Ready(Ok(n));
            }
            let n = ready!(Pin::new(&mut this.inner).poll_read(cx, &mut this.buf))?;
            (this.start, this.end) = (0, n);
        }
        let n = out.len().min(this.end - this.start);
        out[..n].copy_from_slice(&this.buf[this.start..this.start + n]);
        this.start += n;
        Poll::Ready(Ok(n))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use futures::AsyncReadExt;

    use super::*;

    /// A source that hands out at most what it has, and counts how often it is read.
    struct Source {
        data: Vec<u8>,
        at: usize,
        reads: usize,
    }

    impl AsyncRead for Source {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            out: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            self.reads += 1;
            let n = out.len().min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Poll::Ready(Ok(n))
        }
    }

    fn source(len: usize) -> Source {
        Source {
            data: (0..len).map(|i| (i % 251) as u8).collect(),
            at: 0,
            reads: 0,
        }
    }

    /// Reads everything in pieces of `piece` bytes: the bytes, and how often the source
    /// was read.
    fn read_in_pieces(mut reader: ReadAhead<Source>, piece: usize) -> (Vec<u8>, usize) {
        futures::executor::block_on(async {
            let mut got = Vec::new();
            let mut buf = vec![0u8; piece];
            loop {
                let n = reader.read(&mut buf).await.unwrap();
                if n == 0 {
                    return (got, reader.inner.reads);
                }
                got.extend_from_slice(&buf[..n]);
            }
        })
    }

    #[test]
    fn bulk_data_takes_few_large_reads_and_arrives_intact() {
        let len = 1024 * 1024 + 17;
        let expected = source(len).data;
        let (got, reads) = read_in_pieces(ReadAhead::new(source(len)), 8 * 1024);
        assert_eq!(got, expected);
        // 129 reads of 8 KiB without it; one to notice, then 128 KiB at a time, then the end.
        assert_eq!(reads, 1 + (len - 8 * 1024).div_ceil(SIZE) + 1, "{reads}");
    }

    #[test]
    fn small_messages_get_no_buffer_and_large_readers_no_copy() {
        // Each read gets all there is: the buffer is never needed.
        let mut reader = ReadAhead::new(source(100));
        let (got, _) = {
            let mut buf = vec![0u8; 8 * 1024];
            let n = futures::executor::block_on(reader.read(&mut buf)).unwrap();
            (buf[..n].to_vec(), ())
        };
        assert_eq!(got.len(), 100);
        assert!(reader.buf.is_empty());

        // Nor do small reads that come back full (multistream-select's).
        let mut reader = ReadAhead::new(source(100));
        let mut byte = [0u8; 1];
        for _ in 0..10 {
            assert_eq!(
                futures::executor::block_on(reader.read(&mut byte)).unwrap(),
                1
            );
        }
        assert!(reader.buf.is_empty());

        // A reader asking for at least SIZE reads straight through, buffer or not.
        let len = 4 * SIZE;
        let (got, reads) = read_in_pieces(ReadAhead::new(source(len)), SIZE);
        assert_eq!(got, source(len).data);
        assert_eq!(reads, 4 + 1);
    }
}
