//! The core handshake against its crypto floor (see `paircode_bench::handshake`), measured
//! in interleaved blocks: each block times `ITERS` full pairings and `ITERS` floors, the
//! one going first alternating, and the ratio reported is the median of the per-block
//! ratios. Criterion's `handshake` bench runs the two one after the other, so a change of
//! load between them moves its ratio (1.04 idle, 1.27 under load on the standard machine);
//! here both sides of every ratio see the same load.
//!
//! ```sh
//! cargo run --release -p paircode-bench --bin handshake-ratio -- [--blocks 20] [--iters 2000] [--write]
//! ```
//!
//! Prints the table; `--write` also replaces the "Core handshake" section of BENCHMARKS.md.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Instant;

use paircode_bench::args::{ArgError, Args};
use paircode_bench::handshake::{crypto_floor, device, pair};
use paircode_bench::report::{self, Conditions};
use paircode_core::Code;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const HEADING: &str = "## Core handshake (issue 3)";

struct Options {
    blocks: usize,
    iters: usize,
    write: bool,
}

fn options() -> Result<Options, ArgError> {
    let mut args = Args::from_env();
    let mut o = Options {
        blocks: 20,
        iters: 2000,
        write: args.write,
    };
    while let Some(flag) = args.next_flag()? {
        match flag.name.as_str() {
            "--blocks" => o.blocks = flag.positive()?,
            "--iters" => o.iters = flag.positive()?,
            _ => return Err(flag.unknown()),
        }
    }
    Ok(o)
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("handshake-ratio: {e}");
            std::process::exit(2);
        }
    };
    let conditions = Conditions::now();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let code = Code::generate(&mut rng);
    let (alice, bob) = (device(1, "alice"), device(2, "bob"));
    let entropy = *code.entropy();
    // Mean microseconds per operation over `iters` operations: one block's sample.
    let mut time = |kind: usize| -> Result<Vec<f64>, Infallible> {
        let started = Instant::now();
        for _ in 0..o.iters {
            if kind == 0 {
                assert!(pair(black_box(&code), &alice, &bob, &mut rng));
            } else {
                black_box(crypto_floor(black_box(&entropy), &mut rng));
            }
        }
        Ok(vec![started.elapsed().as_secs_f64() * 1e6 / o.iters as f64])
    };
    // Warm-up, not recorded: caches, branch predictors, the CPU's clock.
    let _ = report::interleave(2, 2, &mut time);
    let blocks = report::interleave(o.blocks, 2, &mut time).unwrap_or_else(|never| match never {});
    let (full, floor) = (&blocks[0], &blocks[1]);
    let all = |b: &[Vec<f64>]| b.iter().flatten().copied().collect::<Vec<_>>();
    let ratio = report::block_ratio(full, floor);
    let (lo, hi) = report::block_ratio_range(full, floor);
    let (blocks_n, iters) = (o.blocks, o.iters);

    let section = format!(
        "{HEADING}\n\n\
         Command:\n\n\
         ```sh\n\
         cargo run --release -p paircode-bench --bin handshake-ratio -- --blocks {blocks_n} --iters {iters}\n\
         ```\n\n\
         `full_pairing` runs one complete in-memory pairing through `paircode-core` (both state\n\
         machines, all four messages encoded and decoded, auto-accept). `crypto_floor` performs the\n\
         same cryptographic operations bare (`bench/src/handshake.rs`): both sides' code-key\n\
         HKDF, six random draws (two session-RNG seeds, two X25519 secrets, two nonces), two\n\
         X25519 key generations and two agreements, two transcript hashes, four HMACs (each side\n\
         computes its own MAC and checks the other's) and both session-key expansions.\n\n\
         The two are timed in {blocks_n} interleaved blocks of {iters} operations each (which one goes\n\
         first alternates); the ratio is the median of the per-block ratios, so both sides of\n\
         each ratio ran under the same load. `cargo bench -p paircode-bench --bench handshake`\n\
         (criterion) gives the same two timings one after the other; its ratio drifts with the\n\
         load between them (1.04 idle, 1.27 loaded on the standard machine).\n\n\
         {}\n\n\
         | benchmark | µs per operation (median of {blocks_n} blocks) |\n\
         | --- | ---: |\n\
         | `full_pairing` | {:.1} |\n\
         | `crypto_floor` | {:.1} |\n\
         | ratio (median of per-block ratios) | **{ratio:.2}** (blocks: {lo:.2} – {hi:.2}; goal ≤ 1.3) |\n",
        conditions.line(),
        report::median(&all(full)),
        report::median(&all(floor)),
    );
    println!("{section}");
    if o.write {
        match report::write_section(HEADING, &section) {
            Ok(path) => eprintln!("written to {}", path.display()),
            Err(e) => {
                eprintln!("handshake-ratio: writing BENCHMARKS.md: {e}");
                std::process::exit(1);
            }
        }
    }
}
