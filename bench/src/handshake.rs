//! One full in-memory pairing and the bare cryptography it performs, shared by the
//! criterion bench (`benches/handshake.rs`) and the interleaved ratio
//! (`src/bin/handshake-ratio.rs`).
//!
//! The floor repeats exactly the primitive operations of a handshake (both sides' HKDF
//! schedules, X25519 key generation and agreement, transcript hashing, HMACs, session key
//! expansion) with nothing around them, so the ratio shows what the state machines,
//! CBOR and bookkeeping cost on top.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use paircode_core::testing::Pair;
use paircode_core::{Code, Config, LocalDevice};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

/// A device with a deterministic identity.
pub use paircode_core::testing::device;

/// One complete pairing between two hosts on a perfect in-memory network, auto-accept;
/// whether both completed.
pub fn pair(code: &Code, alice: &LocalDevice, bob: &LocalDevice, rng: &mut ChaCha20Rng) -> bool {
    let cfg = Config {
        auto_accept: true,
        ..Config::default()
    };
    let session_rng = ChaCha20Rng::seed_from_u64(rng.next_u64());
    let mut pair = Pair::with(cfg, alice.clone(), bob.clone(), code.clone(), session_rng);
    pair.joiner_discovers_initiator();
    pair.drive_until(|p| p.initiator_completed().is_some() && p.joiner_completed().is_some());
    pair.initiator_completed().is_some() && pair.joiner_completed().is_some()
}

fn hkdf_code(entropy: &[u8]) -> ([u8; 32], [u8; 32]) {
    let hk = Hkdf::<Sha256>::new(Some(b"paircode v1"), entropy);
    let (mut d, mut a) = ([0u8; 32], [0u8; 32]);
    hk.expand(b"discovery", &mut d).unwrap();
    hk.expand(b"auth", &mut a).unwrap();
    (d, a)
}

fn hmac(key: &[u8], label: &[u8], t: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    m.update(label);
    m.update(t);
    m.finalize().into_bytes().into()
}

fn transcript(fields: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for f in fields {
        h.update((f.len() as u32).to_be_bytes());
        h.update(f);
    }
    h.finalize().into()
}

fn session(t: &[u8], shared: &[u8; 32], auth: &[u8; 32]) -> [[u8; 32]; 3] {
    let mut ikm = [0u8; 64];
    ikm[..32].copy_from_slice(shared);
    ikm[32..].copy_from_slice(auth);
    let hk = Hkdf::<Sha256>::new(Some(t), &ikm);
    let mut out = [[0u8; 32]; 3];
    for (label, o) in [
        &b"pairing secret"[..],
        b"session initiator to joiner",
        b"session joiner to initiator",
    ]
    .iter()
    .zip(out.iter_mut())
    {
        hk.expand(label, o).unwrap();
    }
    out
}

/// Every primitive operation both sides of one handshake perform, and nothing else: both
/// sides' code-key HKDF, six random draws (two session-RNG seeds, two X25519 secrets, two
/// nonces), two X25519 key generations and two agreements, two transcript hashes, four
/// HMACs and both session-key expansions.
pub fn crypto_floor(entropy: &[u8; 16], rng: &mut ChaCha20Rng) -> [[u8; 32]; 3] {
    let mut random = || {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        b
    };
    // Both sides derive the code keys; each seeds its session RNG.
    let (_, auth_i) = hkdf_code(entropy);
    let (disc, auth_j) = hkdf_code(entropy);
    let (_seed_i, _seed_j) = (random(), random());
    // Joiner: ephemeral and nonce.
    let sec_j = StaticSecret::from(random());
    let pub_j = PublicKey::from(&sec_j);
    let nonce_j = random();
    // Initiator: ephemeral, nonce, transcript, mac_i.
    let sec_i = StaticSecret::from(random());
    let pub_i = PublicKey::from(&sec_i);
    let nonce_i = random();
    let fields: [&[u8]; 10] = [
        &[1],
        &disc,
        &nonce_j,
        pub_j.as_bytes(),
        b"bob",
        b"peer-j-0123456789012345678901234567890123",
        &nonce_i,
        pub_i.as_bytes(),
        b"alice",
        b"peer-i-0123456789012345678901234567890123",
    ];
    let t_i = transcript(&fields);
    let mac_i = hmac(&auth_i, b"initiator", &t_i);
    // Joiner: transcript, verify mac_i, agree, mac_j, session keys.
    let t_j = transcript(&fields);
    assert_eq!(hmac(&auth_j, b"initiator", &t_j), mac_i);
    let shared_j = sec_j.diffie_hellman(&pub_i);
    let mac_j = hmac(&auth_j, b"joiner", &t_j);
    let keys_j = session(&t_j, shared_j.as_bytes(), &auth_j);
    // Initiator: verify mac_j, agree, session keys.
    assert_eq!(hmac(&auth_i, b"joiner", &t_i), mac_j);
    let shared_i = sec_i.diffie_hellman(&pub_j);
    let keys_i = session(&t_i, shared_i.as_bytes(), &auth_i);
    assert_eq!(keys_i, keys_j);
    keys_i
}
