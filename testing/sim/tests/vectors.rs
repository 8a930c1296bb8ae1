//! Known-answer vectors for handshake v3, in `tests/vectors/handshake-v3.txt`.
//!
//! With fixed inputs (code entropy, identities, device names, RNG seeds) the handshake is
//! run through paircode-core, and every derived value is also recomputed straight from
//! the specification, `docs/PROTOCOL.md` §2–§3 (§7 describes the file and the RNG chain),
//! with the primitives (HKDF-SHA256, HMAC-SHA256, SHA-256, X25519). Both must equal the
//! committed hex, so a change to the key schedule, the transcript or the wire encoding
//! cannot go unnoticed. Another implementation can check itself against the file:
//! `docs/check_vectors.py` does, written from the specification alone.
//!
//! The file was written from this implementation once; to rewrite it after a deliberate
//! protocol change, run with `PAIRCODE_WRITE_VECTORS=1` (then update `docs/PROTOCOL.md`
//! and rerun `python3 docs/check_vectors.py`).

use std::time::{Duration, Instant};

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use paircode_core::keys::CodeKeys;
use paircode_core::messages::{self, Done, Message, Prove};
use paircode_core::{Action, Code, Config, PairedDevice, Pairing, Verification, PROTOCOL_VERSION};
use paircode_sim::ids::real_device;
use paircode_sim::transcript::transcript;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

const ENTROPY: [u8; 16] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
];
const ALICE_SECRET: [u8; 32] = [0x11; 32];
const BOB_SECRET: [u8; 32] = [0x22; 32];
const ALICE_NAME: &str = "alice-laptop";
const BOB_NAME: &str = "bob-phone";
const ALICE_RNG_SEED: [u8; 32] = [0xa1; 32];
const BOB_RNG_SEED: [u8; 32] = [0xb0; 32];

const HEADER: &str = "\
# paircode handshake v3: known-answer vectors (docs/PROTOCOL.md sections 2 and 3).
#
# Format: one `name = value` per line; values are lowercase hex unless noted; `#` starts a
# comment. Checked by testing/sim/tests/vectors.rs, which recomputes every value both through
# paircode-core and from the primitives.
#
# Inputs
# - code: 12 BIP39 English words (code_words) for the 16-byte entropy E (entropy).
# - identities: Ed25519 secret keys alice_identity_secret / bob_identity_secret; the
#   PeerIds (alice_peer_id / bob_peer_id) are the libp2p encodings of their public keys
#   (identity multihash of the protobuf public key), used as raw bytes in the transcript.
# - device names: alice_info / bob_info (text, UTF-8).
# - randomness: each side's RNG is ChaCha20 seeded with *_rng_seed. paircode-core draws
#   32 bytes from it as the seed of a second ChaCha20 (the *_session_seed). The joiner
#   draws from that, per attempt, first the X25519 ephemeral secret (32 bytes), then the
#   nonce (32). The initiator draws once, the cookie_key (32 bytes), and derives its
#   per-attempt values from it (below). Another implementation can skip the RNGs and take
#   join_eph_secret, join_nonce and cookie_key as given.
# - Alice is the initiator with auto-accept; Bob the joiner. Messages in order:
#   msg_join (Bob to Alice), msg_challenge, msg_prove, msg_done (Done{Accepted}).
#
# Derivations
# - prk = HKDF-Extract(salt = \"paircode v1\", ikm = E); discovery_id = HKDF-Expand(prk,
#   \"discovery\", 32); auth_key = HKDF-Expand(prk, \"auth\", 32).
# - cookie_digest = SHA-256 over the length-prefixed fields version, discovery_id, nonce_j,
#   eph_j, info_j, peer_j; with HKDF(salt = cookie_key, ikm = cookie_digest):
#   challenge_eph_secret = Expand(\"cookie ephemeral\", 32), challenge_nonce =
#   Expand(\"cookie nonce\", 32).
# - transcript = SHA-256 over the fields version (1 byte, 0x02), discovery_id, nonce_j,
#   eph_j, info_j (name bytes), peer_j, nonce_i, eph_i, info_i, peer_i, each preceded by
#   its length as a 4-byte big-endian integer.
# - mac_i = HMAC-SHA256(auth_key, \"initiator\" || transcript);
#   mac_j = HMAC-SHA256(auth_key, \"joiner\" || transcript).
# - x25519_shared = X25519(eph secret of one side, eph public of the other).
# - with HKDF(salt = transcript, ikm = x25519_shared || auth_key): pairing_secret =
#   Expand(\"pairing secret\", 32), key_initiator_to_joiner = Expand(\"session initiator to
#   joiner\", 32), key_joiner_to_initiator = Expand(\"session joiner to initiator\", 32).
# - verification: HKDF(salt = \"paircode verification\", ikm = transcript),
#   Expand(\"verification string\", 8) read as a big-endian u64; its top 44 bits are 4
#   indices of 11 bits into the BIP39 English list (verification_words, text).
# - mac_x = HMAC-SHA256(auth_key, \"expired\" || SHA-256 over the length-prefixed fields
#   version, discovery_id, nonce_j, peer_j, peer_i): what an expired initiator sends with
#   Done{Rejected(Expired)} (msg_done_expired) to a Join with nonce_j from peer_j.
# - messages are CBOR maps {\"v\": 2, \"m\": {<Kind>: {fields}}} with 32-byte fields as
#   byte strings and info as {\"name\": text}; Prove repeats nonce, eph and info of the
#   Join; Done is {\"re\": nonce_j, \"outcome\": \"Accepted\" or {\"Rejected\": reason},
#   \"proof\": null or mac_x}.
";

