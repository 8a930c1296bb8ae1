#![no_main]
//! Arbitrary bytes into the decoder: never a panic, and whatever decodes re-encodes to
//! something that decodes to the same message.

use libfuzzer_sys::fuzz_target;
use paircode_core::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        let again = Message::decode(&message.encode()).expect("our own encoding decodes");
        assert_eq!(again, message);
    }
});
