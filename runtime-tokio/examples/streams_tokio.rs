//! Two tokio nodes in one process pair over 127.0.0.1 (mDNS off), then talk without a
//! code: Bob opens a stream to Alice with the application's own protocol, Alice answers
//! in upper case, and both derive the same application key from the pairing.
//!
//! cargo run -p paircode-tokio --example streams_tokio

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use paircode_tokio::paircode_core::DeviceIdentity;
use paircode_tokio::{GenerateOptions, NodeConfig};

const PROTOCOL: &str = "/demo/upper/1";

/// A node for 127.0.0.1 with mDNS off: mDNS skips loopback, and must never be switched on
/// for a demo on a real network interface.
fn loopback_config(name: &str) -> NodeConfig {
    let mut config = NodeConfig::new(DeviceIdentity::generate(&mut rand_core::OsRng), name);
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr")];
    config.mdns = false;
    config
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let alice = paircode_tokio::start(loopback_config("alice-laptop")).await?;
    let mut bob_config = loopback_config("bob-phone");
    bob_config.bootstrap = alice.listen_addrs().await?;
    let bob = paircode_tokio::start(bob_config).await?;

    // Pair once. An application stores what each side got and, at every start, tells
    // its node which devices are paired.
    let options = GenerateOptions {
        auto_accept: true,
        ttl: None,
    };
    let (code, handle) = alice.generate(options).await?;
    let (on_alice, on_bob) = futures::join!(handle.result(), bob.join(&code));
    let (on_alice, on_bob) = (on_alice?, on_bob?);
    alice.add_paired(on_alice.peer.clone())?;
    bob.add_paired(on_bob.peer.clone())?;
    println!("paired: {} <-> {}", on_bob.info.name, on_alice.info.name);

    // Alice serves the protocol: each stream is one request, answered in upper case.
    let mut incoming = alice.accept(PROTOCOL)?;
    tokio::spawn(async move {
        while let Some((device, mut stream)) = incoming.next().await {
            let mut request = String::new();
            if stream.read_to_string(&mut request).await.is_ok() {
                println!("alice got {request:?} from {}", device.short());
                let _ = stream.write_all(request.to_uppercase().as_bytes()).await;
                let _ = stream.close().await;
            }
        }
    });

    // Bob talks to Alice by her PeerId, no code needed.
    let mut stream = bob.connect(&on_bob.peer, PROTOCOL).await?;
    stream.write_all(b"hello from bob").await?;
    stream.close().await?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await?;
    println!("bob got {reply:?}");

    let key = bob.export_key(&on_bob, "demo/encryption");
    assert_eq!(key, alice.export_key(&on_alice, "demo/encryption"));
    println!("both derived the same application key");

    alice.shutdown().await;
    bob.shutdown().await;
    Ok(())
}
