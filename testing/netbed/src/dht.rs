//! A private DHT of paircode nodes on 127.0.0.1 (mDNS off), and joins into it from random
//! entry points (issue 12: "the DHT path must be reliable first"). Used by the test
//! `tests/dht_reliability.rs` and by the bench (`paircode-bench --bin dht`).
//!
//! The population: each node started from a random earlier one. Each join: an initiator
//! picked at random generates a code; a fresh joiner, bootstrapped from a random node that
//! is not the initiator, joins with it, so it finds the initiator only through its provider
//! record. Joins run `parallel` at a time, each with its own initiator (a node runs one
//! session at a time).

use std::time::{Duration, Instant};

use paircode_net::{GenerateOptions, Multiaddr, Node};

use crate::{loopback_config, Rt};

/// The shape of a run.
#[derive(Debug, Clone, Copy)]
pub struct DhtRun {
    pub population: usize,
    pub joins: usize,
    pub parallel: usize,
    /// Replays a run's choices of nodes.
    pub seed: u64,
}

/// What a run gave.
#[derive(Debug, Default)]
pub struct DhtOutcome {
    /// Join started → both sides paired, of every join that paired, sorted.
    pub paired: Vec<Duration>,
    /// Why each other join failed.
    pub failures: Vec<String>,
    pub took: Duration,
}

impl DhtOutcome {
    /// The `p`-th percentile of the pairing times (zero if none paired).
    pub fn percentile(&self, p: usize) -> Duration {
        match self.paired.len() {
            0 => Duration::ZERO,
            n => self.paired[(n * p).div_ceil(100).saturating_sub(1)],
        }
    }
}

/// splitmix64: enough randomness for picking nodes, and replayable from the seed.
struct Pick(u64);

impl Pick {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

async fn node(name: &str, bootstrap: Vec<Multiaddr>) -> Node {
    let mut config = loopback_config(name);
    config.bootstrap = bootstrap;
    Rt::Tokio.start(config).await.expect("node starts")
}

/// One join: the initiator generates, a fresh joiner bootstrapped from `entry` joins.
/// Returns the time from the join's start until both sides completed.
async fn join_once(
    initiator: &Node,
    entry: Vec<Multiaddr>,
    name: String,
) -> Result<Duration, String> {
    let joiner = node(&name, entry).await;
    let (code, handle) = initiator
        .generate(GenerateOptions {
            auto_accept: true,
            ttl: None,
        })
        .await
        .map_err(|e| format!("generate: {e}"))?;
    let started = Instant::now();
    let (on_initiator, on_joiner) = futures::join!(handle.result(), joiner.join(&code));
    let elapsed = started.elapsed();
    joiner.shutdown().await;
    match (on_initiator, on_joiner) {
        (Ok(_), Ok(_)) => Ok(elapsed),
        (a, b) => Err(format!(
            "{name}: initiator {:?}, joiner {:?} after {elapsed:?}",
            a.err(),
            b.err()
        )),
    }
}

/// Builds the population and runs the joins. Must run inside a tokio runtime.
pub async fn joins_from_random_bootstraps(run: DhtRun) -> DhtOutcome {
    let mut pick = Pick(run.seed);
    let mut nodes: Vec<(Node, Vec<Multiaddr>)> = Vec::new();
    for i in 0..run.population {
        let bootstrap = match nodes.len() {
            0 => vec![],
            n => nodes[pick.below(n)].1.clone(),
        };
        let n = node(&format!("dht-{i}"), bootstrap).await;
        let addrs = n.listen_addrs().await.expect("listen addresses");
        nodes.push((n, addrs));
    }

    let mut outcome = DhtOutcome::default();
    let begun = Instant::now();
    let mut done = 0;
    while done < run.joins {
        let mut initiators: Vec<usize> = Vec::new();
        while initiators.len() < run.parallel.min(run.joins - done) {
            let i = pick.below(run.population);
            if !initiators.contains(&i) {
                initiators.push(i);
            }
        }
        let round = initiators.iter().enumerate().map(|(k, &i)| {
            let entry = loop {
                let e = pick.below(run.population);
                if e != i {
                    break e;
                }
            };
            join_once(
                &nodes[i].0,
                nodes[entry].1.clone(),
                format!("joiner-{}", done + k),
            )
        });
        for result in futures::future::join_all(round).await {
            match result {
                Ok(t) => outcome.paired.push(t),
                Err(e) => outcome.failures.push(e),
            }
        }
        done += initiators.len();
    }
    outcome.took = begun.elapsed();
    outcome.paired.sort();
    for (n, _) in nodes {
        n.shutdown().await;
    }
    outcome
}
