//! Wire messages of `/paircode/pair/1` (`docs/PROTOCOL.md`): versioned CBOR with a hard size cap.
//!
//! Decoding happens in two steps, envelope first, so that a peer speaking a newer version
//! gets a clear `unsupported version` answer instead of a generic parse error.

use serde::{Deserialize, Serialize};

use crate::device::DeviceInfo;
use crate::keys::{DiscoveryId, KEY_LEN};

/// The version every message's envelope carries (`v`).
pub const PROTOCOL_VERSION: u8 = 3;
/// No message is decoded above this size; honest messages are a few hundred bytes.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// A fresh random value. The joiner's names its attempt: the initiator's verdict repeats
/// it, so a verdict can never be taken for the answer to another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Nonce(#[serde(with = "serde_bytes")] pub [u8; KEY_LEN]);

/// An HMAC-SHA256 over the transcript, keyed with the code: a proof that its sender knows
/// the code (see `docs/PROTOCOL.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Mac(#[serde(with = "serde_bytes")] pub [u8; KEY_LEN]);

/// An X25519 public key, fresh for each attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EphemeralKey(#[serde(with = "serde_bytes")] pub [u8; KEY_LEN]);

macro_rules! bytes_newtype {
    ($($name:ident),*) => {$(
        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }
    )*};
}
bytes_newtype!(Nonce, Mac, EphemeralKey);

/// One message of the handshake: joiner → `Join`, initiator → `Challenge`,
/// joiner → `Prove`, initiator → `Done`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A joiner asks for the session.
    Join(Join),
    /// The initiator proves it knows the code.
    Challenge(Challenge),
    /// The joiner proves it knows the code.
    Prove(Prove),
    /// The initiator's verdict.
    Done(Done),
}

/// The joiner's opening message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    /// The session asked for.
    pub discovery_id: DiscoveryId,
    /// Names this attempt.
    pub nonce: Nonce,
    /// The joiner's ephemeral key for this attempt.
    pub eph: EphemeralKey,
    /// What the joiner shows of itself.
    pub info: DeviceInfo,
}

/// The initiator's answer to a `Join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The initiator's contribution to the transcript.
    pub nonce: Nonce,
    /// The initiator's ephemeral key for this attempt.
    pub eph: EphemeralKey,
    /// What the initiator shows of itself.
    pub info: DeviceInfo,
    /// `mac_i`: the initiator's proof of the code.
    pub mac: Mac,
}

/// The joiner's proof. It repeats its `Join`'s fields (all but the discovery id, which
/// the initiator knows) because the initiator keeps nothing per attempt: it re-derives
/// its Challenge from them (`docs/PROTOCOL.md`, "Stateless challenge"). `nonce` also
/// names the attempt for the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prove {
    /// The attempt's nonce, from `Join`.
    pub nonce: Nonce,
    /// The joiner's ephemeral key, from `Join`.
    pub eph: EphemeralKey,
    /// What the joiner shows of itself, from `Join`.
    pub info: DeviceInfo,
    /// `mac_j`: the joiner's proof of the code.
    pub mac: Mac,
}

impl Prove {
    /// The `Join` this proof answers for, as the initiator of `discovery_id` received it.
    pub fn join(&self, discovery_id: DiscoveryId) -> Join {
        Join {
            discovery_id,
            nonce: self.nonce,
            eph: self.eph,
            info: self.info.clone(),
        }
    }
}

/// The initiator's verdict on one attempt. `attempt_nonce` is the joiner nonce of the
/// attempt it concerns ([`UNATTRIBUTED`] when the message it answers could not be read),
/// so a delayed or duplicated verdict can never be taken for the answer to a later attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// The attempt this verdict is about; named `re` on the wire.
    #[serde(rename = "re")]
    pub attempt_nonce: Nonce,
    /// Paired, or why not.
    pub outcome: Outcome,
    /// `mac_x`: proof that the sender knows the code, on a `Rejected(Expired)` sent to a
    /// joiner that has not verified the sender yet (`None` on every other verdict). Without
    /// it nobody could tell a real "expired" from a bystander's lie.
    pub proof: Option<Mac>,
}

/// What a verdict says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Paired.
    Accepted,
    /// Not paired, for this reason.
    Rejected(RejectReason),
}

/// The `attempt_nonce` of a verdict on a message that could not be attributed to any
/// attempt.
pub const UNATTRIBUTED: Nonce = Nonce([0; KEY_LEN]);

impl Done {
    /// Attempt `attempt_nonce` succeeded: the two devices are paired.
    pub fn accepted(attempt_nonce: Nonce) -> Self {
        Done {
            attempt_nonce,
            outcome: Outcome::Accepted,
            proof: None,
        }
    }

