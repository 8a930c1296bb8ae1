//! The verification string: four words both screens show, derived from the handshake
//! transcript (`docs/PROTOCOL.md`, "Verification string").
//!
//! The code proves that the other side knows the code; it cannot tell *which* device that
//! is when someone else overheard it. The transcript names both devices, both ephemeral
//! keys and both nonces, so a man in the middle who knows the code runs two handshakes
//! with two different transcripts, and the two people see different words.

use hkdf::Hkdf;
use sha2::Sha256;

use crate::keys::Transcript;

const SALT: &[u8] = b"paircode verification";
const LABEL: &[u8] = b"verification string";
/// Words shown; each carries 11 bits (BIP39 English list).
pub const VERIFICATION_WORDS: usize = 4;

/// Four BIP39 English words (44 bits) that must read the same on both devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Verification([u16; VERIFICATION_WORDS]);

impl Verification {
    /// The string of the handshake with this transcript: HKDF-SHA256 (salt
    /// `"paircode verification"`, ikm the transcript, info `"verification string"`), the
    /// first 44 bits of its 8-byte output read big-endian, 11 bits per word.
    pub fn of(transcript: &Transcript) -> Self {
        let mut out = [0u8; 8];
        Hkdf::<Sha256>::new(Some(SALT), &transcript.0)
            .expand(LABEL, &mut out)
            .expect("8 bytes is a valid HKDF-SHA256 output length");
        let bits = u64::from_be_bytes(out);
        let mut words = [0u16; VERIFICATION_WORDS];
        for (i, word) in words.iter_mut().enumerate() {
            let shift = 64 - 11 * (i as u32 + 1);
            *word = ((bits >> shift) & 0x7ff) as u16;
        }
        Verification(words)
    }

    /// The words, in order.
    pub fn words(&self) -> [&'static str; VERIFICATION_WORDS] {
        let list = bip39::Language::English.word_list();
        self.0.map(|i| list[usize::from(i)])
    }
}

/// The words separated by single spaces.
impl std::fmt::Display for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.words().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::TranscriptBuilder;

    #[test]
    fn four_words_that_follow_the_transcript() {
        let a = TranscriptBuilder::default().field(b"a").finish();
        let b = TranscriptBuilder::default().field(b"b").finish();
        let v = Verification::of(&a);
        assert_eq!(v, Verification::of(&a));
        assert_ne!(v, Verification::of(&b));
        assert_eq!(v.to_string().split(' ').count(), VERIFICATION_WORDS);
    }
}
