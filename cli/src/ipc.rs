//! The CLI ↔ daemon protocol over the instance's Unix socket: length-prefixed CBOR frames,
//! each carrying the protocol version so a CLI and a daemon from different builds fail with
//! a clear message instead of misreading each other.
//!
//! The words of a code cross this socket (`Join`, `Code`). They travel in `Zeroizing`
//! strings, and every buffer a frame passes through on either side (the encoded frame, the
//! bytes read, the decoder's scratch space) is wiped when dropped, so the words do not
//! linger in freed memory of the CLI or the daemon.

use std::path::PathBuf;
use std::time::Duration;

use paircode_core::device::DeviceInfoError;
use paircode_core::{FailReason, PeerId, RejectReason};
use paircode_net::Error as NetError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

use crate::devices::FindError;
use crate::transfer::log::{Arriving, ReceivedEntry};
use crate::transfer::send::{Delivered, Progress};
use crate::transfer::TransferError;

/// 2: errors are the typed `DaemonError`.
pub const IPC_VERSION: u32 = 2;
/// Replies carry at most a device list; anything near this size is not ours.
pub const MAX_FRAME_LEN: usize = 1024 * 1024;
/// Requests carry a code, a device name, paths or a text of at most
/// [`MAX_TEXT`](crate::transfer::receive::MAX_TEXT) (`send --text`): the daemon reads no
/// more, so clients cannot make it hold megabytes each. The CLI refuses a larger request
/// itself, with an error that says why.
pub const MAX_REQUEST_LEN: usize = 16 * 1024;
/// What a frame's buffer starts with; requests are far smaller. A frame that carries the
/// words is, so its buffer is never reallocated (which would free a copy unwiped).
const INITIAL_FRAME_BUFFER: usize = 4096;
/// The CBOR decoder's scratch space for one text or byte string.
const SCRATCH_LEN: usize = 4096;
/// The longest a code may stay valid, in seconds (`generate --expires`): long enough to
/// walk to the other device, short enough that a code seen over a shoulder soon stops
/// working. The CLI checks it when parsing, the daemon again for whatever reaches its
/// socket.
pub const MAX_EXPIRES_SECS: u64 = 3600;

