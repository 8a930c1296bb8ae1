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
    /// Every piece that is not a list word, so that one look fixes them all.
    #[error("{}", unknown_text(.0))]
    UnknownWords(Vec<UnknownWord>),
    /// Every word is valid but the checksum is not: a word is wrong or out of place.
    #[error(
        "the words do not form a valid code (checksum mismatch): check their order and spelling"
    )]
    BadChecksum,
}

/// One piece of a typed code that is not in the word list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownWord {
    /// 1-based position of the word in the code.
    pub position: usize,
    /// The word as typed.
    pub word: String,
    /// The closest word of the list, if one is close enough to be a typo.
    pub suggestion: Option<&'static str>,
}

fn unknown_text(words: &[UnknownWord]) -> String {
    let suggestion = |w: &UnknownWord| match w.suggestion {
        Some(word) => format!("; did you mean {word:?}?"),
        None => String::new(),
    };
    match words {
        [one] => format!(
            "word {} ({:?}) is not in the word list{}",
            one.position,
            one.word,
            suggestion(one)
        ),
        many => {
            let mut text = format!("{} words are not in the word list:", many.len());
            for w in many {
                text.push_str(&format!(
                    "\n  word {} ({:?}){}",
                    w.position,
                    w.word,
                    suggestion(w)
                ));
            }
            text
        }
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
        let unknown: Vec<UnknownWord> = words
            .iter()
            .enumerate()
            .filter(|(_, word)| Language::English.find_word(word).is_none())
            .map(|(i, word)| UnknownWord {
                position: i + 1,
                word: (*word).to_string(),
                suggestion: nearest_word(word),
            })
            .collect();
        if !unknown.is_empty() {
            return Err(CodeError::UnknownWords(unknown));
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

/// The list words starting with `prefix`, for completing a word as it is typed.
pub fn words_starting_with(prefix: &str) -> Vec<&'static str> {
    Language::English.words_by_prefix(prefix).to_vec()
}

/// The closest word of the list, if it is close enough to be a plausible typo, in this
/// order:
///
/// 1. a word the piece begins (a word cut short, or its first four letters, which BIP39
///    keeps unique), if exactly one;
/// 2. the words at the smallest Damerau–Levenshtein distance, if that is small enough
///    (1 for pieces of up to 4 letters, else 2), preferring one with the piece's letters
///    in another order (swapped letters), then the first in list order;
/// 3. the word starting with the piece's first 4 letters, if exactly one (a right start
///    with a garbled end).
pub fn nearest_word(word: &str) -> Option<&'static str> {
    let lang = Language::English;
    if let [only] = lang.words_by_prefix(word) {
        return Some(only);
    }
    let tolerance = if word.chars().count() <= 4 { 1 } else { 2 };
    let mut best: Option<(&'static str, usize)> = None;
    for candidate in lang.word_list() {
        let distance = strsim::damerau_levenshtein(word, candidate);
        let better = match best {
            None => true,
            Some((held, d)) => {
                distance < d
                    || (distance == d && same_letters(word, candidate) && !same_letters(word, held))
            }
        };
        if better {
            best = Some((candidate, distance));
        }
    }
    if let Some((close, _)) = best.filter(|(_, d)| *d <= tolerance) {
        return Some(close);
    }
    let start = &word[..word.char_indices().nth(4).map_or(word.len(), |(i, _)| i)];
    match lang.words_by_prefix(start) {
        [only] if start.chars().count() == 4 => Some(only),
        _ => None,
    }
}

/// The same letters, in any order.
fn same_letters(a: &str, b: &str) -> bool {
    let sorted = |s: &str| {
        let mut letters: Vec<char> = s.chars().collect();
        letters.sort_unstable();
        letters
    };
    sorted(a) == sorted(b)
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
        match Code::parse(&list.join(" ")).map_err(|e| match e {
            CodeError::UnknownWords(mut words) if words.len() == 1 => Ok(words.remove(0)),
            other => Err(other),
        }) {
            Err(Ok(UnknownWord {
                position,
                word,
                suggestion,
            })) => {
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
    fn swapped_letters_are_suggested_back() {
        assert_eq!(nearest_word("basent"), Some("absent"));
        assert_eq!(nearest_word("actoin"), Some("action"));
        assert_eq!(nearest_word("amr"), Some("arm"));
        assert_eq!(nearest_word("angel"), Some("angle"));
        // A swap is suggested back unless the piece also reads as another word cut short
        // or as a swap of another word. Every 7th word: the whole list is slow unoptimised.
        for word in Language::English.word_list().iter().step_by(7) {
            let letters: Vec<char> = word.chars().collect();
            for i in 0..letters.len() - 1 {
                let mut swapped = letters.clone();
                swapped.swap(i, i + 1);
                let piece: String = swapped.into_iter().collect();
                if Language::English.find_word(&piece).is_some() {
                    continue;
                }
                let suggested = nearest_word(&piece).unwrap_or_else(|| panic!("{piece}: none"));
                let other_reading = suggested.starts_with(&piece)
                    || (strsim::damerau_levenshtein(&piece, suggested) == 1
                        && same_letters(&piece, suggested));
                assert!(
                    suggested == *word || other_reading,
                    "{piece} (from {word}) suggests {suggested}"
                );
            }
        }
    }

    #[test]
    fn every_unknown_word_is_reported_at_once() {
        let err = Code::parse("abandn abandon abandon zzzzzzzz abandon abandon abandon abandon abandon abandon abandon abuot").unwrap_err();
        assert_eq!(
            err.to_string(),
            "3 words are not in the word list:\n  \
             word 1 (\"abandn\"); did you mean \"abandon\"?\n  \
             word 4 (\"zzzzzzzz\")\n  \
             word 12 (\"abuot\"); did you mean \"about\"?"
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
