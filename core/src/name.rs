//! Device names: what a name may contain, and how to show one that came from elsewhere.
//!
//! A name is how a person tells devices apart in a prompt ("Pair with alice-laptop?") and
//! in a list, so a name must not be able to look like another one. The rules, checked by
//! [`validate`] for names typed here and for names that arrive in a handshake:
//! - not empty, at most [`MAX_NAME_LEN`] bytes of UTF-8;
//! - no control characters (Unicode general category Cc: a terminal obeys them);
//! - no invisible characters: format characters (Cf: bidi overrides and isolates such as
//!   U+202E, which reverse the text shown after them; zero-width spaces and joiners; the
//!   byte-order mark; tag characters) and letters that render as blank (Hangul fillers,
//!   the Braille blank, the combining grapheme joiner);
//! - no whitespace but the plain space U+0020 (no line or paragraph separators, no
//!   no-break, ideographic or other wide and narrow spaces), and no space at either end.
//!
//! Anything not refused prints as itself. [`escaped`] shows any name — one stored before
//! these rules, say — with every refused character spelled out (`\u{202e}`), so even a
//! name that slipped past cannot pass for another.
//!
//! The categories come from an explicit table instead of a Unicode-tables crate: Cc and
//! White_Space are in the standard library (`char::is_control`, `char::is_whitespace`),
//! and Cf is 21 ranges that change rarely (the last addition was in Unicode 15.0). The
//! table below was reviewed against UnicodeData.txt of Unicode 15.1; a character added to
//! Cf later passes the check until the table is updated, and would still be shown as
//! itself — acceptable for a name that the user also sees with its peer id.

use std::fmt;

/// Longest device name, in bytes of UTF-8. 64 bytes is 64 ASCII letters, or 16 to 32
/// characters of most other scripts: enough for "Alice's work laptop (2019)", short enough
/// that a prompt with the name, the peer id and the question fits one 80-column line, and
/// a fixed bound on what a peer can make every prompt and stored record hold. Bytes rather
/// than characters because it also bounds the wire encoding.
pub const MAX_NAME_LEN: usize = 64;

/// Why a device name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceInfoError {
    /// The name is empty.
    #[error("device name is empty")]
    EmptyName,
    /// The name is longer than [`MAX_NAME_LEN`] bytes (it is this long).
    #[error("device name is {0} bytes long, at most {MAX_NAME_LEN} are allowed")]
    NameTooLong(usize),
    /// The name contains control characters, which a terminal might obey.
    #[error("device name contains control characters")]
    ControlCharacters,
    /// The name contains a character that is not shown, or shows as nothing, but can
    /// change how the rest of the name is displayed (U+202E reverses the text after it).
    #[error("device name contains the invisible character U+{:04X}", u32::from(*.0))]
    Invisible(char),
    /// The name contains whitespace other than a plain space (U+0020).
    #[error("device name contains U+{:04X}; only the plain space is allowed between words", u32::from(*.0))]
    Whitespace(char),
    /// The name starts or ends with a space.
    #[error("device name starts or ends with a space")]
    EdgeSpace,
}

/// Checks a device name against the rules in the [module documentation](self).
pub fn validate(name: &str) -> Result<(), DeviceInfoError> {
    if name.is_empty() {
        return Err(DeviceInfoError::EmptyName);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(DeviceInfoError::NameTooLong(name.len()));
    }
    for c in name.chars() {
        match class(c) {
            Class::Shown => {}
            Class::Control => return Err(DeviceInfoError::ControlCharacters),
            Class::Invisible => return Err(DeviceInfoError::Invisible(c)),
            Class::Whitespace => return Err(DeviceInfoError::Whitespace(c)),
        }
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Err(DeviceInfoError::EdgeSpace);
    }
    Ok(())
}

/// `name` for a terminal: a valid name as it is; in any other, every refused character
/// and a space at either end as `\u{…}`, and a backslash as `\\` (so that an escape in the
/// output always is one). Use it wherever a name that came from a peer or a file is shown
/// to a person.
pub fn escaped(name: &str) -> Escaped<'_> {
    Escaped(name)
}

/// See [`escaped`].
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if validate(self.0).is_ok() && !self.0.contains('\\') {
            return f.pad(self.0);
        }
        let last = self.0.chars().count().saturating_sub(1);
        let mut out = String::with_capacity(self.0.len() + 8);
        for (i, c) in self.0.chars().enumerate() {
            let edge_space = c == ' ' && (i == 0 || i == last);
            match c {
                '\\' => out.push_str("\\\\"),
                c if edge_space || class(c) != Class::Shown => {
                    out.push_str(&format!("\\u{{{:x}}}", u32::from(c)))
                }
                c => out.push(c),
            }
        }
        f.pad(&out)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Shown,
    Control,
    Invisible,
    Whitespace,
}

fn class(c: char) -> Class {
    if c.is_control() {
        // Exactly general category Cc.
        Class::Control
    } else if is_invisible(c) {
        Class::Invisible
    } else if c.is_whitespace() && c != ' ' {
        // White_Space minus Cc: Zs but U+0020, and U+2028 (Zl), U+2029 (Zp).
        Class::Whitespace
    } else {
        Class::Shown
    }
}