/// The code lifetime a `Generate` asks for: `default` if none, else `expires_secs`
/// (1 to [`MAX_EXPIRES_SECS`]).
pub fn code_lifetime(
    expires_secs: Option<u64>,
    default: Duration,
) -> Result<Duration, DaemonError> {
    match expires_secs {
        None => Ok(default),
        Some(secs @ 1..=MAX_EXPIRES_SECS) => Ok(Duration::from_secs(secs)),
        Some(secs) => Err(DaemonError::BadExpiry { secs }),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Status,
    Stop,
    /// Start a session as initiator; the connection then streams `Response::Event`s until a
    /// final one. Closing the connection cancels the session.
    Generate {
        auto_accept: bool,
        expires_secs: Option<u64>,
    },
    /// Start a session as joiner, with the words as typed (validated by the CLI already).
    /// Without `auto_accept` the connection gets an `Event::ConfirmRequested` once the
    /// other device proved the code.
    Join {
        words: Zeroizing<String>,
        auto_accept: bool,
    },
    /// The user's answer to `Event::ConfirmRequested`, on the session's connection.
    Confirm {
        accept: bool,
    },
    PairStatus,
    PairCancel,
    Devices,
    Unpair {
        who: String,
    },
    /// Send files (absolute paths) or a text to a paired device; the connection then
    /// streams `Response::Sending`, `Response::Transfer`s and a final `Response::Sent`.
    /// Closing the connection aborts (the device keeps what arrived, for a resume).
    Send {
        device: String,
        paths: Vec<PathBuf>,
        text: Option<String>,
    },
    /// On a sending connection: cancel, and have the device drop what arrived.
    SendCancel,
    Received,
    /// `Response::Done` once subscribed, then `Response::Arriving` for transfers as they
    /// arrive, until the connection closes.
    FollowReceived,
    /// Accept transfers from a device, or not.
    SetReceive {
        who: String,
        on: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Status(StatusInfo),
    Done,
    Code {
        words: Zeroizing<String>,
        expires_secs: u64,
    },
    Event(Event),
    Devices(Vec<DeviceView>),
    PairStatus(Option<SessionView>),
    Unpaired(DeviceView),
    /// A send started: to whom, how much, and what inside directories was skipped.
    Sending {
        device: DeviceView,
        items: usize,
        bytes: u64,
        skipped: Vec<PathBuf>,
    },
    Transfer(Progress),
    Sent(Vec<Delivered>),
    Received(Vec<ReceivedEntry>),
    Arriving(Arriving),
    ReceiveSet(DeviceView),
    Error(DaemonError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Searching,
    Found {
        name: String,
        peer: String,
    },
    /// `verification`: the words both screens show.
    ConfirmRequested {
        name: String,
        peer: String,
        verification: String,
    },
    /// The code could not be announced in the DHT (devices on other networks may not
    /// find it); the daemon keeps trying. Not the last event.
    NotAnnounced {
        reason: String,
    },
    Paired(DeviceView),
    Failed(DaemonError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    pub instance: String,
    pub peer_id: String,
    pub name: String,
    pub listen: Vec<String>,
    pub mdns: bool,
    pub paired_devices: usize,
    pub session: Option<SessionView>,
    pub pid: u32,
    /// The meeting points (`start --relay`) and whether each holds a reservation.
    #[serde(default)]
    pub meeting_points: Vec<crate::meeting_points::MeetingPointView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    pub role: String,
    pub stage: String,
    /// Seconds until the code expires (initiator only).
    pub expires_in_secs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceView {
    pub name: String,
    pub peer_id: String,
    /// Unix seconds.
    pub paired_at: u64,
    pub online: bool,
    /// Unix seconds, if ever seen after pairing.
    pub last_seen: Option<u64>,
    /// `direct`, `relayed` (through a meeting point), or null while offline.
    #[serde(default)]
    pub connection: Option<crate::meeting_points::Connection>,
    /// Transfers from it are accepted (`network receive`).
    #[serde(default = "crate::devices::yes")]
    pub receive: bool,
}

/// An error the daemon reports. Typed end to end: the CLI derives its message, its `kind`
/// and its exit code from the variant (see `CliError::exit_code`), never from text.
///
/// Adjacently tagged, so every error travels as `{kind, detail}` with a stable snake_case
/// `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum DaemonError {
    /// The pairing ended without a paired device; the wording is the core's.
    #[error(transparent)]
    Pairing {
        #[serde(with = "FailReasonDef")]
        reason: FailReason,
    },
    #[error("{}", NetError::Busy)]
    Busy,
    #[error("{}", NetError::NodeStopped)]
    NodeStopped,
    /// The node's transport failed; its own description, as the node gave it.
    #[error("transport: {0}")]
    Transport(String),
    #[error("{}", NetError::InvalidName(.name.clone()))]
    InvalidName {
        #[serde(with = "DeviceInfoErrorDef")]
        name: DeviceInfoError,
    },
    #[error("no pairing session is running")]
    NoSession,
    #[error(transparent)]
    UnknownDevice(#[from] FindError),
    /// A device record in the list holds no valid peer id.
    #[error("the stored record of {name:?} has an invalid peer id")]
    InvalidStoredPeer { name: String },
    /// The device list could not be saved: nothing changed on disk, and in memory neither.
    #[error("{what}, but {} could not be saved: {cause}; nothing was changed. Free some space or fix the file's permissions, then try again", .path.display())]
    Save {
        what: SaveContext,
        path: PathBuf,
        /// The operating system's reason.
        cause: String,
    },
    /// The CLI sent a frame the daemon could not read (another build, or not paircode).
    #[error("the daemon could not read the request: {0}")]
    BadRequest(String),
    #[error("the code sent to the daemon is not valid: {0}")]
    BadCode(String),
    #[error("a confirmation belongs to the connection that generated the code")]
    ConfirmWithoutSession,
    /// A `Generate` asked for a code lifetime outside 1 to [`MAX_EXPIRES_SECS`] seconds.
    #[error(
        "a code lifetime of {secs} s was asked for: it must be 1 to {MAX_EXPIRES_SECS} seconds"
    )]
    BadExpiry { secs: u64 },
    #[error(transparent)]
    Transfer(#[from] TransferError),
}

/// What the daemon was doing when saving failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SaveContext {
    /// A pairing was agreed on the wire; the initiator has not acknowledged it yet, or (on
    /// the joiner) it forgets it when the two devices next meet.
    Paired,
    Unpaired,
    Receive,
}

impl std::fmt::Display for SaveContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SaveContext::Paired => "the pairing was agreed",
            SaveContext::Unpaired => "the device was to be unpaired",
            SaveContext::Receive => "receiving from the device was to be switched",
        })
    }
}

/// Every node error has its daemon error; no catch-all, so a new one must be placed here.
impl From<NetError> for DaemonError {
    fn from(e: NetError) -> Self {
        match e {
            NetError::Pairing(reason) => DaemonError::Pairing { reason },
            NetError::Busy => DaemonError::Busy,
            NetError::NodeStopped => DaemonError::NodeStopped,
            NetError::Transport(e) => DaemonError::Transport(e.to_string()),
            NetError::InvalidName(name) => DaemonError::InvalidName { name },
        }
    }
}