    /// Attempt `attempt_nonce` failed, for `reason`.
    pub fn rejected(attempt_nonce: Nonce, reason: RejectReason) -> Self {
        Done {
            attempt_nonce,
            outcome: Outcome::Rejected(reason),
            proof: None,
        }
    }

    /// The code has expired, said by a device that proves it held the code with `proof`
    /// (`CodeKeys::expired_mac`).
    pub fn expired(attempt_nonce: Nonce, proof: Mac) -> Self {
        Done {
            attempt_nonce,
            outcome: Outcome::Rejected(RejectReason::Expired),
            proof: Some(proof),
        }
    }
}

/// Why an initiator turned an attempt down. Sent to the joiner, so it can tell its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RejectReason {
    /// No session for this code (or the attempt is unknown): try again later.
    #[error("this device has no pairing session for that code")]
    NoSession,
    /// Another joiner holds the session.
    #[error("the device is busy with another joiner")]
    Busy,
    /// The initiator's user said no.
    #[error("the other user declined the pairing")]
    UserRejected,
    /// The joiner's MAC was wrong.
    #[error("the proof of the code did not verify")]
    BadProof,
    /// The code's lifetime is over.
    #[error("the code has expired")]
    Expired,
    /// This peer failed too often and is blocked for a while.
    #[error("too many failed attempts from this device; try again later")]
    RateLimited,
    /// The message's envelope names another protocol version.
    #[error("unsupported protocol version")]
    UnsupportedVersion,
    /// The message could not be read.
    #[error("malformed message")]
    Malformed,
    /// The initiator's user cancelled.
    #[error("the other side cancelled the pairing")]
    Cancelled,
    /// The initiator's user did not answer in time.
    #[error("the other user did not answer in time")]
    Timeout,
    /// The initiator could not save the pairing, so it does not hold it (since v3).
    #[error("the other device could not save the pairing")]
    NotStored,
}

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Longer than [`MAX_MESSAGE_LEN`]; not even looked at.
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The length received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A well-formed envelope of another protocol version (this one).
    #[error("unsupported protocol version {0} (this build speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion(u64),
    /// Not a valid message of this version; says what is wrong.
    #[error("malformed message: {0}")]
    Malformed(String),
}

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    v: u8,
    m: Body<'a>,
}

#[derive(Deserialize)]
struct EnvelopeIn {
    v: u64,
    m: ciborium::Value,
}

#[derive(Serialize)]
enum Body<'a> {
    Join(&'a Join),
    Challenge(&'a Challenge),
    Prove(&'a Prove),
    Done(&'a Done),
}

#[derive(Deserialize)]
enum OwnedBody {
    Join(Join),
    Challenge(Challenge),
    Prove(Prove),
    Done(Done),
}

impl Message {
    /// The message in its envelope, as CBOR.
    pub fn encode(&self) -> Vec<u8> {
        let m = match self {
            Message::Join(x) => Body::Join(x),
            Message::Challenge(x) => Body::Challenge(x),
            Message::Prove(x) => Body::Prove(x),
            Message::Done(x) => Body::Done(x),
        };
        let mut out = Vec::with_capacity(256);
        ciborium::into_writer(
            &EnvelopeOut {
                v: PROTOCOL_VERSION,
                m,
            },
            &mut out,
        )
        .expect("writing CBOR to a Vec cannot fail");
        out
    }

    /// Reads one message: size first, then the envelope's version, then the body.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_MESSAGE_LEN,
            });
        }
        let mut reader = bytes;
        let envelope: EnvelopeIn = ciborium::from_reader(&mut reader)
            .map_err(|e| DecodeError::Malformed(e.to_string()))?;
        // One encoding per message: bytes after the value would make it non-canonical.
        if !reader.is_empty() {
            return Err(DecodeError::Malformed(format!(
                "{} trailing bytes after the message",
                reader.len()
            )));
        }
        if envelope.v != u64::from(PROTOCOL_VERSION) {
            return Err(DecodeError::UnsupportedVersion(envelope.v));
        }
        let body: OwnedBody = envelope
            .m
            .deserialized()
            .map_err(|e| DecodeError::Malformed(e.to_string()))?;
        let message = match body {
            OwnedBody::Join(x) => Message::Join(x),
            OwnedBody::Challenge(x) => Message::Challenge(x),
            OwnedBody::Prove(x) => Message::Prove(x),
            OwnedBody::Done(x) => Message::Done(x),
        };
        message.validate()?;
        Ok(message)
    }

    fn validate(&self) -> Result<(), DecodeError> {
        let info = match self {
            Message::Join(j) => &j.info,
            Message::Challenge(c) => &c.info,
            Message::Prove(p) => &p.info,
            Message::Done(_) => return Ok(()),
        };
        info.validate()
            .map_err(|e| DecodeError::Malformed(e.to_string()))
    }

    /// The message's name, for logs and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Join(_) => "Join",
            Message::Challenge(_) => "Challenge",
            Message::Prove(_) => "Prove",
            Message::Done(_) => "Done",
        }
    }
}

