//! `/paircode/device/1`: what paired devices say to each other once paired.
//!
//! Two messages only: a periodic [`DeviceMessage::Hello`], which keeps the connection
//! between paired devices from going idle (so "online" means reachable now), and
//! [`DeviceMessage::Unpaired`], which tells the other side that this device forgot it. The
//! sender is the PeerId the transport authenticated, so a device can only ever unpair
//! itself. Each message is one CBOR text string naming the variant (`"Hello"`,
//! `"Unpaired"`), framed as on `/paircode/pair/1`; the answer is always empty.

use serde::{Deserialize, Serialize};

use crate::messages::{DecodeError, MAX_MESSAGE_LEN};

/// A request on `/paircode/device/1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceMessage {
    /// "I am here": keeps the connection busy; carries nothing.
    Hello,
    /// "I forgot you": the receiver drops the sender from its paired devices.
    Unpaired,
}

impl DeviceMessage {
    /// The bytes to send.
    pub fn encode(self) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(&self, &mut out).expect("writing CBOR to a Vec cannot fail");
        out
    }

    /// Reads one message, strictly: one CBOR value of a known variant and nothing after
    /// it (as the pairing messages are read), in its one canonical encoding (the bytes
    /// [`DeviceMessage::encode`] gives, so no over-long length header either).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_MESSAGE_LEN,
            });
        }
        let mut reader = bytes;
        let message = ciborium::from_reader(&mut reader)
            .map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if !reader.is_empty() {
            return Err(DecodeError::Malformed(format!(
                "{} trailing bytes after the message",
                reader.len()
            )));
        }
        if Self::encode(message) != bytes {
            return Err(DecodeError::Malformed("not in canonical CBOR form".into()));
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        for m in [DeviceMessage::Hello, DeviceMessage::Unpaired] {
            assert_eq!(DeviceMessage::decode(&m.encode()), Ok(m));
        }
        assert!(DeviceMessage::decode(b"\xff").is_err());
        assert!(DeviceMessage::decode(b"").is_err());
    }

    /// The wire form the protocol document gives: a CBOR text string of the variant name.
    #[test]
    fn encoding_is_the_variant_name_as_cbor_text() {
        assert_eq!(DeviceMessage::Hello.encode(), b"\x65Hello");
        assert_eq!(DeviceMessage::Unpaired.encode(), b"\x68Unpaired");
    }

    #[test]
    fn trailing_bytes_are_refused() {
        for m in [DeviceMessage::Hello, DeviceMessage::Unpaired] {
            let mut bytes = m.encode();
            bytes.extend_from_slice(b"garbage");
            assert_eq!(
                DeviceMessage::decode(&bytes),
                Err(DecodeError::Malformed(
                    "7 trailing bytes after the message".into()
                ))
            );
            // Even a second valid message counts as trailing bytes.
            let twice = [m.encode(), m.encode()].concat();
            assert!(DeviceMessage::decode(&twice).is_err());
        }
    }

    /// CBOR allows a longer length header than needed; only the shortest is accepted.
    #[test]
    fn non_canonical_encodings_are_refused() {
        assert_eq!(
            DeviceMessage::decode(b"\x78\x05Hello"),
            Err(DecodeError::Malformed("not in canonical CBOR form".into()))
        );
        assert!(DeviceMessage::decode(b"\x79\x00\x08Unpaired").is_err());
        assert!(DeviceMessage::decode(b"\x7f\x62He\x63llo\xff").is_err());
    }

    #[test]
    fn oversized_and_unknown_messages_are_refused() {
        let huge = vec![0u8; MAX_MESSAGE_LEN + 1];
        assert!(matches!(
            DeviceMessage::decode(&huge),
            Err(DecodeError::TooLarge { .. })
        ));
        let mut unknown = Vec::new();
        ciborium::into_writer("Goodbye", &mut unknown).unwrap();
        assert!(matches!(
            DeviceMessage::decode(&unknown),
            Err(DecodeError::Malformed(_))
        ));
    }
}
