//! Draws from a seeded ChaCha20 stream. Only `rand_core` is a dependency, so the few
//! distributions the simulator needs live here instead of pulling in `rand`.

use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Independent streams of one seed, so that adding a draw for one purpose (say, one more
/// latency sample) never shifts the identities or codes another purpose derives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Setup = 1,
    Network = 2,
    Attackers = 3,
}

pub fn stream_rng(seed: u64, stream: Stream) -> ChaCha20Rng {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    rng
}

/// A fresh generator seeded from `rng`, for a component that owns its randomness.
pub fn fork(rng: &mut impl RngCore) -> ChaCha20Rng {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    ChaCha20Rng::from_seed(seed)
}

/// Uniform in `0..n` (0 when `n` is 0), by Lemire's multiply-shift; the bias is below 2^-32
/// for every `n` used here.
pub fn below(rng: &mut impl RngCore, n: u64) -> u64 {
    ((u128::from(rng.next_u64()) * u128::from(n)) >> 64) as u64
}

pub fn index(rng: &mut impl RngCore, len: usize) -> usize {
    below(rng, len as u64) as usize
}

/// True with probability `p` (clamped to 0..=1).
pub fn chance(rng: &mut impl RngCore, p: f64) -> bool {
    let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    unit < p
}

/// Uniform in `lo..=hi` at microsecond resolution.
pub fn duration_between(rng: &mut impl RngCore, lo: Duration, hi: Duration) -> Duration {
    if hi <= lo {
        return lo;
    }
    let span = (hi - lo).as_micros() as u64;
    lo + Duration::from_micros(below(rng, span + 1))
}

pub fn bytes32(rng: &mut impl RngCore) -> [u8; 32] {
    let mut out = [0u8; 32];
    rng.fill_bytes(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let v = below(&mut rng, 7);
            assert!(v < 7);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(below(&mut rng, 0), 0);
    }

    #[test]
    fn chance_extremes() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        assert!((0..100).all(|_| !chance(&mut rng, 0.0)));
        assert!((0..100).all(|_| chance(&mut rng, 1.0)));
    }

    #[test]
    fn streams_differ() {
        let a = stream_rng(5, Stream::Setup).next_u64();
        let b = stream_rng(5, Stream::Network).next_u64();
        assert_ne!(a, b);
        assert_eq!(a, stream_rng(5, Stream::Setup).next_u64());
    }
}