/// The core's `FailReason` on the socket, field for field (serde's remote derive matches
/// every variant, so a new reason fails to compile until it is carried here).
#[derive(Serialize, Deserialize)]
#[serde(remote = "FailReason", rename_all = "snake_case")]
enum FailReasonDef {
    CodeExpired,
    NoDeviceAnswered,
    Rejected {
        #[serde(with = "peer_bytes")]
        peer: PeerId,
        reason: RejectReason,
    },
    Declined {
        #[serde(with = "peer_bytes")]
        peer: PeerId,
    },
    NoAnswer {
        #[serde(with = "peer_bytes")]
        peer: PeerId,
    },
    Cancelled,
    ConfirmTimeout {
        #[serde(with = "peer_bytes")]
        peer: PeerId,
    },
    NotStored {
        #[serde(with = "peer_bytes")]
        peer: PeerId,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "DeviceInfoError", rename_all = "snake_case")]
enum DeviceInfoErrorDef {
    EmptyName,
    NameTooLong(usize),
    ControlCharacters,
    Invisible(char),
    Whitespace(char),
    EdgeSpace,
}

mod peer_bytes {
    use paircode_core::PeerId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(peer: &PeerId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(peer.as_bytes())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PeerId, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(d)?;
        PeerId::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("the daemon speaks IPC version {0}, this paircode speaks {IPC_VERSION}: restart the daemon with this build")]
    Version(u32),
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    v: u32,
    body: &'a T,
}

#[derive(Deserialize)]
struct EnvelopeIn<T> {
    v: u32,
    body: T,
}

/// Only the version, for a frame whose body did not decode: another build's, or damaged.
#[derive(Deserialize)]
struct VersionOnly {
    v: u32,
}

/// How many bytes `value` takes as a frame body, to refuse a request the daemon would not
/// read before sending it.
pub fn encoded_len<T: Serialize>(value: &T) -> usize {
    let mut buf = Vec::new();
    match ciborium::into_writer(
        &EnvelopeOut {
            v: IPC_VERSION,
            body: value,
        },
        &mut buf,
    ) {
        Ok(()) => buf.len(),
        Err(_) => usize::MAX,
    }
}

pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    value: &T,
) -> Result<(), FrameError> {
    // The length goes in front of the body in one write: written apart, each went out on
    // the socket by itself and woke the reader once more.
    let mut buf = Zeroizing::new(Vec::with_capacity(INITIAL_FRAME_BUFFER));
    buf.extend_from_slice(&[0; 4]);
    ciborium::into_writer(
        &EnvelopeOut {
            v: IPC_VERSION,
            body: value,
        },
        &mut *buf,
    )
    .map_err(|e| FrameError::Malformed(e.to_string()))?;
    let len = buf.len() - 4;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

pub async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
) -> Result<T, FrameError> {
    read_frame_up_to(r, MAX_FRAME_LEN).await
}

/// Like [`read_frame`], refusing frames longer than `max` (at most [`MAX_FRAME_LEN`]).
pub async fn read_frame_up_to<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
    max: usize,
) -> Result<T, FrameError> {
    let max = max.min(MAX_FRAME_LEN);
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    // The announced length is only a claim: memory grows with the bytes that arrive, so a
    // client announcing a megabyte and sending nothing costs nothing.
    let mut buf = Zeroizing::new(Vec::with_capacity(len.min(INITIAL_FRAME_BUFFER)));
    r.take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() < len {
        return Err(FrameError::Closed);
    }
    decode_frame(&buf)
}