fn path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/handshake-v3.txt")
}

/// Runs the handshake to completion, returning every message in order and both outcomes.
fn run_handshake() -> (Vec<Vec<u8>>, PairedDevice, PairedDevice) {
    let now = Instant::now();
    let code = Code::from_entropy(ENTROPY);
    let (alice, bob) = (
        real_device(ALICE_SECRET, ALICE_NAME),
        real_device(BOB_SECRET, BOB_NAME),
    );
    let cfg = Config {
        auto_accept: true,
        ..Config::default()
    };
    let mut a = Pairing::initiator(
        cfg.clone(),
        alice.clone(),
        &code,
        now,
        &mut ChaCha20Rng::from_seed(ALICE_RNG_SEED),
    );
    let mut b = Pairing::joiner(
        cfg,
        bob.clone(),
        &code,
        now,
        &mut ChaCha20Rng::from_seed(BOB_RNG_SEED),
    );
    b.handle_peer(&alice.peer, now);
    let mut messages = Vec::new();
    let (mut on_alice, mut on_bob) = (None, None);
    for step in 1..10 {
        let t = now + Duration::from_millis(step);
        while let Some(action) = b.poll_action() {
            match action {
                Action::Send { bytes, .. } => {
                    messages.push(bytes.clone());
                    a.handle_message(&bob.peer, &bytes, t);
                }
                Action::Store(d) => b.handle_stored(&d.peer, true, t),
                Action::Completed(d) => on_bob = Some(*d),
                _ => {}
            }
        }
        while let Some(action) = a.poll_action() {
            match action {
                Action::Send { bytes, .. } => {
                    messages.push(bytes.clone());
                    b.handle_message(&alice.peer, &bytes, t);
                }
                Action::Store(d) => a.handle_stored(&d.peer, true, t),
                Action::Completed(d) => on_alice = Some(*d),
                _ => {}
            }
        }
    }
    (
        messages,
        on_alice.expect("alice completed"),
        on_bob.expect("bob completed"),
    )
}

/// What paircode-core draws for a joiner: session seed, ephemeral secret, nonce.
fn drawn(caller_seed: [u8; 32]) -> ([u8; 32], [u8; 32], [u8; 32]) {
    let mut session_seed = [0u8; 32];
    ChaCha20Rng::from_seed(caller_seed).fill_bytes(&mut session_seed);
    let mut session = ChaCha20Rng::from_seed(session_seed);
    let (mut secret, mut nonce) = ([0u8; 32], [0u8; 32]);
    session.fill_bytes(&mut secret);
    session.fill_bytes(&mut nonce);
    (session_seed, secret, nonce)
}

fn hkdf32(salt: &[u8], ikm: &[u8], label: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(label.as_bytes(), &mut out)
        .expect("32 bytes");
    out
}

