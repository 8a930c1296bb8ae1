//! Pairing latency on loopback (mDNS off, DHT with a bootstrap address), per runtime.
//!
//! - warm: both nodes running and already known to each other; from `join` until both
//!   sides completed.
//! - cold: from starting both nodes (at the same time, each the other's bootstrap peer)
//!   until both sides completed.
//!
//! - mdns: two hosts in network namespaces on a bridge, one `paircode-node` process each
//!   (tokio initiator, async-std joiner), both up; from the joiner receiving `join` until
//!   it completed, including the fresh mDNS query. Only as root, and only if the helper
//!   binary was built next to this one (`cargo build --release -p paircode-netbed`).
//!
//! `cargo build --release -p paircode-netbed &&`
//! `cargo run --release -p paircode-bench --bin netbed [WARM_RUNS] [COLD_RUNS] [MDNS_RUNS]`
//!
//! Prints the table and the date and load average it was measured under; it never writes
//! BENCHMARKS.md.

use std::time::{Duration, Instant};

use paircode_bench::report::Conditions;
use paircode_net::{GenerateOptions, Node};
use paircode_netbed::{
    crossed_configs, loopback_config, namespace_skip_reason, NetBed, NodeArgs, NodeProcess, Rt,
};

const AUTO: GenerateOptions = GenerateOptions {
    auto_accept: true,
    ttl: None,
};

async fn pair(alice: &Node, bob: &Node) -> Duration {
    let (code, handle) = alice.generate(AUTO).await.expect("generate");
    let started = Instant::now();
    let (a, b) = tokio::join!(handle.result(), bob.join(&code));
    let elapsed = started.elapsed();
    assert_eq!(a.expect("alice").keys, b.expect("bob").keys);
    elapsed
}

async fn warm(alice_rt: Rt, bob_rt: Rt, runs: usize) -> Vec<Duration> {
    let alice = alice_rt.start(loopback_config("alice")).await.unwrap();
    let mut config = loopback_config("bob");
    config.bootstrap = alice.listen_addrs().await.unwrap();
    let bob = bob_rt.start(config).await.unwrap();
    // Not measured: makes the two nodes connected and each in the other's routing table.
    pair(&alice, &bob).await;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        times.push(pair(&alice, &bob).await);
    }
    tokio::join!(alice.shutdown(), bob.shutdown());
    times
}

async fn cold(alice_rt: Rt, bob_rt: Rt, runs: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (a, b) = crossed_configs();
        let started = Instant::now();
        let (alice, bob) = tokio::join!(alice_rt.start(a), bob_rt.start(b));
        let (alice, bob) = (alice.unwrap(), bob.unwrap());
        let (code, handle) = alice.generate(AUTO).await.unwrap();
        let (x, y) = tokio::join!(handle.result(), bob.join(&code));
        times.push(started.elapsed());
        assert_eq!(x.unwrap().keys, y.unwrap().keys);
        tokio::join!(alice.shutdown(), bob.shutdown());
    }
    times
}

fn mdns(runs: usize) -> Option<Vec<Duration>> {
    let exe = std::env::current_exe().ok()?;
    let helper = exe.parent()?.join("paircode-node");
    if !helper.exists() || namespace_skip_reason().is_some() {
        return None;
    }
    let helper = helper.to_str()?;
    let bed = NetBed::new().ok()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let args = |runtime, role, host: &str| NodeArgs {
            runtime,
            role,
            name: role.to_owned(),
            listen: format!("/ip4/{host}/tcp/0"),
            mdns: true,
            bootstrap: vec![],
            join_timeout_ms: None,
        };
        let limit = Duration::from_secs(20);
        let mut initiator = NodeProcess::spawn(
            helper,
            Some(&bed.a.ns),
            &args(Rt::Tokio, "initiator", &bed.addr_a),
        );
        let code = initiator.expect("code", limit)["code"].as_str()?.to_owned();
        let mut joiner = NodeProcess::spawn(
            helper,
            Some(&bed.b.ns),
            &args(Rt::AsyncStd, "joiner", &bed.addr_b),
        );
        joiner.expect("ready", limit);
        joiner.send(&format!("join {code}"));
        let done = joiner.expect("completed", limit);
        initiator.expect("completed", limit);
        times.push(Duration::from_secs_f64(
            done["elapsed_ms"].as_f64()? / 1000.0,
        ));
        joiner.quit();
        initiator.quit();
    }
    Some(times)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank].as_secs_f64() * 1000.0
}

fn row(what: &str, runtimes: (Rt, Rt), mut times: Vec<Duration>) {
    times.sort();
    println!(
        "| {what} | {} → {} | {} | {:.2} | {:.2} | {:.2} |",
        runtimes.0.name(),
        runtimes.1.name(),
        times.len(),
        percentile(&times, 50.0),
        percentile(&times, 95.0),
        times.last().unwrap().as_secs_f64() * 1000.0,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a number"));
    let warm_runs = args.next().unwrap_or(100);
    let cold_runs = args.next().unwrap_or(30);
    let mdns_runs = args.next().unwrap_or(20);
    let conditions = Conditions::now();
    println!("| case | initiator → joiner | runs | p50 ms | p95 ms | max ms |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    let combos = [
        (Rt::Tokio, Rt::Tokio),
        (Rt::AsyncStd, Rt::AsyncStd),
        (Rt::Tokio, Rt::AsyncStd),
    ];
    for (a, b) in combos {
        row(
            "warm: join → both completed",
            (a, b),
            warm(a, b, warm_runs).await,
        );
    }
    for (a, b) in combos {
        row(
            "cold: both start → both completed",
            (a, b),
            cold(a, b, cold_runs).await,
        );
    }
    match tokio::task::spawn_blocking(move || mdns(mdns_runs))
        .await
        .unwrap()
    {
        Some(times) => row(
            "mdns (namespaces): join → completed",
            (Rt::Tokio, Rt::AsyncStd),
            times,
        ),
        None => println!("(mDNS row skipped: needs root, iproute2 and the paircode-node binary)"),
    }
    println!("\n{}", conditions.line());
}
