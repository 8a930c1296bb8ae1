//! Inputs no honest peer sends: random bytes, oversized, truncated or bit-flipped messages,
//! other protocol versions, well-formed envelopes around ill-formed bodies, and CBOR built
//! to exhaust a careless decoder (deep nesting, absurd declared lengths).

use paircode_core::messages::{EphemeralKey, Mac, Message, Nonce, Prove};
use paircode_core::{DeviceInfo, MAX_MESSAGE_LEN, PROTOCOL_VERSION};
use rand_core::RngCore;

use crate::random::{below, index};

/// Every family of bad input, so a test can make sure each one is exercised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Garbage {
    Empty,
    RandomBytes,
    Oversized,
    Truncated,
    BitFlipped,
    OtherVersion,
    UnknownVariant,
    ShortKey,
    WrongFieldType,
    BadDeviceName,
    MissingBody,
    DeepNesting,
    HugeDeclaredLength,
    TrailingJunk,
}

impl Garbage {
    pub const ALL: [Garbage; 14] = [
        Garbage::Empty,
        Garbage::RandomBytes,
        Garbage::Oversized,
        Garbage::Truncated,
        Garbage::BitFlipped,
        Garbage::OtherVersion,
        Garbage::UnknownVariant,
        Garbage::ShortKey,
        Garbage::WrongFieldType,
        Garbage::BadDeviceName,
        Garbage::MissingBody,
        Garbage::DeepNesting,
        Garbage::HugeDeclaredLength,
        Garbage::TrailingJunk,
    ];

    pub fn pick(rng: &mut impl RngCore) -> Garbage {
        Garbage::ALL[index(rng, Garbage::ALL.len())]
    }
}

/// Bytes of the given family. `sample` is a valid message to mutate, where the family
/// mutates one (truncation, bit flips, trailing junk, oversize padding).
pub fn make(kind: Garbage, sample: &[u8], rng: &mut impl RngCore) -> Vec<u8> {
    match kind {
        Garbage::Empty => Vec::new(),
        Garbage::RandomBytes => {
            let mut out = vec![0u8; below(rng, 300) as usize + 1];
            rng.fill_bytes(&mut out);
            out
        }
        Garbage::Oversized => {
            let mut out = sample.to_vec();
            let extra = MAX_MESSAGE_LEN + 1 + below(rng, 512) as usize;
            out.resize(out.len().max(extra), 0xa0);
            out
        }
        Garbage::Truncated => {
            let keep = below(rng, sample.len().max(1) as u64) as usize;
            sample[..keep].to_vec()
        }
        Garbage::BitFlipped => {
            let mut out = sample.to_vec();
            if out.is_empty() {
                out.push(0);
            }
            for _ in 0..=below(rng, 3) {
                let i = index(rng, out.len());
                out[i] ^= 1 << below(rng, 8);
            }
            out
        }
        Garbage::OtherVersion => {
            let this = u64::from(PROTOCOL_VERSION);
            let versions = [0u64, this - 1, this + 1, 255, 256, u64::MAX];
            let v = versions[index(rng, versions.len())];
            envelope(&uint(v), &prove_body(&[7; 32]))
        }
        Garbage::UnknownVariant => {
            let mut body = map_head(1);
            body.extend(text("Hello"));
            body.extend(map_head(0));
            envelope(&current(), &body)
        }
        Garbage::ShortKey => {
            let len = [0usize, 1, 31, 33, 64][index(rng, 5)];
            envelope(&current(), &prove_body(&vec![9; len]))
        }
        Garbage::WrongFieldType => {
            let mut body = map_head(1);
            body.extend(text("Prove"));
            body.extend(map_head(2));
            body.extend(text("nonce"));
            body.extend(bytes(&[6; 32]));
            body.extend(text("mac"));
            body.extend(text("not bytes but a string of text"));
            envelope(&current(), &body)
        }
        Garbage::BadDeviceName => {
            let names = ["", "\u{1b}[2J", "tab\there", &"x".repeat(65), "nul\0"];
            let name = names[index(rng, names.len())];
            envelope(&current(), &join_body(name))
        }
        Garbage::MissingBody => {
            let mut out = map_head(1);
            out.extend(text("v"));
            out.extend(current());
            out
        }
        Garbage::DeepNesting => {
            // Thousands of one-element arrays: a recursive decoder without a depth limit
            // would overflow the stack, which aborts the whole process.
            let depth = 3000 + below(rng, 1000) as usize;
            let mut m = vec![0x81; depth];
            m.push(0x00);
            envelope(&current(), &m)
        }
        Garbage::HugeDeclaredLength => {
            // A byte string, array or map header claiming up to 2^64-1 items, then EOF: a
            // decoder that preallocates from the header would abort on allocation.
            let major = [2u8, 3, 4, 5][index(rng, 4)];
            let mut m = head(major, u64::MAX - below(rng, 1 << 20));
            m.extend([0u8; 8]);
            envelope(&current(), &m)
        }
        Garbage::TrailingJunk => {
            let mut out = sample.to_vec();
            let mut junk = vec![0u8; 1 + below(rng, 16) as usize];
            rng.fill_bytes(&mut junk);
            out.extend(junk);
            out
        }
    }
}