/// The body of a frame, decoded straight into `T` (no intermediate `Value` holding copies
/// of its strings) through a scratch buffer that is wiped afterwards.
fn decode_frame<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    let mut scratch = Zeroizing::new([0u8; SCRATCH_LEN]);
    match ciborium::de::from_reader_with_buffer::<EnvelopeIn<T>, _>(bytes, &mut *scratch) {
        Ok(envelope) if envelope.v == IPC_VERSION => Ok(envelope.body),
        Ok(envelope) => Err(FrameError::Version(envelope.v)),
        // Another version's body need not fit this one's types: say which version it was.
        Err(e) => match ciborium::de::from_reader::<VersionOnly, _>(bytes) {
            Ok(VersionOnly { v }) if v != IPC_VERSION => Err(FrameError::Version(v)),
            _ => Err(FrameError::Malformed(e.to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `body` as one frame in an envelope of version `v`, as a program speaking
    /// that version would.
    async fn write_envelope<T: Serialize>(w: &mut (impl AsyncWrite + Unpin), v: u32, body: &T) {
        let mut buf = Vec::new();
        ciborium::into_writer(&EnvelopeOut { v, body }, &mut buf).unwrap();
        w.write_all(&(buf.len() as u32).to_be_bytes())
            .await
            .unwrap();
        w.write_all(&buf).await.unwrap();
    }

    #[tokio::test]
    async fn frames_round_trip() {
        let (mut a, mut b) = tokio::io::duplex(4096);
        let request = Request::Generate {
            auto_accept: true,
            expires_secs: Some(60),
        };
        write_frame(&mut a, &request).await.unwrap();
        assert_eq!(read_frame::<_, Request>(&mut b).await.unwrap(), request);
        drop(a);
        assert!(matches!(
            read_frame::<_, Request>(&mut b).await,
            Err(FrameError::Closed)
        ));
    }

    #[tokio::test]
    async fn typed_errors_cross_the_socket_intact() {
        let peer = PeerId::from_bytes(&[0, 36, 8, 1, 18, 32, 7, 7, 7]).unwrap();
        let errors = [
            DaemonError::Pairing {
                reason: FailReason::Rejected {
                    peer: peer.clone(),
                    reason: RejectReason::UserRejected,
                },
            },
            DaemonError::Pairing {
                reason: FailReason::ConfirmTimeout { peer },
            },
            DaemonError::InvalidName {
                name: DeviceInfoError::NameTooLong(300),
            },
            DaemonError::UnknownDevice(FindError::Ambiguous("tv".into(), 2)),
            DaemonError::Save {
                what: SaveContext::Unpaired,
                path: "/x/devices".into(),
                cause: "No space left on device (os error 28)".into(),
            },
        ];
        for error in errors {
            let (mut a, mut b) = tokio::io::duplex(4096);
            let response = Response::Event(Event::Failed(error.clone()));
            write_frame(&mut a, &response).await.unwrap();
            assert_eq!(read_frame::<_, Response>(&mut b).await.unwrap(), response);
        }
        // The core's words, not a copy of them.
        let reason = FailReason::CodeExpired;
        assert_eq!(
            DaemonError::Pairing {
                reason: reason.clone()
            }
            .to_string(),
            reason.to_string()
        );
    }

    /// The words travel in `Zeroizing` strings, and their frames fit the first buffer (so
    /// no reallocation leaves an unwiped copy behind).
    #[tokio::test]
    async fn the_words_of_a_code_travel_in_wiped_buffers() {
        let words = paircode_core::Code::from_entropy([0xff; 16]).words();
        let join = Request::Join {
            words: words.clone(),
            auto_accept: false,
        };
        let code = Response::Code {
            words: words.clone(),
            expires_secs: 3600,
        };
        assert!(encoded_len(&join) + 4 < INITIAL_FRAME_BUFFER);
        assert!(encoded_len(&code) + 4 < INITIAL_FRAME_BUFFER);
        assert!(words.len() < SCRATCH_LEN);
        let (mut a, mut b) = tokio::io::duplex(4096);
        write_frame(&mut a, &join).await.unwrap();
        match read_frame::<_, Request>(&mut b).await.unwrap() {
            Request::Join { words: got, .. } => assert_eq!(*got, *words),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn another_versions_body_is_reported_as_that_version() {
        let (mut a, mut b) = tokio::io::duplex(4096);
        write_envelope(&mut a, 1, &("a body this version has no type for", 7u8)).await;
        assert!(matches!(
            read_frame::<_, Request>(&mut b).await,
            Err(FrameError::Version(1))
        ));
    }

    #[tokio::test]
    async fn a_frame_buffer_grows_with_the_bytes_that_arrive() {
        let (mut a, mut b) = tokio::io::duplex(4096);
        // Announces the largest frame allowed, sends ten bytes and hangs up.
        a.write_all(&(MAX_FRAME_LEN as u32).to_be_bytes())
            .await
            .unwrap();
        a.write_all(&[0u8; 10]).await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame::<_, Request>(&mut b).await,
            Err(FrameError::Closed)
        ));
    }

    #[tokio::test]
    async fn requests_have_their_own_smaller_limit() {
        let (mut a, mut b) = tokio::io::duplex(4096);
        a.write_all(&(MAX_REQUEST_LEN as u32 + 1).to_be_bytes())
            .await
            .unwrap();
        assert!(matches!(
            read_frame_up_to::<_, Request>(&mut b, MAX_REQUEST_LEN).await,
            Err(FrameError::TooLarge { len, max: MAX_REQUEST_LEN }) if len == MAX_REQUEST_LEN + 1
        ));
    }

    #[tokio::test]
    async fn oversized_and_foreign_frames_are_refused() {
        let (mut a, mut b) = tokio::io::duplex(4096);
        a.write_all(&(u32::MAX).to_be_bytes()).await.unwrap();
        assert!(matches!(
            read_frame::<_, Request>(&mut b).await,
            Err(FrameError::TooLarge { .. })
        ));

        let (mut a, mut b) = tokio::io::duplex(4096);
        write_envelope(&mut a, 99, &Request::Status).await;
        assert!(matches!(
            read_frame::<_, Request>(&mut b).await,
            Err(FrameError::Version(99))
        ));
    }
}