/// What a device with no pairing session answers to incoming bytes: a `Join` gets
/// `Done{NoSession}` so the joiner moves on at once; nothing else is answered, so two
/// devices can never bounce rejections at each other.
pub fn reply_without_session(bytes: &[u8]) -> Option<Vec<u8>> {
    let done = match Message::decode(bytes) {
        Ok(Message::Join(join)) => Done::rejected(join.nonce, RejectReason::NoSession),
        Err(DecodeError::UnsupportedVersion(_)) => {
            Done::rejected(UNATTRIBUTED, RejectReason::UnsupportedVersion)
        }
        _ => return None,
    };
    Some(Message::Done(done).encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join() -> Join {
        Join {
            discovery_id: DiscoveryId([1; 32]),
            nonce: Nonce([2; 32]),
            eph: EphemeralKey([3; 32]),
            info: DeviceInfo::new("bob's phone").unwrap(),
        }
    }

    fn prove() -> Prove {
        Prove {
            nonce: Nonce([2; 32]),
            eph: EphemeralKey([3; 32]),
            info: DeviceInfo::new("bob's phone").unwrap(),
            mac: Mac([7; 32]),
        }
    }

    #[test]
    fn round_trip_every_message() {
        let messages = [
            Message::Join(join()),
            Message::Challenge(Challenge {
                nonce: Nonce([4; 32]),
                eph: EphemeralKey([5; 32]),
                info: DeviceInfo::new("alice").unwrap(),
                mac: Mac([6; 32]),
            }),
            Message::Prove(prove()),
            Message::Done(Done::accepted(Nonce([2; 32]))),
            Message::Done(Done::expired(Nonce([2; 32]), Mac([8; 32]))),
            Message::Done(Done::rejected(Nonce([2; 32]), RejectReason::UserRejected)),
        ];
        for m in messages {
            let bytes = m.encode();
            assert!(bytes.len() < 300, "{} is {} bytes", m.kind(), bytes.len());
            assert_eq!(Message::decode(&bytes).unwrap(), m);
        }
    }

    #[test]
    fn oversized_is_refused_before_decoding() {
        let bytes = vec![0u8; MAX_MESSAGE_LEN + 1];
        assert_eq!(
            Message::decode(&bytes),
            Err(DecodeError::TooLarge {
                len: MAX_MESSAGE_LEN + 1,
                max: MAX_MESSAGE_LEN
            })
        );
    }

    #[test]
    fn unknown_version_is_explicit() {
        #[derive(Serialize)]
        struct Future {
            v: u8,
            m: String,
        }
        let mut bytes = Vec::new();
        ciborium::into_writer(
            &Future {
                v: PROTOCOL_VERSION + 1,
                m: "hello".into(),
            },
            &mut bytes,
        )
        .unwrap();
        assert_eq!(
            Message::decode(&bytes),
            Err(DecodeError::UnsupportedVersion(
                u64::from(PROTOCOL_VERSION) + 1
            ))
        );
        let reply = reply_without_session(&bytes).unwrap();
        assert_eq!(
            Message::decode(&reply).unwrap(),
            Message::Done(Done::rejected(
                UNATTRIBUTED,
                RejectReason::UnsupportedVersion
            ))
        );
    }

    #[test]
    fn malformed_inputs() {
        assert!(matches!(
            Message::decode(&[]),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            Message::decode(&[0xff, 0x00]),
            Err(DecodeError::Malformed(_))
        ));
        // A valid envelope around a body with a short key.
        let mut bad = Message::Prove(prove()).encode();
        let len = bad.len();
        bad.truncate(len - 1);
        assert!(matches!(
            Message::decode(&bad),
            Err(DecodeError::Malformed(_))
        ));
        // A device name with terminal escapes is refused.
        let mut j = join();
        j.info.name = "\x1b[2J".into();
        assert!(matches!(
            Message::decode(&Message::Join(j).encode()),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = Message::Prove(prove()).encode();
        bytes.push(0);
        assert!(matches!(
            Message::decode(&bytes),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn only_join_gets_a_sessionless_reply() {
        let reply = reply_without_session(&Message::Join(join()).encode()).unwrap();
        assert_eq!(
            Message::decode(&reply).unwrap(),
            Message::Done(Done::rejected(Nonce([2; 32]), RejectReason::NoSession))
        );
        assert_eq!(reply_without_session(&reply), None);
        assert_eq!(reply_without_session(b"junk"), None);
    }
}
