//! One full in-memory pairing versus the bare cryptography it performs (see
//! `paircode_bench::handshake`). Criterion runs the two one after the other, so their
//! ratio drifts with the machine's load; `handshake-ratio` measures it interleaved.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use paircode_bench::handshake::{crypto_floor, device, pair};
use paircode_core::Code;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn bench(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let code = Code::generate(&mut rng);
    let (alice, bob) = (device(1, "alice"), device(2, "bob"));
    let mut group = c.benchmark_group("handshake");
    group.bench_function("full_pairing", |b| {
        b.iter(|| assert!(pair(black_box(&code), &alice, &bob, &mut rng)))
    });
    let entropy = *code.entropy();
    group.bench_function("crypto_floor", |b| {
        b.iter(|| black_box(crypto_floor(black_box(&entropy), &mut rng)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
