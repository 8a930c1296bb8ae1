#![no_main]
//! Arbitrary bytes into the decoders: never a panic, and whatever decodes re-encodes to
//! something that decodes to the same message. A device message decodes only from its
//! own encoding, byte for byte.

use libfuzzer_sys::fuzz_target;
use paircode_core::{DeviceMessage, Message};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        let again = Message::decode(&message.encode()).expect("our own encoding decodes");
        assert_eq!(again, message);
    }
    if let Ok(message) = DeviceMessage::decode(data) {
        assert_eq!(message.encode(), data, "a device message has one encoding");
    }
});
