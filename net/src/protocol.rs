//! `/paircode/pair/1` (and `/paircode/device/1`): how the core's messages travel between
//! two connected peers.
//!
//! Request-response with a length-capped codec rather than a hand-rolled stream protocol:
//! libp2p then owns stream lifetimes, timeouts and back-pressure, and each core message is
//! small and self-contained. The core's exchange is not strictly request/response (an
//! initiator may send `Done{Busy}` or a late `Done{Accepted}` unprompted), so every core
//! message is a request, and a response carries at most one more core message: the reply
//! the core produced while handling that request (or, for a `Prove`, the `Done` that
//! follows the initiator's store: see `driver::held`), or nothing (an empty response). For
//! the honest path this means Join→Challenge and Prove→Done each use a single stream.
//!
//! Framing is a 4-byte big-endian length followed by the bytes, and the length is checked
//! against [`MAX_MESSAGE_LEN`] before anything is allocated, so a peer cannot make us
//! buffer more than one honest message's worth of data.

use std::io;

use async_trait::async_trait;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use paircode_core::MAX_MESSAGE_LEN;

/// The pairing protocol: requests and responses are `paircode_core` messages.
pub const PAIR_PROTOCOL: StreamProtocol = StreamProtocol::new("/paircode/pair/1");

/// Kademlia under paircode's own protocol name, so paircode's DHT stays separate from
/// IPFS's; provider keys are [`dht_key`]s. A meeting point must serve it.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/paircode/kad/1.0.0");

/// Multicodec of sha2-256 in a multihash.
const SHA2_256: u64 = 0x12;

/// The DHT key under which `preimage` is announced: its sha2-256 multihash,
/// `0x12 0x20 ‖ SHA-256(preimage)` (34 bytes). DHT servers of other libp2p implementations
/// accept only multihashes as provider keys (go-libp2p-kad-dht rejects anything else), so
/// a third-party meeting point stores and answers these. Pairing sessions are announced
/// under `dht_key(discovery_id)`, paired devices meet under
/// `dht_key("paircode rendezvous v1" ‖ secret ‖ epoch)`.
pub fn dht_key(preimage: &[u8]) -> libp2p::kad::RecordKey {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(preimage);
    let hash = libp2p::multihash::Multihash::<32>::wrap(SHA2_256, &digest)
        .expect("a 32-byte digest fits a 32-byte multihash");
    libp2p::kad::RecordKey::from(hash)
}

/// The protocol-version string paircode nodes send in identify (`/ipfs/id/1.0.0`).
pub const IDENTIFY_PROTOCOL: &str = "/paircode/id/1.0.0";

/// What paired devices say to each other once paired (`paircode_core::DeviceMessage`),
/// with the same framing; the response is always empty.
pub const DEVICE_PROTOCOL: StreamProtocol = StreamProtocol::new("/paircode/device/1");

/// Codec of `/paircode/pair/1`. Requests and responses are raw core messages; an empty
/// response means "no reply".
#[derive(Debug, Clone, Copy, Default)]
pub struct PairCodec;

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes exceeds the {MAX_MESSAGE_LEN}-byte limit"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "refusing to send {} bytes (limit {MAX_MESSAGE_LEN})",
                bytes.len()
            ),
        ));
    }
    let len = u32::try_from(bytes.len()).expect("bounded by MAX_MESSAGE_LEN");
    // One write, so the length and the message travel in one yamux frame.
    let mut frame = Vec::with_capacity(4 + bytes.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(bytes);
    io.write_all(&frame).await?;
    io.flush().await
}

#[async_trait]
impl libp2p::request_response::Codec for PairCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use libp2p::request_response::Codec;

    #[test]
    fn frames_round_trip() {
        block_on(async {
            let mut out = Cursor::new(Vec::new());
            PairCodec
                .write_request(&PAIR_PROTOCOL, &mut out, b"hello".to_vec())
                .await
                .unwrap();
            let mut input = Cursor::new(out.into_inner());
            let got = PairCodec.read_request(&PAIR_PROTOCOL, &mut input).await;
            assert_eq!(got.unwrap(), b"hello");
        });
    }

    #[test]
    fn oversized_frames_are_refused_before_reading_the_body() {
        block_on(async {
            let mut frame = u32::try_from(MAX_MESSAGE_LEN + 1)
                .unwrap()
                .to_be_bytes()
                .to_vec();
            frame.extend_from_slice(&[0; 8]);
            let err = PairCodec
                .read_request(&PAIR_PROTOCOL, &mut Cursor::new(frame))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            let mut sink = Cursor::new(Vec::new());
            let err = PairCodec
                .write_response(&PAIR_PROTOCOL, &mut sink, vec![0; MAX_MESSAGE_LEN + 1])
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(sink.into_inner().is_empty());
        });
    }
}

#[cfg(test)]
mod dht_key_tests {
    use super::*;

    #[test]
    fn dht_keys_are_sha2_256_multihashes() {
        use sha2::{Digest, Sha256};
        let key = dht_key(b"discovery id");
        let bytes = key.as_ref();
        assert_eq!(bytes.len(), 34);
        assert_eq!(&bytes[..2], &[0x12, 0x20]);
        assert_eq!(&bytes[2..], Sha256::digest(b"discovery id").as_slice());
        // What other implementations parse it as.
        let parsed = libp2p::multihash::Multihash::<64>::from_bytes(bytes).unwrap();
        assert_eq!((parsed.code(), parsed.size()), (0x12, 32));
    }
}
