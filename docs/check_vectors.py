#!/usr/bin/env python3
"""Independent check of testing/sim/tests/vectors/handshake-v3.txt against docs/PROTOCOL.md.

Everything here is written from the specification alone, with nothing but the Python
standard library: ChaCha20 (the RNG chain), X25519, the Ed25519 public key, the libp2p
PeerId, BIP39, HKDF/HMAC-SHA256, the transcript, and the CBOR encoder. Every value of
the vector file is recomputed from the file's inputs and compared; any mismatch is
reported and the exit status is 1.

    python3 docs/check_vectors.py [--vectors FILE] [--wordlist FILE]

The BIP39 English word list is read from the `bip39` crate's source in the cargo
registry (`$CARGO_HOME/registry/src/*/bip39-*/src/language/english.rs`, as fetched by
any cargo build of this workspace), or from a plain file with one word a line given by
`--wordlist`. Section numbers (§) refer to docs/PROTOCOL.md.
"""

import argparse
import glob
import hashlib
import hmac
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOCOL_VERSION = 3
DEFAULT_VECTORS = os.path.join(HERE, "..", "testing", "sim", "tests", "vectors", "handshake-v3.txt")


# ---------------------------------------------------------------------------------------
# §7.2 ChaCha20 as a random number generator (rand_chacha's ChaCha20Rng).
# ---------------------------------------------------------------------------------------

