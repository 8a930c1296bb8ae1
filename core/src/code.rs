//! The human-readable pairing code: 12 BIP39 English words carrying 128 bits of entropy.
//!
//! Everything here runs before any network traffic, so a typo is caught while the user is
//! still looking at the keyboard.

use bip39::{Language, Mnemonic};
use rand_core::CryptoRngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::keys::CodeKeys;

/// Number of words in a pairing code.
pub const WORD_COUNT: usize = 12;
/// Bytes of entropy behind a code (128 bits).
pub const ENTROPY_LEN: usize = 16;

/// A pairing code. The entropy is wiped on drop and never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Code {
    entropy: Zeroizing<[u8; ENTROPY_LEN]>,
}

/// Why a typed code was refused. Each case has its own variant so a UI can react to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Too few or too many words.
    #[error("a pairing code has {expected} words, this one has {found}")]
    WrongWordCount {
        /// How many words were typed.
        found: usize,
        /// How many a code has.
        expected: usize,
    },
    /// A word that is not in the BIP-39 English list.
    #[error("word {position} ({word:?}) is not in the word list{}", suggestion_text(.suggestion))]
    UnknownWord {
        /// 1-based position of the word in the code.
        position: usize,
        /// The word as typed.
        word: String,
        /// The closest word of the list, if one is close enough to be a typo.
        suggestion: Option<&'static str>,
    },
    /// Every word is valid but the checksum is not: a word is wrong or out of place.
    #[error(
        "the words do not form a valid code (checksum mismatch): check their order and spelling"
    )]
    BadChecksum,
}

fn suggestion_text(suggestion: &Option<&'static str>) -> String {
    match suggestion {
        Some(word) => format!("; did you mean {word:?}?"),
        None => String::new(),
    }
}

impl Code {
    /// Draws 128 fresh bits from the caller's RNG.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut entropy = Zeroizing::new([0u8; ENTROPY_LEN]);
        rng.fill_bytes(entropy.as_mut());
        Code { entropy }
    }

    /// The code with these 128 bits, as in a test vector.
    pub fn from_entropy(entropy: [u8; ENTROPY_LEN]) -> Self {
        Code {
            entropy: Zeroizing::new(entropy),
        }
    }

    /// Parses what a person typed: any case, extra spaces, dashes or commas between words.
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        let normalized = Zeroizing::new(input.to_lowercase());
        let words: Vec<&str> = normalized
            .split(|c: char| c.is_whitespace() || c == '-' || c == ',' || c == ';' || c == '.')
            .filter(|w| !w.is_empty())
            .collect();
        if words.len() != WORD_COUNT {
            return Err(CodeError::WrongWordCount {
                found: words.len(),
                expected: WORD_COUNT,
            });
        }
        for (i, word) in words.iter().enumerate() {
            if Language::English.find_word(word).is_none() {
                return Err(CodeError::UnknownWord {
                    position: i + 1,
                    word: (*word).to_string(),
                    suggestion: nearest_word(word),
                });
            }
        }
        let joined = Zeroizing::new(words.join(" "));
        let mnemonic = Mnemonic::parse_in_normalized(Language::English, &joined)
            .map_err(|_| CodeError::BadChecksum)?;
        let (mut array, len) = mnemonic.to_entropy_array();
        debug_assert_eq!(len, ENTROPY_LEN);
        let mut entropy = Zeroizing::new([0u8; ENTROPY_LEN]);
        entropy.copy_from_slice(&array[..ENTROPY_LEN]);
        array.zeroize();
        Ok(Code { entropy })
    }

    /// The words, space separated, in a buffer wiped on drop.
    pub fn words(&self) -> Zeroizing<String> {
        let mnemonic = Mnemonic::from_entropy_in(Language::English, self.entropy.as_ref())
            .expect("16 bytes is a valid BIP39 entropy length");
        let mut out = Zeroizing::new(String::with_capacity(12 * 9));
        for (i, word) in mnemonic.words().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(word);
        }
        out
    }

    /// The code's 128 bits: the secret every key of the session derives from.
    pub fn entropy(&self) -> &[u8; ENTROPY_LEN] {
        &self.entropy
    }

    /// The keys this code yields (see [`crate::keys`]).
    pub fn keys(&self) -> CodeKeys {
        CodeKeys::derive(self.entropy.as_ref())
    }
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Code(<redacted>)")
    }
}