fn hmac(key: &[u8], label: &str, data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(label.as_bytes());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn design_transcript(fields: &[&[u8]]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for field in fields {
        hash.update((field.len() as u32).to_be_bytes());
        hash.update(field);
    }
    hash.finalize().into()
}

/// Every vector, computed through paircode-core, with each value cross-checked against the
/// design computed from the primitives.
fn compute() -> Vec<(&'static str, String)> {
    let (messages, on_alice, on_bob) = run_handshake();
    assert_eq!(messages.len(), 4, "join, challenge, prove, done");
    let Ok(Message::Join(join)) = Message::decode(&messages[0]) else {
        panic!("first message is a Join")
    };
    let Ok(Message::Challenge(challenge)) = Message::decode(&messages[1]) else {
        panic!("second message is a Challenge")
    };
    let Ok(Message::Prove(prove)) = Message::decode(&messages[2]) else {
        panic!("third message is a Prove")
    };
    assert_eq!(
        Message::decode(&messages[3]),
        Ok(Message::Done(Done::accepted(join.nonce)))
    );
    let (alice, bob) = (
        real_device(ALICE_SECRET, ALICE_NAME),
        real_device(BOB_SECRET, BOB_NAME),
    );
    let code = Code::from_entropy(ENTROPY);

    // Through paircode-core's public key schedule.
    let keys = CodeKeys::derive(&ENTROPY);
    let t = transcript(&join, &bob.peer, &challenge, &alice.peer);
    assert_eq!(on_alice.keys, on_bob.keys);
    assert_eq!(on_alice.keys.transcript, t);
    assert_eq!(challenge.mac, keys.initiator_mac(&t));
    assert_eq!(prove.mac, keys.joiner_mac(&t));
    assert_eq!(join.discovery_id, keys.discovery_id);

    // From the primitives, as docs/PROTOCOL.md §2–§3 describe it.
    let discovery = hkdf32(b"paircode v1", &ENTROPY, "discovery");
    let auth = hkdf32(b"paircode v1", &ENTROPY, "auth");
    assert_eq!(discovery, keys.discovery_id.0);
    assert_eq!(&auth, keys.auth_key());
    let (bob_session, bob_eph, bob_nonce) = drawn(BOB_RNG_SEED);
    // The initiator's first draw is its cookie key; its values follow from it and the Join.
    let (alice_session, cookie_key, _) = drawn(ALICE_RNG_SEED);
    let cookie_digest = design_transcript(&[
        &[PROTOCOL_VERSION],
        &discovery,
        &join.nonce.0,
        &join.eph.0,
        BOB_NAME.as_bytes(),
        bob.peer.as_bytes(),
    ]);
    let alice_eph = hkdf32(&cookie_key, &cookie_digest, "cookie ephemeral");
    let alice_nonce = hkdf32(&cookie_key, &cookie_digest, "cookie nonce");
    let public = |s: [u8; 32]| PublicKey::from(&StaticSecret::from(s)).to_bytes();
    assert_eq!(join.nonce.0, bob_nonce);
    assert_eq!(join.eph.0, public(bob_eph));
    assert_eq!(challenge.nonce.0, alice_nonce);
    assert_eq!(challenge.eph.0, public(alice_eph));
    let shared = StaticSecret::from(alice_eph)
        .diffie_hellman(&PublicKey::from(join.eph.0))
        .to_bytes();
    assert_eq!(
        shared,
        StaticSecret::from(bob_eph)
            .diffie_hellman(&PublicKey::from(challenge.eph.0))
            .to_bytes()
    );
    let transcript = design_transcript(&[
        &[PROTOCOL_VERSION],
        &discovery,
        &join.nonce.0,
        &join.eph.0,
        BOB_NAME.as_bytes(),
        bob.peer.as_bytes(),
        &challenge.nonce.0,
        &challenge.eph.0,
        ALICE_NAME.as_bytes(),
        alice.peer.as_bytes(),
    ]);
    assert_eq!(transcript, t.0);
    assert_eq!(hmac(&auth, "initiator", &transcript), challenge.mac.0);
    assert_eq!(hmac(&auth, "joiner", &transcript), prove.mac.0);
    let ikm = [shared, auth].concat();
    let pairing_secret = hkdf32(&transcript, &ikm, "pairing secret");
    let i2j = hkdf32(&transcript, &ikm, "session initiator to joiner");
    let j2i = hkdf32(&transcript, &ikm, "session joiner to initiator");
    assert_eq!(pairing_secret, on_alice.keys.pairing_secret);
    assert_eq!(i2j, on_alice.keys.initiator_to_joiner);
    assert_eq!(j2i, on_alice.keys.joiner_to_initiator);
    // The wire encoding is exactly the CBOR the header describes.
    assert_eq!(Message::Join(join.clone()).encode(), messages[0]);
    assert_eq!(Message::Challenge(challenge.clone()).encode(), messages[1]);
    assert_eq!(
        Message::Prove(Prove {
            nonce: join.nonce,
            eph: join.eph,
            info: join.info.clone(),
            mac: prove.mac
        })
        .encode(),
        messages[2]
    );
    // The verification string both users see.
    let mut sas = [0u8; 8];
    Hkdf::<Sha256>::new(Some(b"paircode verification"), &transcript)
        .expand(b"verification string", &mut sas)
        .expect("8 bytes");
    let bits = u64::from_be_bytes(sas);
    let list = bip39::Language::English.word_list();
    let words: Vec<&str> = (0..4)
        .map(|i| list[((bits >> (64 - 11 * (i + 1))) & 0x7ff) as usize])
        .collect();
    let verification = Verification::of(&t);
    assert_eq!(verification.to_string(), words.join(" "));
    // An expired initiator's proof of the code, and the verdict that carries it.
    let expired_fields = design_transcript(&[
        &[PROTOCOL_VERSION],
        &discovery,
        &join.nonce.0,
        bob.peer.as_bytes(),
        alice.peer.as_bytes(),
    ]);
    let mac_x = hmac(&auth, "expired", &expired_fields);
    assert_eq!(
        keys.expired_mac(&join.nonce, &bob.peer, &alice.peer).0,
        mac_x
    );
    let done_expired = Message::Done(Done::expired(join.nonce, messages::Mac(mac_x))).encode();
    // An initiator that could not store the pairing turns the proven attempt down (v3).
    let done_not_stored = Message::Done(Done::rejected(
        join.nonce,
        messages::RejectReason::NotStored,
    ))
    .encode();

    fn h(bytes: impl AsRef<[u8]>) -> String {
        hex::encode(bytes)
    }
    vec![
        ("code_words", code.words().to_string()),
        ("entropy", h(ENTROPY)),
        ("alice_identity_secret", h(ALICE_SECRET)),
        ("alice_peer_id", h(alice.peer.as_bytes())),
        ("alice_peer_id_base58", alice.peer.to_string()),
        ("alice_info", ALICE_NAME.to_string()),
        ("bob_identity_secret", h(BOB_SECRET)),
        ("bob_peer_id", h(bob.peer.as_bytes())),
        ("bob_peer_id_base58", bob.peer.to_string()),
        ("bob_info", BOB_NAME.to_string()),
        ("alice_rng_seed", h(ALICE_RNG_SEED)),
        ("alice_session_seed", h(alice_session)),
        ("cookie_key", h(cookie_key)),
        ("bob_rng_seed", h(BOB_RNG_SEED)),
        ("bob_session_seed", h(bob_session)),
        ("discovery_id", h(discovery)),
        ("auth_key", h(auth)),
        ("join_nonce", h(join.nonce)),
        ("join_eph_secret", h(bob_eph)),
        ("join_eph_public", h(join.eph)),
        ("cookie_digest", h(cookie_digest)),
        ("challenge_nonce", h(challenge.nonce)),
        ("challenge_eph_secret", h(alice_eph)),
        ("challenge_eph_public", h(challenge.eph)),
        ("x25519_shared", h(shared)),
        ("transcript", h(transcript)),
        ("mac_i", h(challenge.mac)),
        ("mac_j", h(prove.mac)),
        ("pairing_secret", h(pairing_secret)),
        ("key_initiator_to_joiner", h(i2j)),
        ("key_joiner_to_initiator", h(j2i)),
        ("verification_words", words.join(" ")),
        ("mac_x", h(mac_x)),
        ("msg_join", h(&messages[0])),
        ("msg_challenge", h(&messages[1])),
        ("msg_prove", h(&messages[2])),
        ("msg_done", h(&messages[3])),
        ("msg_done_expired", h(&done_expired)),
        ("msg_done_not_stored", h(&done_not_stored)),
    ]
}

fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l
                .split_once(" = ")
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            (name.to_string(), value.to_string())
        })
        .collect()
}

