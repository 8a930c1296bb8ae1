//! `/paircode/device/1`: what paired devices say to each other once paired.
//!
//! Two things only: a periodic `Hello`, which keeps the connection between paired devices
//! from going idle (so "online" means reachable now), and `Unpaired`, which tells the other
//! side that this device forgot it. The sender is the PeerId Noise authenticated, so a
//! device can only ever unpair itself. Same framing as the pairing protocol (see
//! `protocol`), CBOR bodies.

use libp2p::StreamProtocol;
use serde::{Deserialize, Serialize};

pub const DEVICE_PROTOCOL: StreamProtocol = StreamProtocol::new("/paircode/device/1");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceMessage {
    Hello,
    Unpaired,
}

impl DeviceMessage {
    pub fn encode(self) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(&self, &mut out).expect("writing CBOR to a Vec cannot fail");
        out
    }

    /// `None` for anything that is not one of ours: such requests are answered empty.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        ciborium::from_reader(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        for m in [DeviceMessage::Hello, DeviceMessage::Unpaired] {
            assert_eq!(DeviceMessage::decode(&m.encode()), Some(m));
        }
        assert_eq!(DeviceMessage::decode(b"\xff"), None);
        assert_eq!(DeviceMessage::decode(b""), None);
    }
}