/// The closest word of the list, if it is close enough to be a plausible typo.
///
/// BIP39 words are unique in their first four letters, so a word that starts like exactly
/// one list word is a strong hint even when the edit distance is large (a truncated word).
pub fn nearest_word(word: &str) -> Option<&'static str> {
    let list = Language::English.word_list();
    if word.chars().count() >= 4 {
        let by_prefix = Language::English
            .words_by_prefix(&word[..word.char_indices().nth(4).map_or(word.len(), |(i, _)| i)]);
        if by_prefix.len() == 1 {
            return Some(by_prefix[0]);
        }
    }
    let (best, distance) = list
        .iter()
        .map(|candidate| (*candidate, strsim::damerau_levenshtein(word, candidate)))
        .min_by_key(|(_, d)| *d)?;
    let tolerance = if word.chars().count() <= 4 { 1 } else { 2 };
    (distance <= tolerance).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn sample() -> Code {
        Code::generate(&mut ChaCha20Rng::seed_from_u64(7))
    }

    #[test]
    fn words_round_trip() {
        let code = sample();
        let words = code.words();
        assert_eq!(words.split(' ').count(), WORD_COUNT);
        assert_eq!(Code::parse(&words).unwrap(), code);
    }

    #[test]
    fn parse_normalises_case_spaces_dashes_and_commas() {
        let code = sample();
        let words = code.words();
        let messy = format!(
            "  {}  ",
            words
                .to_uppercase()
                .replacen(' ', "-", 3)
                .replacen(' ', ", ", 2)
                .replacen(' ', "   ", 2)
        );
        assert_eq!(Code::parse(&messy).unwrap(), code);
    }

    #[test]
    fn wrong_word_count() {
        let code = sample();
        let words = code.words();
        let eleven: Vec<&str> = words.split(' ').take(11).collect();
        assert_eq!(
            Code::parse(&eleven.join(" ")),
            Err(CodeError::WrongWordCount {
                found: 11,
                expected: 12
            })
        );
        assert_eq!(
            Code::parse(""),
            Err(CodeError::WrongWordCount {
                found: 0,
                expected: 12
            })
        );
    }

    #[test]
    fn unknown_word_suggests_nearest() {
        let code = sample();
        let words = code.words();
        let mut list: Vec<String> = words.split(' ').map(str::to_string).collect();
        let original = list[4].clone();
        // Drop a letter from the middle: a typical typo.
        let mut typo = original.clone();
        typo.remove(2);
        if Language::English.find_word(&typo).is_some() {
            return; // the typo happens to be another word; nothing to suggest
        }
        list[4] = typo.clone();
        match Code::parse(&list.join(" ")) {
            Err(CodeError::UnknownWord {
                position,
                word,
                suggestion,
            }) => {
                assert_eq!(position, 5);
                assert_eq!(word, typo);
                assert_eq!(
                    suggestion,
                    Some(
                        Language::English.word_list()
                            [Language::English.find_word(&original).unwrap() as usize]
                    )
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(nearest_word("abandn"), Some("abandon"));
        assert_eq!(nearest_word("abadnon"), Some("abandon"));
        assert_eq!(nearest_word("zzzzzzzz"), None);
        assert_eq!(nearest_word("wrold"), Some("world"));
        let err = Code::parse("abandn abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about").unwrap_err();
        assert_eq!(
            err.to_string(),
            "word 1 (\"abandn\") is not in the word list; did you mean \"abandon\"?"
        );
    }

    #[test]
    fn bad_checksum() {
        // "abandon" x12 is the all-zero entropy with a wrong final checksum word.
        let input = ["abandon"; 12].join(" ");
        assert_eq!(Code::parse(&input), Err(CodeError::BadChecksum));
        let valid = format!("{} about", ["abandon"; 11].join(" "));
        assert_eq!(Code::parse(&valid).unwrap().entropy(), &[0u8; 16]);
    }

    #[test]
    fn debug_hides_entropy() {
        assert_eq!(format!("{:?}", sample()), "Code(<redacted>)");
    }
}