/// General category Cf (Unicode 15.1), then characters of other categories that render as
/// nothing or as blank.
const INVISIBLE: &[(char, char)] = &[
    // Cf.
    ('\u{00AD}', '\u{00AD}'),   // soft hyphen
    ('\u{0600}', '\u{0605}'),   // Arabic number signs
    ('\u{061C}', '\u{061C}'),   // Arabic letter mark
    ('\u{06DD}', '\u{06DD}'),   // Arabic end of ayah
    ('\u{070F}', '\u{070F}'),   // Syriac abbreviation mark
    ('\u{0890}', '\u{0891}'),   // Arabic pound and piastre marks above
    ('\u{08E2}', '\u{08E2}'),   // Arabic disputed end of ayah
    ('\u{180E}', '\u{180E}'),   // Mongolian vowel separator
    ('\u{200B}', '\u{200F}'),   // zero-width space, ZWNJ, ZWJ, LRM, RLM
    ('\u{202A}', '\u{202E}'),   // bidi embeddings and overrides (LRE … RLO)
    ('\u{2060}', '\u{2064}'),   // word joiner, invisible operators
    ('\u{2066}', '\u{206F}'),   // bidi isolates, deprecated format characters
    ('\u{FEFF}', '\u{FEFF}'),   // zero-width no-break space (byte-order mark)
    ('\u{FFF9}', '\u{FFFB}'),   // interlinear annotation
    ('\u{110BD}', '\u{110BD}'), // Kaithi number sign
    ('\u{110CD}', '\u{110CD}'), // Kaithi number sign above
    ('\u{13430}', '\u{1343F}'), // Egyptian hieroglyph format controls
    ('\u{1BCA0}', '\u{1BCA3}'), // shorthand format controls
    ('\u{1D173}', '\u{1D17A}'), // musical symbol format controls
    ('\u{E0001}', '\u{E0001}'), // language tag
    ('\u{E0020}', '\u{E007F}'), // tag characters
    // Not Cf, but shown as nothing or as a blank.
    ('\u{034F}', '\u{034F}'), // combining grapheme joiner (Mn)
    ('\u{115F}', '\u{1160}'), // Hangul choseong and jungseong fillers (Lo)
    ('\u{2800}', '\u{2800}'), // Braille pattern blank (So)
    ('\u{3164}', '\u{3164}'), // Hangul filler (Lo)
    ('\u{FFA0}', '\u{FFA0}'), // halfwidth Hangul filler (Lo)
];

fn is_invisible(c: char) -> bool {
    INVISIBLE.iter().any(|&(from, to)| (from..=to).contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for name in [
            "laptop",
            "Alice's work laptop (2019)",
            "bob-phone",
            "Zoë's iPad",
            "東京のPC",
            "❤️ kitchen",
            &"a".repeat(MAX_NAME_LEN),
        ] {
            assert_eq!(validate(name), Ok(()), "{name:?}");
            assert_eq!(escaped(name).to_string(), name);
        }
    }

    /// "alice" followed by a right-to-left override and "pot.exe" reads "alicexe.top" on
    /// screen; a zero-width space makes a second "alice" that looks like the first.
    #[test]
    fn bidi_override_and_zero_width_names_are_refused() {
        assert_eq!(
            validate("alice\u{202E}pot.exe"),
            Err(DeviceInfoError::Invisible('\u{202E}'))
        );
        assert_eq!(
            validate("ali\u{200B}ce"),
            Err(DeviceInfoError::Invisible('\u{200B}'))
        );
        for c in [
            '\u{00AD}',
            '\u{061C}',
            '\u{200D}',
            '\u{2066}',
            '\u{2069}',
            '\u{FEFF}',
            '\u{E0041}',
            '\u{3164}',
            '\u{2800}',
        ] {
            assert_eq!(
                validate(&format!("a{c}b")),
                Err(DeviceInfoError::Invisible(c)),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn only_the_plain_space_is_allowed_and_never_at_an_end() {
        for c in [
            '\u{00A0}', '\u{1680}', '\u{2000}', '\u{2007}', '\u{200A}', '\u{2028}', '\u{2029}',
            '\u{202F}', '\u{205F}', '\u{3000}',
        ] {
            assert_eq!(
                validate(&format!("a{c}b")),
                Err(DeviceInfoError::Whitespace(c)),
                "U+{:04X}",
                u32::from(c)
            );
        }
        assert_eq!(validate(" alice"), Err(DeviceInfoError::EdgeSpace));
        assert_eq!(validate("alice "), Err(DeviceInfoError::EdgeSpace));
        assert_eq!(validate(" "), Err(DeviceInfoError::EdgeSpace));
        assert_eq!(validate("alice laptop"), Ok(()));
    }

    #[test]
    fn controls_and_length_are_refused() {
        assert_eq!(validate(""), Err(DeviceInfoError::EmptyName));
        assert_eq!(
            validate(&"é".repeat(33)),
            Err(DeviceInfoError::NameTooLong(66))
        );
        for name in ["a\tb", "a\nb", "a\u{85}b", "a\u{7f}b", "\u{1b}[2J"] {
            assert_eq!(validate(name), Err(DeviceInfoError::ControlCharacters));
        }
    }

    #[test]
    fn refused_characters_are_shown_escaped() {
        assert_eq!(
            escaped("alice\u{202E}pot.exe").to_string(),
            "alice\\u{202e}pot.exe"
        );
        assert_eq!(escaped(" bob ").to_string(), "\\u{20}bob\\u{20}");
        assert_eq!(escaped("a\u{1b}[2Jb").to_string(), "a\\u{1b}[2Jb");
        assert_eq!(escaped("a\\b").to_string(), "a\\\\b");
        // Padding works as for a plain string (device lists are columns).
        assert_eq!(format!("{:<8}|", escaped("tv")), "tv      |");
        assert_eq!(format!("{:<8}|", escaped("t\u{200B}")), "t\\u{200b}|");
    }
}