def _rotl32(v, c):
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def _quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF
    s[d] = _rotl32(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF
    s[b] = _rotl32(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF
    s[d] = _rotl32(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF
    s[b] = _rotl32(s[b] ^ s[c], 7)


def chacha20_block(key, counter):
    """One 64-byte ChaCha20 block: 64-bit block counter, 64-bit stream id 0."""
    constants = struct.unpack("<4I", b"expand 32-byte k")
    state = list(constants) + list(struct.unpack("<8I", key)) + [
        counter & 0xFFFFFFFF,
        counter >> 32,
        0,
        0,
    ]
    working = state[:]
    for _ in range(10):
        _quarter(working, 0, 4, 8, 12)
        _quarter(working, 1, 5, 9, 13)
        _quarter(working, 2, 6, 10, 14)
        _quarter(working, 3, 7, 11, 15)
        _quarter(working, 0, 5, 10, 15)
        _quarter(working, 1, 6, 11, 12)
        _quarter(working, 2, 7, 8, 13)
        _quarter(working, 3, 4, 9, 14)
    return struct.pack("<16I", *((w + s) & 0xFFFFFFFF for w, s in zip(working, state)))


class ChaChaRng:
    """The keystream read front to back; each draw takes the next bytes."""

    def __init__(self, seed):
        assert len(seed) == 32
        self.key = seed
        self.counter = 0
        self.buffer = b""

    def draw(self, n):
        while len(self.buffer) < n:
            self.buffer += chacha20_block(self.key, self.counter)
            self.counter += 1
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out


# ---------------------------------------------------------------------------------------
# X25519 (RFC 7748) and the Ed25519 public key (RFC 8032).
# ---------------------------------------------------------------------------------------

P = 2**255 - 19


def x25519(scalar, u):
    k = bytearray(scalar)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    k = int.from_bytes(k, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        bit = (k >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % P, (x2 - z2) % P
        aa, bb = a * a % P, b * b % P
        e = (aa - bb) % P
        c, d = (x3 + z3) % P, (x3 - z3) % P
        da, cb = d * a % P, c * b % P
        x3 = (da + cb) ** 2 % P
        z3 = x1 * (da - cb) ** 2 % P
        x2 = aa * bb % P
        z2 = e * (aa + 121665 * e) % P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, P - 2, P) % P).to_bytes(32, "little")


def x25519_public(secret):
    return x25519(secret, (9).to_bytes(32, "little"))


_D = -121665 * pow(121666, P - 2, P) % P
_I = pow(2, (P - 1) // 4, P)


def _recover_x(y, sign):
    x2 = (y * y - 1) * pow(_D * y * y + 1, P - 2, P)
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * _I % P
    if x & 1 != sign:
        x = P - x
    return x


_BY = 4 * pow(5, P - 2, P) % P
_B = (_recover_x(_BY, 0), _BY, 1, _recover_x(_BY, 0) * _BY % P)


def _ed_add(p1, p2):
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * t1 * t2 * _D % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def ed25519_public(secret):
    h = hashlib.sha512(secret).digest()
    a = bytearray(h[:32])
    a[0] &= 248
    a[31] &= 127
    a[31] |= 64
    scalar = int.from_bytes(a, "little")
    point, acc = _B, (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            acc = _ed_add(acc, point)
        point = _ed_add(point, point)
        scalar >>= 1
    x, y, z, _ = acc
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


# ---------------------------------------------------------------------------------------
# §3.1 identities: libp2p PeerId bytes and their base58 form.
# ---------------------------------------------------------------------------------------

def peer_id_bytes(ed25519_public_key):
    # protobuf PublicKey { Type = 1 (Ed25519): field 1 varint; Data: field 2 bytes }
    protobuf = b"\x08\x01\x12\x20" + ed25519_public_key
    # identity multihash: code 0x00, length, digest (= the protobuf itself)
    return b"\x00" + bytes([len(protobuf)]) + protobuf


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58(data):
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\x00"))) + out


# ---------------------------------------------------------------------------------------
# §2.1 the code: BIP39.
# ---------------------------------------------------------------------------------------

def load_wordlist(path=None):
    if path is None:
        cargo_home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
        found = glob.glob(os.path.join(cargo_home, "registry", "src", "*", "bip39-*",
                                       "src", "language", "english.rs"))
        if not found:
            sys.exit("no bip39 crate source in the cargo registry: run a cargo build "
                     "first, or pass --wordlist FILE")
        path = sorted(found)[-1]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    words = re.findall(r'"([a-z]+)"', text) if path.endswith(".rs") else text.split()
    if len(words) != 2048 or words[0] != "abandon" or words[-1] != "zoo":
        sys.exit(f"{path}: not the BIP39 English word list")
    return words


def entropy_to_words(entropy, words):
    assert len(entropy) == 16
    checksum = hashlib.sha256(entropy).digest()[0] >> 4  # first 128/32 = 4 bits
    bits = (int.from_bytes(entropy, "big") << 4) | checksum  # 132 bits
    return [words[(bits >> (11 * (11 - i))) & 0x7FF] for i in range(12)]


def words_to_entropy(text, words):
    index = {w: i for i, w in enumerate(words)}
    parts = [w for w in re.split(r"[\s,;.\-]+", text.lower()) if w]
    assert len(parts) == 12, "12 words"
    bits = 0
    for w in parts:
        bits = (bits << 11) | index[w]
    entropy = (bits >> 4).to_bytes(16, "big")
    assert bits & 0xF == hashlib.sha256(entropy).digest()[0] >> 4, "checksum"
    return entropy


# ---------------------------------------------------------------------------------------
# §2.2 and §3.3-§3.4 key schedule, §3.2 transcript.
# ---------------------------------------------------------------------------------------

def hkdf_extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand(prk, info, length=32):
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def transcript(fields):
    h = hashlib.sha256()
    for field in fields:
        h.update(struct.pack(">I", len(field)))
        h.update(field)
    return h.digest()


def mac(auth_key, label, t):
    return hmac.new(auth_key, label + t, hashlib.sha256).digest()


# ---------------------------------------------------------------------------------------
# §3.5 CBOR (RFC 8949, shortest-form heads, definite lengths).
# ---------------------------------------------------------------------------------------

def _head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | extra]) + n.to_bytes(size, "big")
    raise ValueError(n)


def cbor(value):
    if value is None:
        return b"\xf6"  # null
    if isinstance(value, int):
        return _head(0, value)
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, str):
        data = value.encode("utf-8")
        return _head(3, len(data)) + data
    if isinstance(value, list):  # a map, as an ordered list of (key, value) pairs
        return _head(5, len(value)) + b"".join(cbor(k) + cbor(v) for k, v in value)
    raise TypeError(value)


def envelope(kind, body):
    return cbor([("v", PROTOCOL_VERSION), ("m", [(kind, body)])])


def msg_join(discovery_id, nonce, eph, name):
    return envelope("Join", [("discovery_id", discovery_id), ("nonce", nonce), ("eph", eph),
                             ("info", [("name", name)])])


def msg_challenge(nonce, eph, name, mac_i):
    return envelope("Challenge", [("nonce", nonce), ("eph", eph), ("info", [("name", name)]),
                                  ("mac", mac_i)])


def msg_prove(nonce, eph, name, mac_j):
    return envelope("Prove", [("nonce", nonce), ("eph", eph), ("info", [("name", name)]),
                              ("mac", mac_j)])


def msg_done(attempt_nonce, reason=None, proof=None):
    outcome = "Accepted" if reason is None else [("Rejected", reason)]
    return envelope("Done", [("re", attempt_nonce), ("outcome", outcome), ("proof", proof)])


# Worked examples printed in docs/PROTOCOL.md (§3.5, §4.6), checked here too.
DOC_EXAMPLES = [
    ("Done{re: 0x00*32, Rejected(NoSession)}", lambda: msg_done(bytes(32), "NoSession"),
     "a2" "6176" "03" "616d" "a1" "64446f6e65" "a3" "627265" "5820" + "00" * 32
     + "67" "6f7574636f6d65" "a1" "6852656a6563746564" "69" "4e6f53657373696f6e"
     + "65" "70726f6f66" "f6"),
    ("device Hello", lambda: cbor("Hello"), "6548656c6c6f"),
    ("device Unpaired", lambda: cbor("Unpaired"), "68556e706169726564"),
    ("frame of device Hello", lambda: struct.pack(">I", 6) + cbor("Hello"),
     "000000066548656c6c6f"),
]


# ---------------------------------------------------------------------------------------
# The check.
# ---------------------------------------------------------------------------------------

def parse_vectors(path):
    values = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, value = line.split(" = ", 1)
            values.append((name, value))
    return values


def compute(given, words):
    """Every vector from the file's inputs (the names of §7.1 of the document)."""
    h = bytes.fromhex
    out = {}
    entropy = h(given["entropy"])
    out["entropy"] = entropy.hex()
    out["code_words"] = " ".join(entropy_to_words(entropy, words))
    assert words_to_entropy(given["code_words"], words) == entropy, "words parse to entropy"

    peers = {}
    for side in ("alice", "bob"):
        secret = h(given[f"{side}_identity_secret"])
        out[f"{side}_identity_secret"] = secret.hex()
        peers[side] = peer_id_bytes(ed25519_public(secret))
        out[f"{side}_peer_id"] = peers[side].hex()
        out[f"{side}_peer_id_base58"] = base58(peers[side])
        out[f"{side}_info"] = given[f"{side}_info"]

    # §7.2 RNG chain: caller RNG -> 32-byte session seed -> session RNG. The joiner draws
    # its eph secret then its nonce; the initiator draws its cookie key once.
    sessions = {}
    for side in ("alice", "bob"):
        caller_seed = h(given[f"{side}_rng_seed"])
        out[f"{side}_rng_seed"] = caller_seed.hex()
        session_seed = ChaChaRng(caller_seed).draw(32)
        out[f"{side}_session_seed"] = session_seed.hex()
        sessions[side] = ChaChaRng(session_seed)
    cookie_key = sessions["alice"].draw(32)
    out["cookie_key"] = cookie_key.hex()

    prk = hkdf_extract(b"paircode v1", entropy)
    discovery_id = hkdf_expand(prk, b"discovery", 32)
    auth_key = hkdf_expand(prk, b"auth", 32)
    out["discovery_id"] = discovery_id.hex()
    out["auth_key"] = auth_key.hex()

    eph_j_secret = sessions["bob"].draw(32)  # Bob joins
    nonce_j = sessions["bob"].draw(32)
    eph_j = x25519_public(eph_j_secret)
    info_j, info_i = given["bob_info"].encode(), given["alice_info"].encode()
    # §3.7 stateless challenge: Alice's values follow from her cookie key and Bob's Join.
    version = bytes([PROTOCOL_VERSION])
    cookie_digest = transcript([version, discovery_id, nonce_j, eph_j, info_j, peers["bob"]])
    out["cookie_digest"] = cookie_digest.hex()
    cookie_prk = hkdf_extract(cookie_key, cookie_digest)
    eph_i_secret = hkdf_expand(cookie_prk, b"cookie ephemeral", 32)
    nonce_i = hkdf_expand(cookie_prk, b"cookie nonce", 32)
    eph_i = x25519_public(eph_i_secret)
    out["join_nonce"] = nonce_j.hex()
    out["join_eph_secret"] = eph_j_secret.hex()
    out["join_eph_public"] = eph_j.hex()
    out["challenge_nonce"] = nonce_i.hex()
    out["challenge_eph_secret"] = eph_i_secret.hex()
    out["challenge_eph_public"] = eph_i.hex()

    shared = x25519(eph_i_secret, eph_j)
    assert shared == x25519(eph_j_secret, eph_i), "both sides agree"
    out["x25519_shared"] = shared.hex()

    t = transcript([version, discovery_id, nonce_j, eph_j, info_j, peers["bob"],
                    nonce_i, eph_i, info_i, peers["alice"]])
    out["transcript"] = t.hex()
    mac_i = mac(auth_key, b"initiator", t)
    mac_j = mac(auth_key, b"joiner", t)
    out["mac_i"] = mac_i.hex()
    out["mac_j"] = mac_j.hex()

    session_prk = hkdf_extract(t, shared + auth_key)
    out["pairing_secret"] = hkdf_expand(session_prk, b"pairing secret").hex()
    out["key_initiator_to_joiner"] = hkdf_expand(session_prk, b"session initiator to joiner").hex()
    out["key_joiner_to_initiator"] = hkdf_expand(session_prk, b"session joiner to initiator").hex()

    # §3.8 verification string: 44 bits of HKDF output, 4 words of 11 bits.
    sas = hkdf_expand(hkdf_extract(b"paircode verification", t), b"verification string", 8)
    bits = int.from_bytes(sas, "big")
    out["verification_words"] = " ".join(words[(bits >> (64 - 11 * (i + 1))) & 0x7FF]
                                          for i in range(4))
    # §3.9 an expired initiator's proof of the code.
    expired = transcript([version, discovery_id, nonce_j, peers["bob"], peers["alice"]])
    mac_x = mac(auth_key, b"expired", expired)
    out["mac_x"] = mac_x.hex()

    out["msg_join"] = msg_join(discovery_id, nonce_j, eph_j, given["bob_info"]).hex()
    out["msg_challenge"] = msg_challenge(nonce_i, eph_i, given["alice_info"], mac_i).hex()
    out["msg_prove"] = msg_prove(nonce_j, eph_j, given["bob_info"], mac_j).hex()
    out["msg_done"] = msg_done(nonce_j).hex()
    out["msg_done_expired"] = msg_done(nonce_j, "Expired", mac_x).hex()
    out["msg_done_not_stored"] = msg_done(nonce_j, "NotStored").hex()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", default=DEFAULT_VECTORS)
    parser.add_argument("--wordlist", default=None)
    args = parser.parse_args()

    words = load_wordlist(args.wordlist)
    committed = parse_vectors(args.vectors)
    given = dict(committed)
    computed = compute(given, words)

    failures = 0
    for name, want in committed:
        got = computed.get(name)
        if got is None:
            print(f"UNKNOWN  {name}: the document does not say how to compute it")
            failures += 1
        elif got != want:
            print(f"MISMATCH {name}\n  file:     {want}\n  computed: {got}")
            failures += 1
    for name in computed.keys() - given.keys():
        print(f"MISSING  {name}: computed but not in the file")
        failures += 1
    for title, build, want in DOC_EXAMPLES:
        got = build().hex()
        if got != want:
            print(f"MISMATCH example {title}\n  document: {want}\n  computed: {got}")
            failures += 1

    if failures:
        print(f"{failures} problem(s)")
        return 1
    print(f"all {len(committed)} vectors and {len(DOC_EXAMPLES)} document examples match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