#[test]
fn handshake_v3_matches_the_committed_vectors() {
    let computed = compute();
    if std::env::var_os("PAIRCODE_WRITE_VECTORS").is_some() {
        let mut text = HEADER.to_string();
        text.push('\n');
        for (name, value) in &computed {
            text.push_str(&format!("{name} = {value}\n"));
        }
        std::fs::write(path(), text).expect("write the vectors");
    }
    let text = std::fs::read_to_string(path()).expect("tests/vectors/handshake-v3.txt");
    let committed = parse(&text);
    let computed: Vec<(String, String)> = computed
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
    assert_eq!(
        committed.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        computed.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        "the set of vectors changed"
    );
    for ((name, want), (_, got)) in committed.iter().zip(&computed) {
        assert_eq!(want, got, "{name}");
    }
}

/// The words in the file are a valid code for the entropy in the file, through the parser
/// a user's input goes through.
#[test]
fn the_committed_code_words_parse_to_the_committed_entropy() {
    let text = std::fs::read_to_string(path()).expect("tests/vectors/handshake-v3.txt");
    let values = parse(&text);
    let get = |n: &str| &values.iter().find(|(k, _)| k == n).expect(n).1;
    let code = Code::parse(get("code_words")).expect("valid words");
    assert_eq!(hex::encode(code.entropy()), *get("entropy"));
}
