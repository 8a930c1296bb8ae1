//! 200 pairings in a row, each between two freshly started nodes that come up at the same
//! instant and know each other as DHT bootstrap peers, so both dial each other at once
//! (the simultaneous-dial hazard) while one publishes and the other looks up. None may
//! fail. Loopback, mDNS off; the runtimes rotate through all four combinations.
//!
//! Its own test binary, so no other test competes for the ports picked up front.

use std::time::Duration;

use paircode_net::GenerateOptions;
use paircode_netbed::{crossed_configs, Rt};

const ROUNDS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_pairings_with_simultaneous_starts() {
    let combos = [
        (Rt::Tokio, Rt::Tokio),
        (Rt::AsyncStd, Rt::AsyncStd),
        (Rt::Tokio, Rt::AsyncStd),
        (Rt::AsyncStd, Rt::Tokio),
    ];
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        let (alice_rt, bob_rt) = combos[round % combos.len()];
        let (a, b) = crossed_configs();
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            let (alice, bob) = tokio::join!(alice_rt.start(a), bob_rt.start(b));
            let (alice, bob) = (alice.expect("alice starts"), bob.expect("bob starts"));
            let options = GenerateOptions {
                auto_accept: true,
                ttl: None,
            };
            let (code, handle) = alice.generate(options).await.expect("generate");
            let (on_alice, on_bob) = tokio::join!(handle.result(), bob.join(&code));
            let result = match (on_alice, on_bob) {
                (Ok(x), Ok(y)) if x.keys == y.keys && x.peer == bob.peer_id() => Ok(()),
                other => Err(format!("{other:?}")),
            };
            tokio::join!(alice.shutdown(), bob.shutdown());
            result
        })
        .await
        .unwrap_or_else(|_| Err("did not finish within 10 s".into()));
        if let Err(e) = outcome {
            failures.push(format!("round {round} ({alice_rt:?}/{bob_rt:?}): {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ROUNDS} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