/// A valid message to mutate when the caller has none at hand.
pub fn default_sample() -> Vec<u8> {
    Message::Prove(Prove {
        nonce: Nonce([6; 32]),
        eph: EphemeralKey([8; 32]),
        info: DeviceInfo::new("bob").expect("a valid name"),
        mac: Mac([7; 32]),
    })
    .encode()
}

fn head(major: u8, n: u64) -> Vec<u8> {
    let m = major << 5;
    match n {
        0..=23 => vec![m | n as u8],
        24..=0xff => vec![m | 24, n as u8],
        0x100..=0xffff => {
            let mut v = vec![m | 25];
            v.extend((n as u16).to_be_bytes());
            v
        }
        0x1_0000..=0xffff_ffff => {
            let mut v = vec![m | 26];
            v.extend((n as u32).to_be_bytes());
            v
        }
        _ => {
            let mut v = vec![m | 27];
            v.extend(n.to_be_bytes());
            v
        }
    }
}

fn uint(n: u64) -> Vec<u8> {
    head(0, n)
}

fn bytes(b: &[u8]) -> Vec<u8> {
    let mut v = head(2, b.len() as u64);
    v.extend_from_slice(b);
    v
}

fn text(s: &str) -> Vec<u8> {
    let mut v = head(3, s.len() as u64);
    v.extend_from_slice(s.as_bytes());
    v
}

fn map_head(n: u64) -> Vec<u8> {
    head(5, n)
}

fn envelope(version: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = map_head(2);
    out.extend(text("v"));
    out.extend_from_slice(version);
    out.extend(text("m"));
    out.extend_from_slice(body);
    out
}

/// A Prove whose nonce is `[6; 32]` and whose MAC is `mac` (any length, to build bad ones).
fn prove_body(mac: &[u8]) -> Vec<u8> {
    let mut body = map_head(1);
    body.extend(text("Prove"));
    body.extend(map_head(4));
    body.extend(text("nonce"));
    body.extend(bytes(&[6; 32]));
    body.extend(text("eph"));
    body.extend(bytes(&[8; 32]));
    body.extend(text("info"));
    body.extend(map_head(1));
    body.extend(text("name"));
    body.extend(text("bob"));
    body.extend(text("mac"));
    body.extend(bytes(mac));
    body
}

/// The envelope's `v` of this build.
fn current() -> Vec<u8> {
    uint(u64::from(PROTOCOL_VERSION))
}

fn join_body(name: &str) -> Vec<u8> {
    let mut body = map_head(1);
    body.extend(text("Join"));
    body.extend(map_head(4));
    for field in ["discovery_id", "nonce", "eph"] {
        body.extend(text(field));
        body.extend(bytes(&[5; 32]));
    }
    body.extend(text("info"));
    body.extend(map_head(1));
    body.extend(text("name"));
    body.extend(text(name));
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use paircode_core::messages::DecodeError;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn the_hand_written_cbor_matches_the_real_encoding() {
        assert_eq!(
            envelope(&current(), &prove_body(&[7; 32])),
            default_sample()
        );
    }

    /// Families that are malformed by construction must be refused by the decoder; bit
    /// flips and truncations may occasionally still decode, so they are not listed here.
    #[test]
    fn families_are_refused_by_the_decoder() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let sample = default_sample();
        for _ in 0..200 {
            for kind in [
                Garbage::Empty,
                Garbage::Oversized,
                Garbage::OtherVersion,
                Garbage::UnknownVariant,
                Garbage::ShortKey,
                Garbage::WrongFieldType,
                Garbage::BadDeviceName,
                Garbage::MissingBody,
                Garbage::DeepNesting,
                Garbage::HugeDeclaredLength,
            ] {
                let bytes = make(kind, &sample, &mut rng);
                let decoded = Message::decode(&bytes);
                assert!(decoded.is_err(), "{kind:?} decoded: {decoded:?}");
                if kind == Garbage::Oversized {
                    assert!(matches!(decoded, Err(DecodeError::TooLarge { .. })));
                }
                if kind == Garbage::OtherVersion {
                    assert!(matches!(decoded, Err(DecodeError::UnsupportedVersion(_))));
                }
            }
        }
    }
}
