//! The DHT path must be reliable (issue 12): a private DHT of [`POPULATION`] paircode nodes
//! on 127.0.0.1 (mDNS off), then [`JOINS`] joins, each by a fresh joiner bootstrapped from a
//! random node that is not the initiator, so the joiner finds the initiator only through
//! its provider record (see `paircode_netbed::dht`). At least 99 % must pair.
//!
//! Measured before: 12 of 48 such joins failed with `NoDeviceAnswered` (40 nodes) — provider
//! records carried no address, since nothing confirmed one (now `net/src/driver/observed.rs`),
//! and a publication that timed out in a busy DHT was never sent again (now it is).
//!
//! `DHT_SEED` replays a run (the seed is printed); `RUST_LOG` shows the nodes' logs. The
//! release figures are in BENCHMARKS.md (`paircode-bench --bin dht`).

use paircode_netbed::dht::{joins_from_random_bootstraps, DhtRun};

const POPULATION: usize = 30;
const JOINS: usize = 60;
/// Joins under way at once.
const PARALLEL: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiners_bootstrapped_from_random_nodes_find_the_initiator() {
    let seed = std::env::var("DHT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_nanos() as u64
        });
    println!("DHT_SEED={seed}");
    if let Ok(filter) = std::env::var("RUST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let outcome = joins_from_random_bootstraps(DhtRun {
        population: POPULATION,
        joins: JOINS,
        parallel: PARALLEL,
        seed,
    })
    .await;
    println!(
        "DHT reliability: {POPULATION} nodes, {JOINS} joins from random bootstraps: \
         {} paired, {} failed; join -> paired p50 {:?}, p95 {:?}; {:?} in all",
        outcome.paired.len(),
        outcome.failures.len(),
        outcome.percentile(50),
        outcome.percentile(95),
        outcome.took,
    );
    for f in &outcome.failures {
        println!("  failed: {f}");
    }
    // ≥ 99 % of 60 joins: none may fail.
    assert!(
        outcome.paired.len() * 100 >= JOINS * 99,
        "{} of {JOINS} joins failed: {:#?}",
        outcome.failures.len(),
        outcome.failures
    );
}
