//! Two async-std nodes in one process pair over 127.0.0.1 (mDNS off): the joiner knows
//! only the initiator's address as a DHT bootstrap and finds the session through Kademlia.
//!
//! cargo run -p paircode-async-std --example pair_async_std

use std::time::Instant;

use paircode_async_std::paircode_core::DeviceIdentity;
use paircode_async_std::{Error, GenerateOptions, NodeConfig};

/// A node for 127.0.0.1 with mDNS off: mDNS skips loopback, and must never be switched on
/// for a demo on a real network interface.
fn loopback_config(name: &str) -> NodeConfig {
    let mut config = NodeConfig::new(DeviceIdentity::generate(&mut rand_core::OsRng), name);
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr")];
    config.mdns = false;
    config
}

/// Starts two nodes, the joiner knowing only the initiator's address as a DHT bootstrap,
/// pairs them and prints what each side ended with.
#[async_std::main]
async fn main() -> Result<(), Error> {
    let alice = paircode_async_std::start(loopback_config("alice-laptop")).await?;
    let mut bob_config = loopback_config("bob-phone");
    bob_config.bootstrap = alice.listen_addrs().await?;
    let bob = paircode_async_std::start(bob_config).await?;

    let options = GenerateOptions {
        auto_accept: true,
        ttl: None,
    };
    let (code, handle) = alice.generate(options).await?;
    println!("code: {}", code.words().as_str());
    let started = Instant::now();
    let (on_alice, on_bob) = futures::join!(handle.result(), bob.join(&code));
    let (on_alice, on_bob) = (on_alice?, on_bob?);
    println!("paired in {:?}", started.elapsed());
    println!(
        "alice paired with {} ({})",
        on_alice.info.name, on_alice.peer
    );
    println!("bob paired with {} ({})", on_bob.info.name, on_bob.peer);
    assert_eq!(
        on_alice.keys, on_bob.keys,
        "both sides derive the same keys"
    );
    alice.shutdown().await;
    bob.shutdown().await;
    Ok(())
}
